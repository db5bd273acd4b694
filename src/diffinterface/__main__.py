import sys

from diffinterface.cli import main

sys.exit(main())

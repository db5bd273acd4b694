"""The test kit: scenarios with reference derivatives and ``check_backend``.

>>> from diffinterface.testing import default_scenarios, check_backend
>>> len(default_scenarios()) >= 9
True
"""

from diffinterface.testing._check import OperatorCheck, Report, Row, check_backend, tolerance_for
from diffinterface.testing._check_operators import check_linear_operators
from diffinterface.testing._scenarios import Namespace, Scenario, default_scenarios, namespace_for, sparse_scenarios, structured_scenarios

__all__ = [
    "Namespace", "OperatorCheck", "Report", "Row", "Scenario",
    "check_backend", "check_linear_operators", "default_scenarios", "namespace_for", "sparse_scenarios", "structured_scenarios", "tolerance_for",
]

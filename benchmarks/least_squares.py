"""Nonlinear least squares with SciPy: the table of the demo's least-squares section, recorded.

    python benchmarks/least_squares.py            # writes benchmarks/results/least_squares.md
    python benchmarks/least_squares.py --no-write

Runs ``diffinterface._demo_least_squares.demo_least_squares()`` (what ``make demo``
prints): the 2-D Brusselator steady state plus observations, solved by
``scipy.optimize.least_squares(method="trf", tr_solver="lsmr")`` with
``di.scipy_least_squares`` for every installed engine, on a 2,048-unknown
instance against the exact dense Jacobian and on a 10,082-unknown instance
against SciPy's finite-difference Jacobian given the true sparsity
(``jac_sparsity``); the AutoSparse variant and SciPy's FD are compared by the
median wall time of 3 alternating solves each (detection, coloring and
compilation included).  Default threads (the solvers' own work is NumPy/SciPy).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, HERE)

from _timing import machine, package_version  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from diffinterface._demo_least_squares import demo_least_squares

    demo_least_squares()  # warm-up: imports, numba's coloring kernels, JAX compiles
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        ok = demo_least_squares()
    text = captured.getvalue()
    print(text)
    if args.no_write:
        return
    versions = ", ".join(f"{name} {package_version(name)}" for name in ("numpy", "scipy", "jax", "torch", "autograd"))
    body = (f"# Nonlinear least squares (the demo's section)\n\nSee the docstring of `benchmarks/least_squares.py`.\n\n"
            f"Machine: {machine()}; {versions}.\nCommand: `python benchmarks/least_squares.py` "
            f"({time.strftime('%Y-%m-%d %H:%M')}), second run in the process (the first warms up).\n"
            f"All runs reached the reference cost: {'yes' if ok else 'NO'}.\n\n```\n{text.strip()}\n```\n")
    path = os.path.join(HERE, "results", "least_squares.md")
    with open(path, "w") as out:
        out.write(body)
    print(f"written to {path}")


if __name__ == "__main__":
    main()

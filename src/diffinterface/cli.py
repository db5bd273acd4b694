"""``python -m diffinterface {doctor,demo}``."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
import time

import numpy as np

from diffinterface._table import format_table

ENGINES = [("jax", "AutoJAX"), ("torch", "AutoTorch"), ("autograd", "AutoAutograd"), ("numpy", "AutoFiniteDiff")]


def installed_backends() -> list:
    """One backend per installed engine, plus the forward modes."""
    import diffinterface as di

    out = []
    for package, _ in ENGINES:
        try:
            importlib.import_module(package)
        except ImportError:
            continue
        if package == "jax":
            out += [di.AutoJAX(), di.AutoJAX(mode="forward")]
        elif package == "torch":
            out += [di.AutoTorch(), di.AutoTorch(mode="forward")]
        elif package == "autograd":
            out.append(di.AutoAutograd())
        else:
            out += [di.AutoFiniteDiff(), di.AutoFiniteDiff(method="complex")]
    return out


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def doctor() -> int:
    """Print installed engines and the capability matrix from check_backend."""
    import diffinterface as di
    from diffinterface.testing import check_backend

    print(f"diffinterface {di.__version__}, Python {sys.version.split()[0]}")
    print(format_table(["engine", "backend", "version"],
                       [[p, b, _version(p)] for p, b in ENGINES], title="Engines"))
    backends = installed_backends()
    reports = [check_backend(b) for b in backends]
    operators = list(dict.fromkeys(row.operator for r in reports for row in r.rows))
    rows = [[op] + [r.matrix().get(op, "-") for r in reports] for op in operators]
    print()
    print(format_table(["operator"] + [repr(b) for b in backends], rows,
                       title="Capability matrix (check_backend on the default scenarios)"))
    notes = {(op, repr(b)): r.details(op) for r in reports for b in [r.backend] for op in operators
             if r.matrix().get(op) not in ("ok", None)}
    for (op, b), detail in notes.items():
        print(f"  {op} / {b}: {detail}")
    print()
    pairs_ok = _pair_matrix()
    return 0 if all(r.ok for r in reports) and pairs_ok else 1


def _pair_matrix() -> bool:
    """SecondOrder(outer, inner) for every pair of installed engines, on one scenario."""
    import diffinterface as di
    from diffinterface.testing import check_backend, default_scenarios
    from diffinterface.testing._check import SECOND_ORDER

    firsts = [b for b in installed_backends() if not (isinstance(b, di.AutoFiniteDiff) and b.method == "complex")]
    scenario = [s for s in default_scenarios() if s.name == "vector->scalar"]
    rows, ok = [], True
    for outer in firsts:
        row = [repr(outer)]
        for inner in firsts:
            report = check_backend(di.SecondOrder(outer, inner), scenarios=scenario, operators=SECOND_ORDER)
            status = set(report.counts())
            ok &= report.ok
            row.append("ok" if status == {"ok"} else "/".join(sorted(status)))
        rows.append(row)
    print(format_table(["outer \\ inner"] + [repr(b) for b in firsts], rows,
                       title="Second-order pairs SecondOrder(outer, inner): hvp, hessian (vector->scalar scenario)"))
    print("  'not supported' pairs raise UnsupportedOperationError naming a pair that works.")
    return ok


def _demo_first_order() -> None:
    import diffinterface as di
    from diffinterface.testing import namespace_for

    x = np.array([0.5, -1.2, 2.0])
    print("f(x) = sum(sin(x) * x**2)  and  g(x) = sin(A x)  at x =", x)
    a = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    t, w = np.array([1.0, 0.0, -1.0]), np.array([1.0, 2.0])
    rows, results = [], []
    for backend in installed_backends():
        ns = namespace_for(backend)
        f = lambda x, ns=ns: ns.xp.sum(ns.xp.sin(x) * x**2)
        ca = ns.asarray(a)
        g = lambda x, ns=ns, ca=ca: ns.xp.sin(ca @ x)
        start = time.perf_counter()
        r = (di.gradient(f, backend, x), di.jacobian(g, backend, x),
             di.pushforward(g, backend, x, t), di.pullback(g, backend, x, w))
        elapsed = time.perf_counter() - start
        results.append(r)
        rows.append([repr(backend), np.array2string(r[0], precision=6), np.array2string(r[2], precision=6),
                     np.array2string(r[3], precision=6), f"{elapsed * 1e3:.1f} ms"])
    print(format_table(["backend", "gradient of f", "pushforward of g", "pullback of g", "time (1st call)"], rows))
    ref = results[0]
    worst = max(
        max(float(np.max(np.abs(np.asarray(a_) - np.asarray(b_)) / np.maximum(1, np.abs(np.asarray(b_))))) for a_, b_ in zip(r, ref))
        for r in results
    )
    print(f"\nlargest disagreement between engines (incl. the Jacobian of g): {worst:.1e}")


def demo() -> int:
    """The showcase: Newton-type optimization at n = 100,000 with every engine."""
    from diffinterface._demo_newton import demo_hvp_speed, demo_newton

    print("== First-order operators through every installed engine ==\n")
    _demo_first_order()
    print("\n== Newton-Krylov (scipy trust-krylov) with di.scipy_objective ==\n")
    converged = demo_newton()
    print("\n== Hessian-vector products at n = 100,000 (extended Rosenbrock) ==\n")
    demo_hvp_speed()
    from diffinterface._demo_least_squares import demo_least_squares
    from diffinterface._demo_sparse import demo_sparse

    print("\n== Sparse Jacobians: the 2-D Brusselator at N = 64 with di.AutoSparse ==\n")
    sparse_ok = demo_sparse()

    print("\n== Nonlinear least squares (scipy least_squares, trf + lsmr) with di.scipy_least_squares ==\n")
    solved = demo_least_squares()
    return 0 if converged and solved and sparse_ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffinterface", description=__doc__)
    parser.add_argument("command", choices=["doctor", "demo"], help="what to run")
    args = parser.parse_args(argv)
    return {"doctor": doctor, "demo": demo}[args.command]()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

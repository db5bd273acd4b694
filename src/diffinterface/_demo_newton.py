"""The Newton showcase of ``python -m diffinterface demo``."""

from __future__ import annotations

import importlib
import time

import numpy as np
import scipy.optimize

import diffinterface as di
from diffinterface._table import format_table


def rosenbrock(xp):
    """Extended Rosenbrock: sum over pairs of 100 (x2 - x1²)² + (1 - x1)²."""
    return lambda x: xp.sum(100.0 * (x[1::2] - x[::2] ** 2) ** 2 + (1.0 - x[::2]) ** 2)


def logistic(xp, features, labels, lam):
    """L2-regularised logistic regression (mean log-loss + lam/2 |w|²)."""

    def loss(w):
        margins = labels * (features @ w)
        return xp.mean(xp.log1p(xp.exp(-margins))) + 0.5 * lam * xp.sum(w * w)

    return loss


def _engines():
    out = []
    for package, backend, ns in [("jax", di.AutoJAX(), "jax.numpy"), ("torch", di.AutoTorch(), "torch"),
                                 ("autograd", di.AutoAutograd(), "autograd.numpy")]:
        try:
            out.append((backend, importlib.import_module(ns), ns))
        except ImportError:
            continue
    return out


def _constants(ns_name, *arrays):
    if ns_name == "torch":
        import torch

        return tuple(torch.as_tensor(a) for a in arrays)
    return arrays


def _run(f, backend, x0, gtol):
    start = time.perf_counter()
    kwargs = di.scipy_objective(f, backend, x0)
    setup = time.perf_counter() - start
    result = scipy.optimize.minimize(x0=x0, method="trust-krylov", options={"gtol": gtol, "maxiter": 500}, **kwargs)
    elapsed = time.perf_counter() - start
    gnorm = float(np.linalg.norm(kwargs["jac"](result.x)))
    return result, gnorm, kwargs["fun"].point.operator, setup, elapsed


def _one_torch_thread():
    """torch with 2 threads on a 2-core machine is erratic; the demo times it on one."""
    try:
        import torch
    except ImportError:
        return lambda: None
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    return lambda: torch.set_num_threads(previous)


def demo_newton(n: int = 100_000) -> bool:
    restore = _one_torch_thread()
    try:
        return _demo_newton(n)
    finally:
        restore()


def _demo_newton(n: int) -> bool:
    rows, ok = [], True
    x0 = np.tile([-1.2, 1.0], n // 2)
    rng = np.random.default_rng(0)
    m, d = 2000, 500
    features = rng.normal(size=(m, d)) / np.sqrt(d)
    labels = np.sign(features @ rng.normal(size=d) + 0.1 * rng.normal(size=m))
    # gtol per problem: what float64 can reach (the logistic loss flattens out near 1e-8)
    problems = [(f"Rosenbrock n={n:,}", lambda xp, ns: rosenbrock(xp), x0, 1e-9),
                (f"logistic regression n={d}", lambda xp, ns: logistic(xp, *_constants(ns, features, labels), 1e-3),
                 np.zeros(d), 1e-7)]
    for name, make, start, gtol in problems:
        for backend, xp, ns in _engines():
            result, gnorm, op, setup, elapsed = _run(make(xp, ns), backend, start, gtol)
            ok &= gnorm < 1e-6
            rows.append([name, repr(backend), result.nit, f"{result.fun:.3e}", f"{gnorm:.1e}", op.products,
                         op.strategy, f"{setup:.2f}", f"{elapsed:.2f}"])
    print(format_table(["problem", "engine", "iterations", "final f", "|grad f|", "HVPs", "H strategy",
                        "prepare s", "total s"], rows))
    print("\nevery run converged to |grad f| < 1e-6" if ok else "\nSOME RUN DID NOT CONVERGE")
    return ok


def _median_seconds(fn, repeats=7):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if hasattr(out, "block_until_ready"):
            out.block_until_ready()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def demo_hvp_speed(n: int = 100_000) -> None:
    restore = _one_torch_thread()
    try:
        _demo_hvp_speed(n)
    finally:
        restore()


def _demo_hvp_speed(n: int) -> None:
    rows = []
    rng = np.random.default_rng(1)
    x, v = rng.normal(size=n), rng.normal(size=n)
    for backend, xp, _ in _engines():
        f = rosenbrock(xp)
        grad_prep = di.prepare_gradient(f, backend, x)
        hvp_prep = di.prepare_hvp(f, backend, x, v)
        H = di.hessian_operator(f, backend, x)
        t_grad = _median_seconds(lambda: di.gradient(f, backend, x, prep=grad_prep))
        t_hvp = _median_seconds(lambda: di.hvp(f, backend, x, v, prep=hvp_prep))
        H @ v
        t_apply = _median_seconds(lambda: H @ v)
        rows.append([repr(backend), f"{t_grad * 1e3:.2f}", f"{t_hvp * 1e3:.2f}", f"{t_apply * 1e3:.2f}",
                     f"{t_apply / t_grad:.2f}", H.strategy])
    print(format_table(["engine", "gradient ms", "one-shot hvp ms", "H @ v ms (same x)", "H @ v / gradient",
                        "H strategy"], rows))
    print("\n(full comparison with the hand-written native strategies: benchmarks/hvp.py, benchmarks/RESULTS.md)")

"""The least-squares showcase of ``python -m diffinterface demo``.

Problem: the steady state of the 2-D Brusselator on a periodic N x N grid
(unknowns u and v, n = 2 N²) with a source term, regularised towards noisy
observations of the state:

    r = [ A + u²v - (B + 1) u + D lap(u) + s ;  B u - u²v + D lap(v) ;  mu (z - z_obs) ]

(m = 2n residuals, a nonzero minimum).  Solved with
``scipy.optimize.least_squares(method="trf", tr_solver="lsmr")`` using the
matrix-free Jacobian operator of each installed engine, the sparse Jacobian
of ``AutoSparse`` (sparsity detected from the code and colored once; each
``jac`` one compressed evaluation, as a ``csr_array``), and against SciPy's
own finite-difference Jacobian given the true sparsity (``jac_sparsity``).
"""

from __future__ import annotations

import importlib
import statistics
import time

import numpy as np
import scipy.optimize
import scipy.sparse as sp

import diffinterface as di
from diffinterface._least_squares import scipy_least_squares
from diffinterface._table import format_table

A, B, D, MU = 1.0, 3.0, 0.2, 0.3
TOLERANCES = {"ftol": 1e-12, "xtol": 1e-12, "gtol": 1e-12}
REPEATS = 3  # solves of AutoSparse and of SciPy FD each, compared by their median wall times


def brusselator_data(N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source s, observations z_obs, starting point x0), all float64."""
    rng = np.random.default_rng(0)
    grid = np.linspace(0.0, 1.0, N, endpoint=False)
    X, Y = np.meshgrid(grid, grid, indexing="ij")
    source = 0.5 * np.exp(-((X - 0.3) ** 2 + (Y - 0.6) ** 2) / 0.02)
    z_obs = np.concatenate([(A + 0.1 * rng.normal(size=(N, N))).ravel(),
                            (B / A + 0.1 * rng.normal(size=(N, N))).ravel()])
    x0 = np.concatenate([np.full(N * N, A), np.full(N * N, B / A)]) + 0.05 * rng.normal(size=2 * N * N)
    return source, z_obs, x0


def brusselator(xp, asarray, N: int):
    """The residual function r(z) for namespace ``xp`` (jax.numpy, torch, autograd.numpy, numpy)."""
    source, z_obs = (asarray(a) for a in brusselator_data(N)[:2])
    cat = xp.cat if hasattr(xp, "cat") else xp.concatenate

    def lap(a):
        return xp.roll(a, 1, 0) + xp.roll(a, -1, 0) + xp.roll(a, 1, 1) + xp.roll(a, -1, 1) - 4.0 * a

    def residuals(z):
        u = xp.reshape(z[: N * N], (N, N))
        v = xp.reshape(z[N * N:], (N, N))
        uuv = u * u * v
        ru = A + uuv - (B + 1.0) * u + D * lap(u) + source
        rv = B * u - uuv + D * lap(v)
        return cat([xp.reshape(ru, (-1,)), xp.reshape(rv, (-1,)), MU * (z - z_obs)])

    return residuals


def brusselator_sparsity(N: int) -> sp.csr_array:
    """The residual Jacobian's sparsity pattern, (4 N², 2 N²)."""
    ring = sp.diags_array([1.0, 1.0, 1.0], offsets=[-1, 0, 1], shape=(N, N)).tolil()
    ring[0, N - 1] = ring[N - 1, 0] = 1
    eye_n, eye = sp.eye_array(N), sp.eye_array(N * N)
    stencil = sp.kron(ring, eye_n) + sp.kron(eye_n, ring)
    pde = sp.block_array([[stencil, eye], [eye, stencil]])
    return sp.csr_array(sp.vstack([pde, sp.eye_array(2 * N * N)]) != 0)


def _engines():
    out = []
    for package, backend, ns in [("jax", di.AutoJAX(), "jax.numpy"), ("torch", di.AutoTorch(), "torch"),
                                 ("autograd", di.AutoAutograd(), "autograd.numpy")]:
        try:
            xp = importlib.import_module(ns)
        except ImportError:
            continue
        asarray = np.asarray
        if ns == "torch":
            asarray = xp.as_tensor
        out.append((backend, xp, asarray))
    return out


def _sparse_engines():
    """The engine of the AutoSparse row: autograd where installed (its compressed pullbacks need no
    compilation, which at this size costs more than the 15 Jacobians), else the first engine."""
    engines = _engines()
    chosen = [e for e in engines if isinstance(e[0], di.AutoAutograd)] or engines[:1]
    return chosen


def solve(r, backend, x0, jac_kind="operator", **options):
    """Run least_squares with di.scipy_least_squares; (result, seconds, shared points)."""
    start = time.perf_counter()
    kwargs = scipy_least_squares(r, backend, x0, jac_kind=jac_kind)
    result = scipy.optimize.least_squares(x0=x0, method="trf", tr_solver="lsmr", **TOLERANCES, **options, **kwargs)
    return result, time.perf_counter() - start, kwargs["fun"].point


def solve_scipy_fd(N: int, x0):
    r = brusselator(np, np.asarray, N)
    start = time.perf_counter()
    result = scipy.optimize.least_squares(r, x0, method="trf", tr_solver="lsmr", jac_sparsity=brusselator_sparsity(N),
                                          **TOLERANCES)
    return result, time.perf_counter() - start


def brusselator_jacobian(N: int, z: np.ndarray) -> np.ndarray:
    """The exact Jacobian of the residuals (closed form), as a dense (4 N², 2 N²) array."""
    u, v = z[: N * N], z[N * N:]
    ring = sp.diags_array([1.0, -2.0, 1.0], offsets=[-1, 0, 1], shape=(N, N)).tolil()
    ring[0, N - 1] = ring[N - 1, 0] = 1.0
    eye_n = sp.eye_array(N)
    lap = D * (sp.kron(ring, eye_n) + sp.kron(eye_n, ring))
    pde = sp.block_array([[sp.diags_array(2 * u * v - (B + 1.0)) + lap, sp.diags_array(u * u)],
                          [sp.diags_array(B - 2 * u * v), sp.diags_array(-u * u) + lap]])
    return sp.vstack([pde, MU * sp.eye_array(2 * N * N)]).toarray()


def solve_dense_exact(N: int, x0):
    """Reference: the exact dense Jacobian (closed form) at every point."""
    return scipy.optimize.least_squares(brusselator(np, np.asarray, N), x0, jac=lambda z: brusselator_jacobian(N, z),
                                        method="trf", tr_solver="lsmr", **TOLERANCES)


def _fd_colors(N: int) -> int:
    try:
        from scipy.optimize._numdiff import group_columns

        return int(group_columns(brusselator_sparsity(N)).max()) + 1
    except Exception:  # noqa: BLE001 - a private SciPy helper; the column is informative only
        return 0


def demo_least_squares(N: int = 71, N_check: int = 32) -> bool:
    """Print the table; True when every run reaches the reference cost."""
    ok = True
    rows = []
    # 1. a 2,048-unknown instance: the matrix-free operator against the exact dense Jacobian
    _, _, x0 = brusselator_data(N_check)
    reference = solve_dense_exact(N_check, x0)
    for backend, xp, asarray in _engines():
        result, seconds, points = solve(brusselator(xp, asarray, N_check), backend, x0)
        rel = abs(result.cost - reference.cost) / reference.cost
        ok &= rel <= 1e-8
        rows.append([f"n={2 * N_check**2:,}", f"{backend!r} operator", f"{result.cost:.10e}", f"{rel:.1e}",
                     result.nfev, result.njev, points.evaluations, f"{seconds:.2f}"])
    rows.append([f"n={2 * N_check**2:,}", "exact dense Jacobian (reference)", f"{reference.cost:.10e}", "0",
                 reference.nfev, reference.njev, "", ""])
    # 2. the large instance: each engine against SciPy's FD Jacobian with jac_sparsity
    _, _, x0 = brusselator_data(N)
    fd, first_fd_seconds = solve_scipy_fd(N, x0)
    fd_times = [first_fd_seconds]
    label = f"n={2 * N**2:,}"
    for backend, xp, asarray in _engines():
        result, seconds, points = solve(brusselator(xp, asarray, N), backend, x0)
        rel = abs(result.cost - fd.cost) / fd.cost
        ok &= rel <= 1e-6
        strategy = points.operators[0].strategy
        rows.append([label, f"{backend!r} operator ({strategy})", f"{result.cost:.10e}", f"{rel:.1e}",
                     result.nfev, result.njev, points.evaluations, f"{seconds:.2f}"])
    sparse_seconds = []
    for backend, xp, asarray in _sparse_engines():
        # the two compared run REPEATS times each, alternating, and are compared by their medians:
        # single runs of 0.2-0.7 s swing by up to 2x on a shared machine
        times = []
        for repeat in range(REPEATS):
            if repeat:
                fd_times.append(solve_scipy_fd(N, x0)[1])
            result, seconds, points = solve(brusselator(xp, asarray, N), di.AutoSparse(backend), x0,
                                            jac_kind="sparse")
            times.append(seconds)
        seconds = statistics.median(times)
        rel = abs(result.cost - fd.cost) / fd.cost
        ok &= rel <= 1e-6
        c = di.ncolors(points.operators[0].sparse_prep)
        sparse_seconds.append((f"AutoSparse({backend!r})", seconds, result.cost))
        rows.append([label, f"AutoSparse({backend!r}) csr ({c} colors)", f"{result.cost:.10e}", f"{rel:.1e}",
                     result.nfev, result.njev, f"{points.evaluations} + {result.njev}x{c} dir.", f"{seconds:.2f}"])
    fd_seconds = statistics.median(fd_times)
    colors = _fd_colors(N)
    rows.append([label, f"SciPy FD + jac_sparsity ({colors} colors)", f"{fd.cost:.10e}", "0", fd.nfev, fd.njev,
                 fd.nfev + colors * fd.njev if colors else "?", f"{fd_seconds:.2f}"])
    print(format_table(["problem", "Jacobian", "final cost", "rel. diff", "f evals", "J evals",
                        "f evaluations in all", "wall s"], rows,
                       title="Brusselator steady state + observations, least_squares(method='trf', tr_solver='lsmr')"))
    print("\n'f evaluations in all': di operators set up once per point (fun and jac share it; the products are "
          "JVPs/VJPs);\nAutoSparse: one f evaluation per point, plus for each J one compressed pass ('J x c dir.': "
          "c JVPs or VJPs, batched;\nits wall time includes detection, coloring and compilation); SciPy's FD adds "
          f"one f evaluation per color for each J (not counted in its nfev);\nAutoSparse and SciPy FD: median wall "
          f"time of {REPEATS} alternating solves each")
    for name, seconds, cost in sparse_seconds:
        verdict = "faster" if seconds < fd_seconds else "SLOWER"
        print(f"{name}: {seconds:.2f} s vs SciPy FD + jac_sparsity {fd_seconds:.2f} s ({verdict}), final cost "
              f"{'<=' if cost <= fd.cost else '>'} SciPy's")
    print("\nevery run reached the reference cost" if ok else "\nSOME RUN MISSED THE REFERENCE COST")
    return ok

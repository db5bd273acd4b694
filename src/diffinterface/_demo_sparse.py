"""The sparse-Jacobian showcase of ``python -m diffinterface demo``.

The 2-D Brusselator Jacobian (N = 64: 8192 x 8192, 49,152 nonzeros) with
every installed engine through ``di.AutoSparse``: detection time, colors,
prepared sparse evaluation time against the dense Jacobian time, and the
largest difference sparse vs dense.

The JAX dense Jacobian (512 MiB here) is measured in full.  For torch,
autograd and finite differences (dense FD = 8192 extra evaluations) the dense
path -- a batched pushforward over basis columns (pullback over basis rows
for autograd) -- is timed on ``FD_COLUMNS`` directions and scaled to all of
them (labelled "est.", a lower bound), and the sparse result is compared with
those full columns/rows.  Finite differences are also checked against the
first AD engine's sparse Jacobian.  Tolerances: 1e-8 relative, FD 1e-5.
"""

from __future__ import annotations

import importlib
import statistics
import time

import numpy as np

import diffinterface as di
from diffinterface._table import format_table
from diffinterface.testing.problems import brusselator_2d

FD_COLUMNS = 256  # directions of the dense path actually timed (then scaled)


def _median(fn, repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _block(out):
    if hasattr(out, "block_until_ready"):
        out.block_until_ready()
    elif hasattr(out, "data") and hasattr(out.data, "block_until_ready"):  # BCOO
        out.data.block_until_ready()
    return out


def _engines():
    """(label, dense backend, namespace, to_native) for each installed engine."""
    out = []
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        out.append(("JAX", di.AutoJAX(), jnp, jnp.asarray))
    except ImportError:
        pass
    try:
        import torch

        out.append(("torch", di.AutoTorch(), torch, lambda a: torch.as_tensor(a, dtype=torch.float64)))
    except ImportError:
        pass
    try:
        anp = importlib.import_module("autograd.numpy")
        out.append(("autograd", di.AutoAutograd(), anp, np.asarray))
    except ImportError:
        pass
    out.append(("finite differences", di.AutoFiniteDiff(), np, np.asarray))
    return out


def _dense_block_time(f, backend, x, n: int, k: int) -> tuple[float, np.ndarray, bool]:
    """Seconds for k directions of the dense path (a prepared batched pushforward over basis
    columns, or pullback over basis rows for reverse-only engines), the (n, k) or (k, n) block,
    and whether it holds columns."""
    forward = not isinstance(backend, di.AutoAutograd)
    idx = np.linspace(0, n - 1, k).astype(int)
    basis = [np.zeros(n) for _ in idx]
    for b, i in zip(basis, idx):
        b[i] = 1.0
    seeds = tuple(_as_like(b, x) for b in basis)
    op, prepare = (di.pushforward, di.prepare_pushforward) if forward else (di.pullback, di.prepare_pullback)
    prep = prepare(f, backend, x, seeds)
    op(f, backend, x, seeds, prep=prep)
    t = time.perf_counter()
    out = op(f, backend, x, seeds, prep=prep)
    elapsed = time.perf_counter() - t
    block = np.stack([np.asarray(_to_numpy(o)).reshape(-1) for o in out], axis=1)
    return elapsed, (idx, block if forward else block.T), forward


def _as_like(a, x):
    if type(x).__module__.startswith("torch"):
        import torch

        return torch.as_tensor(a, dtype=x.dtype)
    if type(x).__module__.startswith(("jax", "jaxlib")):
        import jax.numpy as jnp

        return jnp.asarray(a)
    return a


def _to_numpy(a):
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def demo_sparse(N: int = 64) -> bool:
    """Print the sparse-Jacobian table; False if a sparse Jacobian disagrees with the dense one."""
    try:  # one torch thread: on a small shared machine more threads only oversubscribe it
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    try:
        return _demo_sparse(N)
    finally:
        if torch is not None:
            torch.set_num_threads(threads)


def _demo_sparse(N: int) -> bool:
    x0 = np.random.default_rng(0).uniform(size=2 * N * N)
    n = x0.size
    rows, ok, nnz, exact = [], True, 0, None
    for label, dense_backend, xp, native in _engines():
        f = lambda x, xp=xp: brusselator_2d(x, xp, N)  # noqa: E731
        x = native(x0)
        sparse = di.AutoSparse(dense_backend)
        fd = isinstance(dense_backend, di.AutoFiniteDiff)
        di.jacobian_sparsity(lambda x, xp=xp: brusselator_2d(x, xp, 4), native(np.ones(32)))  # one-off imports

        t = time.perf_counter()
        di.jacobian_sparsity(f, x)
        t_detect = time.perf_counter() - t

        t = time.perf_counter()
        prep = di.prepare_jacobian(f, sparse, x)
        S = _block(di.jacobian(f, sparse, x, prep=prep))
        t_prep = time.perf_counter() - t
        t_sparse = _median(lambda: _block(di.jacobian(f, sparse, x, prep=prep)), 5)
        S = di.to_scipy(S)
        nnz = S.nnz

        # dense path on K basis directions, extrapolated to all n (the dense path is exactly this
        # batched pushforward/pullback over all n basis vectors)
        k = FD_COLUMNS
        if isinstance(dense_backend, di.AutoJAX):  # compiled: the full dense J is affordable, measure it
            dprep = di.prepare_jacobian(f, dense_backend, x)
            _block(di.jacobian(f, dense_backend, x, prep=dprep))
            t = time.perf_counter()
            D = np.array(_block(di.jacobian(f, dense_backend, x, prep=dprep))).reshape(n, n)
            t_dense = time.perf_counter() - t
            scale = float(np.abs(D).max())
            coo = S.tocoo()
            D[coo.row, coo.col] -= coo.data
            err = float(np.abs(D).max()) / scale
            del D
            dense_label = f"{t_dense * 1e3:.0f}"
        else:
            t_block, (idx, block), forward = _dense_block_time(f, dense_backend, x, n, k)
            t_dense = t_block * n / k
            ref = S.toarray()[:, idx] if forward else S.toarray()[idx, :]
            err = float(np.abs(ref - block).max()) / float(np.abs(block).max())
            dense_label = f"~{t_dense * 1e3:.0f} (est.)"
        if not fd and exact is None:
            exact = S
        elif fd and exact is not None:  # FD vs FD agrees to rounding: also check against an exact engine
            err = max(err, float(np.abs((S - exact).data).max()) / float(np.abs(exact.data).max()))
        tol = 1e-5 if fd else 1e-8
        ok = ok and err <= tol
        rows.append([label, f"{t_detect * 1e3:.1f}", f"{t_prep * 1e3:.0f}", di.ncolors(prep),
                     f"{t_sparse * 1e3:.2f}", dense_label, f"{t_dense / t_sparse:.0f}x",
                     f"{err:.1e} {'ok' if err <= tol else 'MISMATCH'}"])
    print(format_table(
        ["engine", "detect (ms)", "prepare (ms)", "colors", "sparse J (ms)", "dense J (ms)",
         "speed-up", "max |sparse - dense| / max |J|"],
        rows,
        title=f"Sparse Jacobian: 2-D Brusselator, N = {N} ({n} x {n}, nnz {nnz}), "
              "di.AutoSparse(engine), prepared",
    ))
    print(f"  dense J: JAX measured in full (prepared, compiled; {n * n * 8 / 2**20:.0f} MiB); the others (est.): "
          f"their dense path (batched pushforward over basis columns; pullback over rows for autograd) "
          f"timed on {FD_COLUMNS} of {n} directions and scaled by {n // FD_COLUMNS}, a lower bound (the full "
          f"J is also {n * n * 8 / 2**20:.0f} MiB to write); the difference is over the whole J for JAX and "
          f"over those {FD_COLUMNS} full columns/rows otherwise, "
          "tolerance 1e-8 relative (finite differences 1e-5, and also against "
          "the first AD engine's sparse J).  prepare = detection + coloring + "
          "compile + first call; detect = a second detection (one-off imports paid on a tiny problem).")
    return ok


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(0 if demo_sparse() else 1)

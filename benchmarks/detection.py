"""Sparsity detection: diffinterface vs asdex on the same jax.numpy functions.

    python benchmarks/detection.py [--quick] [--out benchmarks/results/detection.md]

Global Jacobian detection on the 2-D Brusselator (N = 32 ... 256), Hessian
detection on CUTEst-style objectives (n = 2000), a dense n = 10,000 Hessian,
and a 1e6-input Brusselator Jacobian with its peak memory.  Times are medians
of repeated calls after one warm-up call (both tools cache nothing between
calls that we know of; the warm-up pays JAX's one-off compilation of helpers).
asdex is a benchmark-only dependency (`pip install asdex`).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import emit, package_version  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from diffinterface.sparse.detection import hessian_sparsity, jacobian_sparsity  # noqa: E402
from diffinterface.testing.problems import CUTEST, brusselator_2d, brusselator_pattern, cutest_x0  # noqa: E402

try:
    import asdex
except ImportError:  # pragma: no cover
    asdex = None


def _median_time(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _row(name, size, ours, theirs, nnz_ours, nnz_theirs):
    ratio = f"{theirs / ours:.1f}x" if theirs else "-"
    ts = f"{theirs * 1e3:.1f}" if theirs else "-"
    return f"| {name} | {size} | {ours * 1e3:.1f} | {ts} | {ratio} | {nnz_ours} | {nnz_theirs if theirs else '-'} |"


def brusselator_rows(Ns, repeat):
    rows = []
    for N in Ns:
        x = jnp.asarray(np.random.default_rng(0).uniform(size=2 * N * N))
        f = jax.jit(brusselator_2d)
        t_f, _ = _median_time(lambda: f(x).block_until_ready(), repeat)
        t_ours, pat = _median_time(lambda: jacobian_sparsity(brusselator_2d, x), repeat)
        assert (pat != brusselator_pattern(N)).nnz == 0
        t_asdex, nnz_asdex = None, None
        if asdex is not None:
            t_asdex, ap = _median_time(lambda: asdex.jacobian_sparsity(brusselator_2d, x), repeat)
            nnz_asdex = ap.nnz
        rows.append(_row(f"Brusselator J (f: {t_f * 1e3:.2f} ms)", f"N={N}, n={2 * N * N}",
                         t_ours, t_asdex, pat.nnz, nnz_asdex))
    return rows


def cutest_rows(n, repeat):
    rows = []
    for name, fn in CUTEST.items():
        x = jnp.asarray(cutest_x0(n))
        f = lambda x, fn=fn: fn(x, jnp)  # noqa: E731
        t_ours, pat = _median_time(lambda: hessian_sparsity(f, x), repeat)
        t_asdex, nnz_asdex = None, None
        if asdex is not None:
            t_asdex, ap = _median_time(lambda: asdex.hessian_sparsity(f, x), repeat)
            nnz_asdex = ap.nnz
        rows.append(_row(f"{name} H", f"n={n}", t_ours, t_asdex, pat.nnz, nnz_asdex))
    return rows


def dense_rows(n, repeat):
    x = jnp.ones(n)
    f = lambda x: jnp.sum(x) ** 2 + jnp.sum(jnp.sin(x))  # noqa: E731
    t_ours, pat = _median_time(lambda: hessian_sparsity(f, x), repeat)
    t_asdex, nnz_asdex = None, None
    if asdex is not None:
        t_asdex, ap = _median_time(lambda: asdex.hessian_sparsity(f, x), 1)
        nnz_asdex = ap.nnz
    return [_row("dense H: sum(x)^2 + sum(sin x)", f"n={n}", t_ours, t_asdex, pat.nnz, nnz_asdex)]


def million_row():
    N = 708
    x = jnp.asarray(np.random.default_rng(0).uniform(size=2 * N * N))
    jacobian_sparsity(brusselator_2d, jnp.asarray(np.ones(2 * 8 * 8)))
    tracemalloc.start()
    t = time.perf_counter()
    pat = jacobian_sparsity(brusselator_2d, x)
    dt = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (f"1e6-input Brusselator (N={N}, n={x.size}): global Jacobian pattern in "
            f"{dt:.2f} s, nnz {pat.nnz}, peak traced host memory {peak / 2**20:.0f} MiB "
            "(tracemalloc: NumPy/SciPy buffers)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    repeat = 3 if args.quick else 5
    Ns = (32, 64) if args.quick else (32, 64, 128, 256)
    head = ["| function | size | diffinterface (ms) | asdex (ms) | speed-up | nnz diffinterface | nnz asdex |",
            "|---|---|---|---|---|---|---|"]
    rows = brusselator_rows(Ns, repeat) + cutest_rows(2000, repeat) + dense_rows(10_000, repeat)
    lines = [
        "# Sparsity detection: diffinterface vs asdex",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, jax {jax.__version__}, "
        f"asdex {getattr(asdex, '__version__', package_version('asdex'))}; CPU only.",
        "Command: `python benchmarks/detection.py --out benchmarks/results/detection.md`",
        f"Median of {repeat} calls after a warm-up call (the dense asdex row: one call).",
        "",
        *head, *rows, "",
        million_row(),
    ]
    emit("\n".join(lines), args.out)


if __name__ == "__main__":
    main()

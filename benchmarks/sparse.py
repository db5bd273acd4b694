"""Prepared sparse Jacobians/Hessians: diffinterface vs asdex, sparsejac and dense JAX.

    python benchmarks/sparse.py [--quick] [--out benchmarks/results/sparse.md]

One process, float64, one thread (XLA_FLAGS below, torch.set_num_threads(1)).

* Brusselator 2-D Jacobian (N = 16 ... 128) with ``di.AutoSparse(di.AutoJAX())``:
  prepared ``di.jacobian`` with jax input (BCOO out) and numpy input (scipy csr
  out) vs jitted ``asdex.jacobian_from_coloring`` (BCOO), jitted
  ``sparsejac.jacfwd`` given the exact pattern, and jitted dense ``jax.jacfwd``.
* CUTEst-style objectives (n = 2000) Hessians: ``di.hessian`` (BCOO) vs jitted
  ``asdex.hessian_from_coloring``, jitted ``sparsejac.jacfwd(jax.grad(f))`` on the
  Hessian pattern, and jitted dense ``jax.hessian``.
* Preparation: ``di.prepare_*`` + first call vs ``asdex.*_coloring`` + jit + first call.
* Brusselator with torch and NumPy + finite differences: prepared sparse vs dense.

Steady-state times: interleaved batches (benchmarks/_timing.py), medians; the
ratios are medians of per-round ratios.  Dense timings use a few single calls
(they take up to seconds); a dense Jacobian at N = 128 is 8 GiB and is skipped.
asdex and sparsejac are benchmark-only dependencies.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402
from jax.experimental import sparse as jsparse  # noqa: E402

torch.set_num_threads(1)

import diffinterface as di  # noqa: E402
from _timing import block, cpu_model, emit, interleaved_samples, package_version, paired_ratio  # noqa: E402
from diffinterface.testing.problems import CUTEST, brusselator_2d, brusselator_pattern, cutest_x0  # noqa: E402

import asdex  # noqa: E402

try:
    import sparsejac
except ImportError:  # pragma: no cover
    sparsejac = None


def _b(out):
    """Block on a BCOO / array / tuple."""
    if isinstance(out, jsparse.BCOO):
        out.data.block_until_ready()
        return out
    return block(out)


def _once(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _dense_median(fn, repeat):
    fn()
    return statistics.median(_once(fn) for _ in range(repeat))


def _bcoo_pattern(pat):
    coo = pat.tocoo()
    idx = np.stack([coo.row, coo.col], axis=1).astype(np.int32)
    return jsparse.BCOO((jnp.ones(coo.nnz), jnp.asarray(idx)), shape=pat.shape)


def _maxdiff(a, b):
    return float(np.abs(di.to_scipy(a).toarray() - di.to_scipy(b).toarray()).max())


def _ms(t):
    return "-" if t is None else (f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}" if t < 1 else f"{t * 1e3:.0f}")


def _r(r):
    return "-" if r is None else f"{r:.2f}"


def _prep_medians(factory, kind, backend, x, repeat):
    """Median wall times of preparation + first call of ``kind`` ("jacobian" or
    "hessian") for both tools, alternating.

    Each run gets ``f = factory(k)`` with its own k: a fresh function object and a
    program that differs in one constant (scaled by 1 + k * 1e-15), so neither
    the trace caches nor JAX's in-memory cache of compiled programs (keyed by the
    program's text) can serve a repeat.  Returns the two times, asdex's last
    (coloring, jitted function) and our last (f, prep)."""
    prepare, operator = (di.prepare_jacobian, di.jacobian) if kind == "jacobian" else (di.prepare_hessian, di.hessian)
    coloring, from_coloring = ((asdex.jacobian_coloring, asdex.jacobian_from_coloring) if kind == "jacobian"
                               else (asdex.hessian_coloring, asdex.hessian_from_coloring))

    def ours(f):
        prep = prepare(f, backend, x)
        _b(operator(f, backend, x, prep=prep))
        return f, prep

    def theirs(f):
        c = coloring(f, x)
        fn = jax.jit(from_coloring(f, c))
        _b(fn(x))
        return c, fn

    times = ([], [])
    for k in range(repeat):
        results = []
        for side, (fn, acc) in enumerate(zip((ours, theirs), times)):
            f = factory(2 * k + side)
            t0 = time.perf_counter()
            results.append(fn(f))
            acc.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1]), results[1], results[0]


def _warm_tools():
    """Pay one-off compilation of detection/coloring helpers of both tools on a tiny problem."""
    f = lambda x: brusselator_2d(x, jnp, 4)  # noqa: E731
    x = jnp.ones(32)
    di.jacobian(f, di.AutoSparse(di.AutoJAX()), x)
    jax.jit(asdex.jacobian_from_coloring(f, asdex.jacobian_coloring(f, x)))(x)
    g = lambda x: CUTEST["ROSENBR"](x, jnp)  # noqa: E731
    di.hessian(g, di.AutoSparse(di.AutoJAX()), x)
    jax.jit(asdex.hessian_from_coloring(g, asdex.hessian_coloring(g, x)))(x)


def _steady(named, min_s):
    """Interleaved medians of named callables; ratios to the first one."""
    names = list(named)
    samples = interleaved_samples([named[k] for k in names], min_s=min_s, batch_s=0.01, min_batches=5, max_s=2.0)
    med = {k: statistics.median(s) for k, s in zip(names, samples)}
    base = samples[0]
    ratio = {k: paired_ratio(s, base) for k, s in zip(names, samples)}  # median of ours[i] / theirs[i]
    return med, ratio


def brusselator_jax(Ns, min_s, dense_repeat, prep_repeat):
    rows = []
    for N in Ns:
        n = 2 * N * N
        x0 = np.random.default_rng(0).uniform(size=n)
        x, xn = jnp.asarray(x0), x0.copy()
        backend = di.AutoSparse(di.AutoJAX())

        t_prep, t_prep_a, (col, ja), (f, prep) = _prep_medians(
            lambda k, N=N: (lambda x: brusselator_2d(x, jnp, N, alpha=10.0 * (1 + k * 1e-15))),
            "jacobian", backend, x, prep_repeat)
        prepn = di.prepare_jacobian(f, backend, xn)
        di.jacobian(f, backend, xn, prep=prepn)
        fj = jax.jit(f)
        _b(fj(x))
        named = {
            "ours": lambda: _b(di.jacobian(f, backend, x, prep=prep)),
            "ours_np": lambda: di.jacobian(f, backend, xn, prep=prepn),
            "asdex": lambda: _b(ja(x)),
            "f": lambda: _b(fj(x)),
        }
        if sparsejac is not None:
            sj = jax.jit(sparsejac.jacfwd(f, _bcoo_pattern(brusselator_pattern(N))))
            _b(sj(x))
            named["sparsejac"] = lambda: _b(sj(x))
        for fn in named.values():
            fn()
        med, ratio = _steady(named, min_s)
        J = di.jacobian(f, backend, x, prep=prep)
        # against asdex on the same f (the timed asdex run used its own, differing in one constant)
        err = max(_maxdiff(J, jax.jit(asdex.jacobian_from_coloring(f, col))(x)),
                  _maxdiff(di.jacobian(f, backend, xn, prep=prepn), J))
        t_dense = None
        if n <= 8192:
            dj = jax.jit(jax.jacfwd(f))
            t_dense = _dense_median(lambda: _b(dj(x)), dense_repeat)
            err = max(err, float(np.abs(np.asarray(dj(x)) - di.to_scipy(J).toarray()).max()))
        rows.append([
            f"Brusselator J N={N}", n, di.ncolors(prep), col.num_colors, _ms(med["f"]), _ms(med["ours"]),
            _ms(med["ours_np"]), _ms(med["asdex"]), _r(ratio["asdex"]),
            _ms(med.get("sparsejac")), _r(ratio["sparsejac"]) if "sparsejac" in ratio else "-",
            _ms(t_dense), f"{t_dense / med['ours']:.0f}x" if t_dense else "8 GiB: skipped",
            f"{t_prep:.2f}", f"{t_prep_a:.2f}", _r(t_prep / t_prep_a), f"{err:.0e}",
        ])
        print(rows[-1], flush=True)
    return rows


def cutest_hessians(n, names, min_s, dense_repeat, prep_repeat):
    rows = []
    x0 = cutest_x0(n)
    x = jnp.asarray(x0)
    for name in names:
        obj = CUTEST[name]
        backend = di.AutoSparse(di.AutoJAX())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_prep, t_prep_a, (col, ha), (f, prep) = _prep_medians(
                lambda k, obj=obj: (lambda x: obj(x, jnp) * (1 + k * 1e-15)), "hessian", backend, x, prep_repeat)
        named = {"ours": lambda: _b(di.hessian(f, backend, x, prep=prep)), "asdex": lambda: _b(ha(x))}
        sj_colors = "-"
        if sparsejac is not None:
            pat = di.sparsity_pattern(prep)
            sj = jax.jit(sparsejac.jacfwd(jax.grad(f), _bcoo_pattern(pat)))
            _b(sj(x))
            named["sparsejac"] = lambda: _b(sj(x))
        for fn in named.values():
            fn()
        med, ratio = _steady(named, min_s)
        H = di.hessian(f, backend, x, prep=prep)
        dh = jax.jit(jax.hessian(f))
        t_dense = _dense_median(lambda: _b(dh(x)), dense_repeat)
        Hd = np.asarray(dh(x))
        err = max(_maxdiff(H, jax.jit(asdex.hessian_from_coloring(f, col))(x)),
                  float(np.abs(Hd - di.to_scipy(H).toarray()).max()) / np.abs(Hd).max())
        rows.append([
            f"{name} H", n, di.ncolors(prep), col.num_colors, "-", _ms(med["ours"]), "-",
            _ms(med["asdex"]), _r(ratio["asdex"]), _ms(med.get("sparsejac")),
            _r(ratio["sparsejac"]) if "sparsejac" in ratio else sj_colors,
            _ms(t_dense), f"{t_dense / med['ours']:.0f}x", f"{t_prep:.2f}", f"{t_prep_a:.2f}",
            _r(t_prep / t_prep_a), f"{err:.0e}",
        ])
        print(rows[-1], flush=True)
    return rows


def other_engines(Ns, min_s):
    rows = []
    for label, dense_backend, xp, native in [
        ("torch", di.AutoTorch(), torch, lambda a: torch.as_tensor(a)),
        ("NumPy + finite differences", di.AutoFiniteDiff(), np, np.asarray),
    ]:
        for N in Ns:
            n = 2 * N * N
            f = lambda x, xp=xp, N=N: brusselator_2d(x, xp, N)  # noqa: E731
            x = native(np.random.default_rng(0).uniform(size=n))
            sparse = di.AutoSparse(dense_backend)
            t0 = time.perf_counter()
            prep = di.prepare_jacobian(f, sparse, x)
            S = di.jacobian(f, sparse, x, prep=prep)
            t_prep = time.perf_counter() - t0
            t_f = statistics.median(_once(lambda: f(x)) for _ in range(20))
            (t_sparse,) = [statistics.median(s) for s in interleaved_samples(
                [lambda: di.jacobian(f, sparse, x, prep=prep)], min_s=min_s, batch_s=0.01, min_batches=5,
                max_s=2.0)]
            if n <= 2048 or (label == "torch" and n <= 2048):
                dprep = di.prepare_jacobian(f, dense_backend, x)
                di.jacobian(f, dense_backend, x, prep=dprep)
                t_dense = statistics.median(_once(lambda: di.jacobian(f, dense_backend, x, prep=dprep))
                                            for _ in range(3))
                D = di.jacobian(f, dense_backend, x, prep=dprep)
                D = D.numpy() if hasattr(D, "numpy") else np.asarray(D)
                err = float(np.abs(di.to_scipy(S).toarray() - D.reshape(n, n)).max())
                note = f"{t_dense / t_sparse:.0f}x"
            else:
                # the dense path is a batched pushforward over the n basis vectors: time 256 of them
                k = 256
                seeds = tuple(native(np.eye(1, n, int(i)).ravel()) for i in np.linspace(0, n - 1, k).astype(int))
                pp = di.prepare_pushforward(f, dense_backend, x, seeds)
                di.pushforward(f, dense_backend, x, seeds, prep=pp)
                t_dense = statistics.median(_once(lambda: di.pushforward(f, dense_backend, x, seeds, prep=pp))
                                            for _ in range(2)) * n / k
                err = None
                note = f"{t_dense / t_sparse:.0f}x (dense est. from {k} columns)"
            rows.append([f"Brusselator J, {label}", f"N={N}, n={n}", di.ncolors(prep), _ms(t_f), _ms(t_sparse),
                         _ms(t_dense), note, f"{t_prep:.2f}", "-" if err is None else f"{err:.0e}"])
            print(rows[-1], flush=True)
    return rows


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


LOAD_AT_START = os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer sizes, objectives and repeats")
    ap.add_argument("--out", default=None, help="also write the markdown here")
    args = ap.parse_args()
    t_start = time.perf_counter()
    if args.quick:
        Ns, names, min_s, dense_repeat, n_h, Ns_other = (16, 32), ["ROSENBR", "BDQRTIC", "ARWHEAD"], 0.05, 1, 1000, (16, 32)
        prep_repeat = 1
    else:
        Ns, names, min_s, dense_repeat, n_h, Ns_other = (16, 32, 64, 128), list(CUTEST), 0.15, 2, 2000, (16, 32, 64)
        prep_repeat = 5
    _warm_tools()
    jrows = brusselator_jax(Ns, min_s, dense_repeat, prep_repeat)
    hrows = cutest_hessians(n_h, names, min_s, dense_repeat, prep_repeat)
    orows = other_engines(Ns_other, min_s)
    head = ["problem", "n", "colors ours", "colors asdex", "f (ms)", "ours jax→BCOO (ms)", "ours numpy→csr (ms)",
            "asdex (ms)", "ours/asdex", "sparsejac (ms)", "ours/sparsejac", "dense jit (ms)",
            "dense/ours", "prep ours (s)", "prep asdex (s)", "prep ours/asdex", "max |ours-ref|"]
    lines = [
        "# Prepared sparse Jacobians and Hessians: diffinterface vs asdex, sparsejac, dense JAX",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores (load average {LOAD_AT_START:.1f} when this started), "
        f"Python {platform.python_version()}, jax {jax.__version__}, torch {torch.__version__}, "
        f"asdex {package_version('asdex')}, sparsejac {package_version('sparsejac')}, numpy {np.__version__}; CPU, float64, "
        "one thread (XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1, "
        "torch.set_num_threads(1)).",
        f"Command: `python benchmarks/sparse.py{' --quick' if args.quick else ''} --out benchmarks/results/sparse.md`",
        "",
        "Steady state: prepared calls, interleaved batches, median per-call time; ratios are medians of "
        "per-round ratios (< 1: diffinterface faster). ours = `di.jacobian/di.hessian(f, "
        "di.AutoSparse(di.AutoJAX()), x, prep=prep)`; asdex = `jax.jit(asdex.*_from_coloring(f, "
        "asdex.*_coloring(f, x)))` (BCOO out); sparsejac = `jax.jit(sparsejac.jacfwd(f or jax.grad(f), "
        "pattern))`; dense = `jax.jit(jax.jacfwd(f))` / `jax.jit(jax.hessian(f))`, median of "
        f"{dense_repeat} calls. prep = wall time of detection + coloring + compile + first call, median of "
        f"{prep_repeat} runs alternating the tools, each with a fresh f whose program differs in one constant "
        "(no trace or compile cache hit; "
        "helpers warmed on a tiny problem first). Targets: ours/asdex <= 1, ours/sparsejac <= 1, "
        "prep ours/asdex <= 0.5.",
        "",
        *_table(head, jrows + hrows),
        "",
        "## Other engines (Brusselator Jacobian, prepared sparse vs prepared dense)",
        "",
        *_table(["problem", "size", "colors", "f (ms)", "sparse (ms)", "dense (ms)", "speed-up", "prep (s)",
                 "max |sparse-dense|"], orows),
        "",
        f"Total run time: {time.perf_counter() - t_start:.0f} s.",
    ]
    emit("\n".join(lines), args.out)


if __name__ == "__main__":
    main()

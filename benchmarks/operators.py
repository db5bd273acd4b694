"""Jacobian and Gauss-Newton operators: diffinterface against hand-written native code.

    python benchmarks/operators.py                     # engines pinned to 1 thread (writes results/operators.md)
    python benchmarks/operators.py --threads default   # default thread pools (its own section)
    python benchmarks/operators.py --malloc default    # glibc's allocator as it is (its own section)
    python benchmarks/operators.py --quick             # smaller sizes, shorter timings, nothing written
    python benchmarks/operators.py --engines torch --functions mlp --rows "J.T@W"
                                                       # one row, every side's median printed, nothing written

Functions (float64):

* ``stencil``: r(x) = sin(x) * x + (x[i+1] - 2 x[i] + x[i-1]) (periodic), n = m = 1e5;
* ``mlp``: per-example outputs of a tanh MLP 16 -> 64 -> 64 -> 1 (5,313 parameters as
  one flat vector) on a fixed batch of 512 samples: m = 512, n = 5,313.

Native strategies (hand-written, in the same process):

* JAX: ``jvp_vjp`` = jit(jvp) and jit(vjp) per product; ``linearize`` =
  jax.linearize + jax.linear_transpose built inside jit at x, applied by jitted
  functions taking them as arguments; blocks: jit(vmap(...)) of each.
* torch: ``func`` = torch.func.jvp / torch.func.vjp per product; ``kept_graph``
  = forward graph kept at x, VJPs by autograd.grad(retain_graph=True), JVPs
  by torch.func.jvp; ``double_backward`` = also the graph of u -> Jᵀu kept
  (create_graph), JVPs by a backward through it; blocks: torch.func.vmap of
  func, and loops.
* autograd: ``make_vjp`` (+ make_jvp for JVPs) and ``vjp_of_vjp`` (make_vjp
  of the pullback for JVPs).

Workloads (x cycling through 3 fixed points; everything warmed up first, so
the operator has learned the workload):

* (a) ``J.update(x)`` then m pairs ``J @ v``, ``J.T @ w`` (alternating, as in
  LSMR), m = 1, 10, 50, vs the fastest native for that m (set-up included);
* (b) ``G.update(x)`` then 10 products ``G @ v`` vs the native jvp-then-vjp
  composition (best strategy, set-up included);
* (c) ``J.update(x)``, ``J @ V`` and ``J.T @ W`` with k = 16 columns vs the fastest
  of 16 native single products and the native batched (vmap) products.  Both
  sides take the same (size, k) block and return a (size_out, k) result: the
  natives vmap over axis 1 in and out (torch's batched backward gets the
  contiguous k-leading copy and returns its transposed view); their loops take
  the k columns as contiguous rows (``jnp.unstack(V, axis=1)``,
  ``V.T.contiguous()``, ``np.ascontiguousarray(V.T)``) and assemble the k
  results (``jnp.stack(rs, axis=1)``, ``torch.stack(rs).T``, ``np.stack(rs).T``),
  as native code computing ``J @ V`` would.  (Until 2026-11-26 the natives
  were handed the k-leading copy for free and returned a list.)

Method: a comparison runs in two phases, each in alternating rounds (A B B A
...), each round a batch of calls, the garbage collector off during a batch.
Phase 1 chooses the fastest native: the natives alone, at least half of
``--min-rounds`` rounds (and half the time budget), fastest median.  Phase 2
compares di with that native alone, at least ``--min-rounds`` rounds (capped
at 8x the time budget): di and the native run side by side, so each round's
ratio pairs calls close in time, and the choice is not made on the rounds
that judge it (the minimum of several noisy medians is biased low when two
natives are close); times are medians over phase 2's rounds, ratio = median
over them of di / native.
``--malloc keep`` (the default) tells glibc's allocator, before the imports,
to keep freed memory (``mallopt``: trim threshold 1 GiB, mmap threshold
32 MiB): by default it returns large freed blocks to the OS and the next
allocation takes fresh pages, one page fault per 4 KiB, about 2.5 us each on
this VM; the count per call depends on the heap's history, not on the code
timed (the same torch or autograd set-up took 290 faults in one state of the
process and 410 in another, with di and native trading places; a torch stencil
workload of about 5 ms took 300-500, 15-25% of its time).  ``--malloc default``
leaves the allocator alone (its own section of results/operators.md).
``--threads 1`` sets XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1" and OMP/MKL/OPENBLAS_NUM_THREADS=1 before the
imports, and torch.set_num_threads(1).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", choices=["1", "default"], default="1")
    p.add_argument("--malloc", choices=["keep", "default"], default="keep",
                   help="keep: glibc keeps freed memory (no page-fault churn); default: leave it alone")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--engines", default="jax,torch,autograd")
    # 1 s: with 0.3 s a row's ratio rests on about 7 held-out rounds and moved by 0.1-0.3
    # between runs of the same code on a 2-core VM
    p.add_argument("--min-time", type=float, default=1.0, help="seconds per side per comparison")
    # 30: the held-out half (15 rounds) decides a row; with 10 a long row (m = 50, 30-200 ms a
    # call) rested on 5 rounds and moved by 0.1-0.4 between runs of the same code
    p.add_argument("--min-rounds", type=int, default=30, help="rounds per comparison, at least")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--functions", default="stencil,mlp", help="comma-separated: stencil, mlp")
    p.add_argument("--rows", default="", help="only workloads whose label contains this (e.g. 'J.T@W' or '1 x'); "
                   "implies --no-write")
    return p.parse_args()


ARGS = _args()
MALLOC_KEPT = False
if ARGS.malloc == "keep" and sys.platform.startswith("linux"):
    import ctypes

    try:
        _libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
        MALLOC_KEPT = bool(_libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) and _libc.mallopt(M_MMAP_THRESHOLD, 32 << 20))
    except (OSError, AttributeError):  # not glibc: the allocator as it is (said in the table's header)
        pass
if ARGS.threads == "1":
    os.environ.update({"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
                       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})

import numpy as np  # noqa: E402

N_STENCIL = 10_000 if ARGS.quick else 100_000
D_IN, HIDDEN, BATCH = 16, 64, 512
MLP_N = D_IN * HIDDEN + HIDDEN + HIDDEN * HIDDEN + HIDDEN + HIDDEN + 1
K = 16


# ------------------------------------------------------------------ timing
def _batch(fn, k):
    gc.disable()
    try:
        t = time.perf_counter()
        for _ in range(k):
            fn()
        return (time.perf_counter() - t) / k
    finally:
        gc.enable()


def interleaved(fns, min_s, min_rounds):
    """Per-call seconds per round of each callable, rounds alternating A B B A ...,
    at least ``min_s`` seconds per callable and ``min_rounds`` rounds (capped at 8x
    the time)."""
    ks = []
    for fn in fns:
        t = _batch(fn, 1)
        ks.append(max(1, int(0.02 / max(t, 1e-7))))
    samples = [[] for _ in fns]
    order, spent, start = list(range(len(fns))), 0.0, time.perf_counter()
    while spent < min_s * len(fns) or len(samples[0]) < min_rounds:
        for i in order:
            samples[i].append(_batch(fns[i], ks[i]))
        order.reverse()
        spent = time.perf_counter() - start
        if spent > 8 * min_s * len(fns):
            break
    return samples


# ------------------------------------------------------------------ functions
def make_functions(xp, asarray):
    rng = np.random.default_rng(1)
    X = asarray(rng.standard_normal((BATCH, D_IN)))

    def stencil(x):
        return xp.sin(x) * x + (xp.roll(x, 1, 0) - 2.0 * x + xp.roll(x, -1, 0))

    d, h = D_IN, HIDDEN

    def mlp(x):
        i = 0
        W1 = xp.reshape(x[i:i + d * h], (d, h)); i += d * h  # noqa: E702
        b1 = x[i:i + h]; i += h  # noqa: E702
        W2 = xp.reshape(x[i:i + h * h], (h, h)); i += h * h  # noqa: E702
        b2 = x[i:i + h]; i += h  # noqa: E702
        w3 = x[i:i + h]; i += h  # noqa: E702
        return xp.tanh(xp.tanh(X @ W1 + b1) @ W2 + b2) @ w3 + x[i]

    return {"stencil": (stencil, N_STENCIL, N_STENCIL), "mlp": (mlp, MLP_N, BATCH)}


def data(n, m):
    rng = np.random.default_rng(0)
    xs = [rng.uniform(-1, 1, n) * (0.1 if m != n else 1.0) for _ in range(3)]
    return xs, rng.standard_normal(n), rng.standard_normal(m), rng.standard_normal((n, K)), rng.standard_normal((m, K))


# ------------------------------------------------------------------ natives
# each native: name -> (setup(x) -> state, jvp(state, v), vjp(state, w), jvp_block(state, V) | None,
#                       vjp_block(state, W) | None); blocks take (size, k) and return (size_out, k),
#                       as J @ V does (vmap over axis 1 in and out; torch's batched backward on the
#                       contiguous k-leading copy, returned as its transposed view)
def jax_natives(f):
    import jax

    jvp = jax.jit(lambda x, v: jax.jvp(f, (x,), (v,))[1])
    vjp = jax.jit(lambda x, w: jax.vjp(f, x)[1](w)[0])
    jvp_b = jax.jit(lambda x, V: jax.vmap(lambda v: jax.jvp(f, (x,), (v,))[1], 1, 1)(V))
    vjp_b = jax.jit(lambda x, W: jax.vmap(jax.vjp(f, x)[1], 1, 1)(W)[0])

    def lin_setup(x):
        lin = jax.linearize(f, x)[1]
        return lin, jax.linear_transpose(lin, x)

    setup = jax.jit(lin_setup)
    l_jvp = jax.jit(lambda s, v: s[0](v))
    l_vjp = jax.jit(lambda s, w: s[1](w)[0])
    l_jvp_b = jax.jit(lambda s, V: jax.vmap(s[0], 1, 1)(V))
    l_vjp_b = jax.jit(lambda s, W: jax.vmap(lambda w: s[1](w)[0], 1, 1)(W))
    return {"jvp_vjp": (lambda x: x, jvp, vjp, jvp_b, vjp_b),
            "linearize": (setup, l_jvp, l_vjp, l_jvp_b, l_vjp_b)}


def torch_natives(f):
    import torch
    from torch.func import jvp, vjp, vmap

    def f_jvp(x, v):
        return jvp(f, (x,), (v,))[1]

    def f_vjp(x, w):
        return vjp(f, x)[1](w)[0]

    def kept(x):
        leaf = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y = f(leaf)
        return leaf, y

    def kept_vjp(s, w):
        return torch.autograd.grad(s[1], s[0], w, retain_graph=True)[0]

    def kept_vjp_b(s, W):
        return torch.autograd.grad(s[1], s[0], W.T.contiguous(), retain_graph=True, is_grads_batched=True)[0].T

    def double(x):
        leaf, y = kept(x)
        with torch.enable_grad():
            u = torch.zeros_like(y, requires_grad=True)
            gu = torch.autograd.grad(y, leaf, u, create_graph=True)[0]
        return leaf, y, u, gu

    def double_jvp(s, v):
        return torch.autograd.grad(s[3], s[2], v, retain_graph=True)[0]

    return {
        "func": (lambda x: x, f_jvp, f_vjp, lambda x, V: vmap(lambda v: f_jvp(x, v), 1, 1)(V),
                 lambda x, W: vmap(vjp(f, x)[1], 1, 1)(W)[0]),
        "kept_graph": (kept, lambda s, v: f_jvp(s[0].detach(), v), kept_vjp,
                       lambda s, V: vmap(lambda v: f_jvp(s[0].detach(), v), 1, 1)(V), kept_vjp_b),
        "double_backward": (double, double_jvp, kept_vjp, None, kept_vjp_b),
    }


def autograd_natives(f):
    from autograd import make_jvp, make_vjp

    def mv(x):
        pull, y = make_vjp(f)(x)
        return x, pull, y

    def vv(x):
        x, pull, y = mv(x)
        return x, pull, y, make_vjp(pull)(np.zeros_like(y))[0]

    return {"make_vjp": (mv, lambda s, v: make_jvp(f)(s[0])(v)[1], lambda s, w: s[1](w), None, None),
            "vjp_of_vjp": (vv, lambda s, v: s[3](v), lambda s, w: s[1](w), None, None)}


# ------------------------------------------------------------------ engines
def engine_setup(name):
    if name == "jax":
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        import diffinterface as di

        return (di.AutoJAX(), jnp, np.asarray, jnp.asarray, jax.block_until_ready, jax_natives,
                f"jax {jax.__version__}", (lambda V: jnp.unstack(V, axis=1), lambda rs: jnp.stack(rs, axis=1)))
    if name == "torch":
        import torch

        if ARGS.threads == "1":
            torch.set_num_threads(1)
        import diffinterface as di

        return (di.AutoTorch(), torch, torch.as_tensor, torch.as_tensor, lambda r: r, torch_natives,
                f"torch {torch.__version__}", (lambda V: V.T.contiguous(), lambda rs: torch.stack(rs).T))
    import autograd
    import autograd.numpy as anp

    import diffinterface as di

    return (di.AutoAutograd(), anp, np.asarray, np.asarray, lambda r: r, autograd_natives,
            f"autograd {getattr(autograd, '__version__', '')}", (lambda V: np.ascontiguousarray(V.T),
                                                                 lambda rs: np.stack(rs).T))


def run_engine(name, rows):
    sys.path.insert(0, os.path.join(HERE, "..", "src"))
    from diffinterface import gauss_newton_operator, jacobian_operator

    backend, xp, asarray, arr, block, natives_of, version, (as_rows, assemble) = engine_setup(name)
    for fname, (f, n, m) in make_functions(xp, asarray).items():
        if fname not in ARGS.functions.split(","):
            continue
        xs, v, w, V, W = data(n, m)
        xs, v, w, V, W = [arr(x) for x in xs], arr(v), arr(w), arr(V), arr(W)
        natives = natives_of(f)
        J = jacobian_operator(f, backend, xs[0])
        G = gauss_newton_operator(f, backend, xs[0])
        cycle = {"i": 0}

        def nxt():
            cycle["i"] = (cycle["i"] + 1) % 3
            return xs[cycle["i"]]

        def compare(label, di_fn, native_fns):
            if ARGS.rows and ARGS.rows not in label:
                return
            for fn in [di_fn] + list(native_fns.values()):
                for _ in range(4):  # warm-up: compile, and let the operator learn the workload
                    fn()
            names = list(native_fns)
            # phase 1: the fastest native, on rounds of the natives alone
            chosen = interleaved([native_fns[k] for k in names], ARGS.min_time / 2, max(2, ARGS.min_rounds // 2))
            best = int(np.argmin([statistics.median(s) for s in chosen]))
            # phase 2: di against it alone, so each round's ratio pairs calls close in time
            di_s, native_s = interleaved([di_fn, native_fns[names[best]]], ARGS.min_time, ARGS.min_rounds)
            medians = [statistics.median(di_s), statistics.median(native_s)]
            ratio = statistics.median(a / b for a, b in zip(di_s, native_s))
            rows.append([name, fname, label, f"{medians[0] * 1e3:.3f}", names[best], f"{medians[1] * 1e3:.3f}",
                         f"{ratio:.2f}", J.strategy if not label.startswith("(b)") else G.jacobian.strategy])
            print(" | ".join(map(str, rows[-1])), flush=True)
            if ARGS.rows:  # a focused run: every native's phase-1 median
                sides = zip(names, chosen)
                print("    phase 1: " + ", ".join(f"{k} {statistics.median(s) * 1e3:.3f}" for k, s in sides))

        for mm in (1, 10, 50):
            def di_work(mm=mm):
                J.update(nxt())
                for _ in range(mm):
                    r1, r2 = J @ v, J.T @ w
                return block((r1, r2))

            def native_work(setup, jvp, vjp, mm=mm):
                s = setup(nxt())
                for _ in range(mm):
                    r1, r2 = jvp(s, v), vjp(s, w)
                return block((r1, r2))

            compare(f"(a) update + {mm} x (J@v, J.T@w)", di_work,
                    {k: (lambda p=p: native_work(p[0], p[1], p[2])) for k, p in natives.items()})

        def di_gn():
            G.update(nxt())
            for _ in range(10):
                r = G @ v
            return block(r)

        def native_gn(setup, jvp, vjp):
            s = setup(nxt())
            for _ in range(10):
                r = vjp(s, jvp(s, v))
            return block(r)

        compare("(b) update + 10 x G@v", di_gn, {k: (lambda p=p: native_gn(*p[:3])) for k, p in natives.items()})

        for side in ("J@V", "J.T@W"):
            def di_block(side=side):
                J.update(nxt())
                return block(J @ V if side == "J@V" else J.T @ W)

            fns = {}
            for k, p in natives.items():
                single = p[1] if side == "J@V" else p[2]
                seeds = V if side == "J@V" else W
                fns[f"{k} x16"] = (lambda p=p, single=single, seeds=seeds: block(
                    assemble([single(s, column) for s in [p[0](nxt())] for column in as_rows(seeds)])))
                batched = p[3] if side == "J@V" else p[4]
                if batched is not None:
                    fns[f"{k} vmap"] = lambda p=p, batched=batched, seeds=seeds: block(batched(p[0](nxt()), seeds))
            compare(f"(c) update + {side} (k=16)", di_block, fns)
    return version


def main():
    rows, versions = [], []
    for name in ARGS.engines.split(","):
        try:
            versions.append(run_engine(name, rows))
        except ImportError as error:
            print(f"skipping {name}: {error}")
    header = ["engine", "function", "workload", "di ms", "fastest native", "native ms", "di / native", "di strategy"]
    table = "| " + " | ".join(header) + " |\n|" + "|".join("---" for _ in header) + "|\n"
    table += "\n".join("| " + " | ".join(map(str, r)) + " |" for r in rows)
    print(table)
    if ARGS.quick or ARGS.no_write or ARGS.rows or ARGS.functions != "stencil,mlp":
        return
    threads = "1 thread (pinned)" if ARGS.threads == "1" else "default threads"
    if not MALLOC_KEPT:
        threads += ", allocator as it is"
    section = (f"## {threads}\n\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"{platform.system()} {platform.release()}; Python {platform.python_version()}; "
               f"{', '.join(versions)}; numpy {np.__version__}.\n"
               f"Command: `python benchmarks/operators.py{'' if ARGS.threads == '1' else ' --threads default'}"
               f"{'' if ARGS.malloc == 'keep' else ' --malloc default'}` "
               f"({'freed memory kept by glibc malloc' if MALLOC_KEPT else 'malloc as it is'}) "
               f"(--min-time {ARGS.min_time:g}) "
               f"({time.strftime('%Y-%m-%d %H:%M')}).\n\n{table}\n")
    path = os.path.join(HERE, "results", "operators.md")
    text = open(path).read() if os.path.exists(path) else ""
    marker = f"## {threads}"
    intro = ("# Jacobian and Gauss-Newton operators vs native code\n\nSee the docstring of "
             "`benchmarks/operators.py` for the functions, strategies and method. Medians of interleaved "
             "rounds, warm-up excluded; ratio = median over rounds of di / fastest native.\n\n")
    parts = text.split("\n## ") if text else [intro.rstrip("\n")]
    kept = [p for p in parts[1:] if "## " + p.split("\n", 1)[0] != marker]
    body = parts[0].rstrip("\n") + "\n\n" + "".join("## " + p.rstrip("\n") + "\n\n" for p in kept) + section
    with open(path, "w") as out:
        out.write(body)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()

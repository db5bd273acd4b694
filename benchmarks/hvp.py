"""Hessian-vector products: diffinterface against hand-written native strategies.

    python benchmarks/hvp.py                       # engines pinned to 1 thread (writes results/hvp.md)
    python benchmarks/hvp.py --threads default     # default thread pools (its own section of hvp.md)
    python benchmarks/hvp.py --quick               # smaller sizes, shorter timings (no file written)

Functions (float64 x of size n; JAX with x64 enabled):

* ``f1``: norm(x)**3 * x[-1] + x[0]**2 at n = 1e3 and 1e5
* ``f2``: extended Rosenbrock sum(100*(x[1::2]-x[::2]**2)**2 + (1-x[::2])**2) at n = 1e6
  (and n = 1e7 for the memory measurement)
* ``mlp``: squared loss of a tanh MLP with two hidden layers (16 -> 300 -> 300 -> 1,
  95,701 parameters as one flat vector) on a fixed batch of 64 samples (closure constant)

Native strategies (hand-written):

* JAX: ``jvp_grad`` = jit(jvp of grad); ``grad_dot`` = jit(grad of <grad, v>);
  ``linearize`` = jax.linearize of grad built inside jax.jit at x, applied by a
  jitted function taking the linearization as argument; batched: jit(vmap(...))
  over the columns of V for each of them.
* torch: ``func_jvp`` = torch.func.jvp of torch.func.grad; ``double_bwd`` =
  one-shot double backward (grad with create_graph, then grad of g against v);
  ``kept_graph`` = gradient graph kept (create_graph) at x, each product a
  backward with retain_graph; batched: torch.func.vmap of func_jvp and
  kept_graph with is_grads_batched=True.
* autograd: ``hvp`` = autograd.hessian_vector_product; ``make_hvp`` =
  autograd.make_hvp at x, then each product one call.

Measurements (per engine and function):

* (a) one-shot: ``di.hvp(f, backend, x, v, prep=prep)`` vs the fastest native
  one-shot (linearize and kept_graph count as set-up + one product).
* (b) Newton workload: ``H.update(x_i)`` then m products ``H @ v`` (each blocked
  on), x_i cycling through 3 fixed points (same for both sides), m = 1, 10, 50;
  H = di.hessian_operator(f, backend, x0) built once per m outside the timing
  and the workload run a few times first so that it has learned m.  Against
  the native strategy fastest for that m (set-up at x_i + m products).  To keep
  the run short only the natives predicted (from their measured set-up and
  per-product cost) to be within 1.3x of the best are timed.
* (c) ``H.update(x_i); H @ V`` with V of shape (n, 16) vs the fastest of: 16
  native products (best strategy, set-up included) and the native batched
  products (vmap over the columns of V; set-up included).
* (d) per-v cost of ``H @ v`` at a fixed point (state already built) divided by
  one native gradient (jit(grad) / torch.autograd.grad / autograd.grad); also
  the one-shot ``di.hvp`` divided by the gradient.
* (e) peak memory at n = 1e7 (f2), JAX and torch: a fresh subprocess per
  measurement; each imports the engine, allocates x (and v), runs the
  operation once to warm up (JIT compile), resets the kernel's peak-RSS
  counter (``echo 5 > /proc/self/clear_refs``) and runs it again; the peak is
  VmHWM minus the RSS just before the timed call.  A baseline subprocess that
  only allocates x gives the process's resting peak (ru_maxrss), also reported
  as (ru_maxrss - baseline) including the JIT compile.  Ratio = HVP peak / gradient peak.

Method: every callable is warmed up (first call = JIT compile, reported
separately); the sides of a comparison run in alternating batches (A, B, B, A,
...; ``_timing.interleaved_samples``); the fastest native is chosen on the
first half of the rounds and compared on the second (choosing and comparing
on the same rounds biases the natives low); times are medians over those
batches; ratios are the median over them of di / native for batches run
back to back.
``--threads 1`` (default) sets ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` and OMP/OPENBLAS/MKL_NUM_THREADS=1 before the
imports and calls ``torch.set_num_threads(1)``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _timing import THREAD_ENV, machine, write_section  # noqa: E402 (no engine imported)


def _early_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", choices=["1", "default"], default="1")
    p.add_argument("--quick", action="store_true", help="smaller sizes, shorter timings, no file written")
    p.add_argument("--engines", default="jax,torch,autograd")
    p.add_argument("--min-time", type=float, default=0.15, help="seconds per side per comparison (small n)")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--mem-child", nargs=3, metavar=("ENGINE", "WHAT", "N"), help=argparse.SUPPRESS)
    return p.parse_args()


ARGS = _early_args()
if ARGS.threads == "1":
    os.environ.update(THREAD_ENV)

import numpy as np  # noqa: E402

# --------------------------------------------------------------------------- functions
D_IN, HIDDEN, BATCH = 16, 300, 64
MLP_N = D_IN * HIDDEN + HIDDEN + HIDDEN * HIDDEN + HIDDEN + HIDDEN + 1  # 95,701


def mlp_data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((BATCH, D_IN)), rng.standard_normal(BATCH)


def make_functions(xp, norm, X, Y):
    def f1(x):
        return norm(x) ** 3 * x[-1] + x[0] ** 2

    def f2(x):
        a, b = x[::2], x[1::2]
        return xp.sum(100.0 * (b - a**2) ** 2 + (1.0 - a) ** 2)

    d, h = D_IN, HIDDEN

    def mlp(x):
        i = 0
        W1 = xp.reshape(x[i:i + d * h], (d, h)); i += d * h
        b1 = x[i:i + h]; i += h
        W2 = xp.reshape(x[i:i + h * h], (h, h)); i += h * h
        b2 = x[i:i + h]; i += h
        w3 = x[i:i + h]; i += h
        b3 = x[i]
        z = xp.tanh(xp.tanh(X @ W1 + b1) @ W2 + b2)
        r = z @ w3 + b3 - Y
        return xp.sum(r * r) / BATCH

    return {"f1": f1, "f2": f2, "mlp": mlp}


def points(fname, n, count=3):
    rng = np.random.default_rng(0)
    if fname == "mlp":
        base = rng.standard_normal(n) * 0.1
        scale = 0.01
    else:
        base = rng.uniform(0.5, 1.5, n)
        scale = 0.1
    xs = [base + scale * rng.standard_normal(n) for _ in range(count)]
    v = rng.standard_normal(n)
    V = rng.standard_normal((n, 16))
    return xs, v, V


# --------------------------------------------------------------------------- engines
class Jax:
    name = "jax"

    def __init__(self):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        self.jax, self.jnp = jax, jnp
        import diffinterface as di

        self.backend = di.AutoJAX()

    def version(self):
        import jaxlib

        return f"jax {self.jax.__version__} (jaxlib {jaxlib.__version__})"

    def functions(self):
        X, Y = (self.jnp.asarray(a) for a in mlp_data())
        return make_functions(self.jnp, self.jnp.linalg.norm, X, Y)

    def arr(self, a):
        return self.jnp.asarray(a)

    def block(self, r):
        return self.jax.block_until_ready(r)

    def natives(self, f):
        jax, jnp = self.jax, self.jnp
        g = jax.grad(f)
        jvp_grad = jax.jit(lambda x, v: jax.jvp(g, (x,), (v,))[1])
        grad_dot = jax.jit(lambda x, v: jax.grad(lambda z: jnp.vdot(g(z), v))(x))
        lin_setup = jax.jit(lambda x: jax.linearize(g, x)[1])
        lin_apply = jax.jit(lambda lin, v: lin(v))
        jvp_grad_b = jax.jit(lambda x, V: jax.vmap(lambda v: jax.jvp(g, (x,), (v,))[1], 1, 1)(V))
        grad_dot_b = jax.jit(lambda x, V: jax.vmap(lambda v: jax.grad(lambda z: jnp.vdot(g(z), v))(x), 1, 1)(V))
        lin_apply_b = jax.jit(lambda lin, V: jax.vmap(lin, 1, 1)(V))
        none = lambda x: x  # noqa: E731
        # name: (setup(x) -> state, apply(state, v), batched(state, V) or None)
        return {
            "jvp_grad": (none, jvp_grad, jvp_grad_b),
            "grad_dot": (none, grad_dot, grad_dot_b),
            "linearize": (lin_setup, lin_apply, lin_apply_b),
        }, jax.jit(g)


class Torch:
    name = "torch"

    def __init__(self):
        import torch

        if ARGS.threads == "1":
            torch.set_num_threads(1)
        self.torch = torch
        import diffinterface as di

        self.backend = di.AutoTorch()

    def version(self):
        return f"torch {self.torch.__version__} ({self.torch.get_num_threads()} threads)"

    def functions(self):
        X, Y = (self.torch.from_numpy(a) for a in mlp_data())
        return make_functions(self.torch, self.torch.linalg.norm, X, Y)

    def arr(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a))

    def block(self, r):
        return r

    def natives(self, f):
        torch = self.torch
        from torch.func import grad as fgrad, jvp as fjvp, vmap

        g = fgrad(f)

        def func_jvp(x, v):
            return fjvp(g, (x,), (v,))[1]

        def kept(x):
            leaf = x.detach().requires_grad_(True)
            (gr,) = torch.autograd.grad(f(leaf), leaf, create_graph=True)
            return leaf, gr

        def kept_apply(state, v):
            leaf, gr = state
            return torch.autograd.grad(gr, leaf, v, retain_graph=True)[0]

        def kept_apply_b(state, V):
            leaf, gr = state
            return torch.autograd.grad(gr, leaf, V.T, retain_graph=True, is_grads_batched=True)[0].T

        def double_bwd(x, v):
            leaf = x.detach().requires_grad_(True)
            (gr,) = torch.autograd.grad(f(leaf), leaf, create_graph=True)
            return torch.autograd.grad(gr, leaf, v)[0]

        func_jvp_b = lambda x, V: vmap(lambda v: func_jvp(x, v), 1, 1)(V)  # noqa: E731
        none = lambda x: x  # noqa: E731
        leaf = None

        def gradient(x):
            nonlocal leaf
            if leaf is None or leaf.shape != x.shape:
                leaf = x.detach().clone().requires_grad_(True)
            with torch.no_grad():
                leaf.copy_(x)
            return torch.autograd.grad(f(leaf), leaf)[0]

        return {
            "func_jvp": (none, func_jvp, func_jvp_b),
            "double_bwd": (none, double_bwd, None),
            "kept_graph": (kept, kept_apply, kept_apply_b),
        }, gradient


class Autograd:
    name = "autograd"

    def __init__(self):
        import autograd
        import autograd.numpy as anp

        self.autograd, self.anp = autograd, anp
        import diffinterface as di

        self.backend = di.AutoAutograd()

    def version(self):
        from importlib.metadata import version

        return f"autograd {version('autograd')}"

    def functions(self):
        X, Y = mlp_data()
        return make_functions(self.anp, self.anp.linalg.norm, X, Y)

    def arr(self, a):
        return np.ascontiguousarray(a)

    def block(self, r):
        return r

    def natives(self, f):
        from autograd import grad, hessian_vector_product, make_hvp

        hvp = hessian_vector_product(f)
        mk = make_hvp(f)
        none = lambda x: x  # noqa: E731
        return {
            "hvp": (none, hvp, None),
            "make_hvp": (lambda x: mk(x)[0], lambda s, v: s(v), None),
        }, grad(f)


ENGINES = {"jax": Jax, "torch": Torch, "autograd": Autograd}


# --------------------------------------------------------------------------- timing
def timing_kw(n, heavy=False):
    if ARGS.quick:
        return dict(min_s=0.05, min_batches=4, max_s=1.0)
    if heavy:
        return dict(min_s=ARGS.min_time, min_batches=6, max_s=4.0)
    if n >= 1e6:
        return dict(min_s=ARGS.min_time, min_batches=8, max_s=4.0)
    return dict(min_s=ARGS.min_time, min_batches=12, max_s=3.0)


def compare(fns, n, heavy=False):
    """fns: dict name -> callable; first key is the diffinterface side.
    Returns {name: median seconds}, {name: paired ratio di/name} and the fastest native:
    chosen on the first half of the rounds, while the medians and ratios come from the
    second half (choosing and comparing on the same rounds biases the natives low: the
    minimum of several noisy medians is low when two natives are close)."""
    from _timing import interleaved_samples, paired_ratio

    names = list(fns)
    samples = interleaved_samples([fns[k] for k in names], **timing_kw(n, heavy))
    half = len(samples[0]) // 2
    best = min(names[1:], key=lambda k: statistics.median(samples[names.index(k)][:half]))
    held = [s[half:] for s in samples]
    med = {k: statistics.median(s) for k, s in zip(names, held)}
    ratio = {k: paired_ratio(held[i], held[0]) for i, k in enumerate(names)}
    return med, ratio, best


def cycler(xs):
    it = itertools.cycle(xs)
    return lambda: next(it)


def run_case(eng, fname, n, f, log):
    import diffinterface as di
    from _timing import first_call

    b = eng.block
    xs_np, v_np, V_np = points(fname, n)
    xs = [eng.arr(a) for a in xs_np]
    x0, v, V = xs[0], eng.arr(v_np), eng.arr(V_np)
    natives, gradient = eng.natives(f)
    row = {"engine": eng.name, "f": fname, "n": n}

    # warm up and JIT compile times
    compile_s = {}
    compile_s["gradient"] = first_call(lambda: b(gradient(x0)))
    for name, (setup, apply, batched) in natives.items():
        compile_s[name] = first_call(lambda: b(apply(setup(x0), v)))
        if batched is not None:
            compile_s[name + "[vmap]"] = first_call(lambda: b(batched(setup(x0), V)))
    t = time.perf_counter()
    prep = di.prepare_hvp(f, eng.backend, x0, v)
    b(di.hvp(f, eng.backend, x0, v, prep=prep))
    compile_s["di.hvp"] = time.perf_counter() - t
    t = time.perf_counter()
    H = di.hessian_operator(f, eng.backend, x0)
    b(H @ v)
    compile_s["di.hessian_operator"] = time.perf_counter() - t
    row["compile"] = compile_s

    # (a) one-shot
    fns = {"di": lambda: b(di.hvp(f, eng.backend, x0, v, prep=prep))}
    for name, (setup, apply, _) in natives.items():
        fns[name] = (lambda s, a: lambda: b(a(s(x0), v)))(setup, apply)
    med, ratio, best = compare(fns, n)
    row["a"] = dict(di=med["di"], native=med[best], best=best, ratio=ratio[best], all=med)

    # native component costs (set-up, per product) for predictions, and (d)
    states = {name: s(x0) for name, (s, _, _) in natives.items()}
    H.update(x0)
    b(H @ v)
    fns = {"H@v": lambda: b(H @ v), "gradient": lambda: b(gradient(x0))}
    for name, (setup, apply, _) in natives.items():
        fns["apply:" + name] = (lambda st, a: lambda: b(a(st, v)))(states[name], apply)
        if setup(x0) is not x0:
            fns["setup:" + name] = (lambda s: lambda: b(s(x0)))(setup)
    med_c, _, _ = compare(fns, n)
    comp = {name: (med_c.get("setup:" + name, 0.0), med_c["apply:" + name]) for name in natives}
    row["d"] = dict(hv=med_c["H@v"], grad=med_c["gradient"], per_v=med_c["H@v"] / med_c["gradient"],
                    one_shot=row["a"]["di"] / med_c["gradient"], strategy=H.strategy,
                    native_apply={k: a for k, (_, a) in comp.items()})
    log(f"   {eng.name} {fname} n={n}: (a) di/{best}={ratio[best]:.3f}  (d) H@v/grad={row['d']['per_v']:.2f}")

    # (b) Newton workload
    row["b"] = {}
    for m in (1, 10, 50):
        Hm = di.hessian_operator(f, eng.backend, x0)
        nxt = cycler(xs)

        def di_side(Hm=Hm, nxt=nxt, m=m):
            Hm.update(nxt())
            for _ in range(m):
                r = b(Hm @ v)
            return r

        for _ in range(4):
            di_side()
        pred = {k: s + m * a for k, (s, a) in comp.items()}
        lo = min(pred.values())
        cands = sorted((k for k in pred if pred[k] <= 1.3 * lo), key=pred.get)[:2]
        fns = {"di": di_side}
        for name in cands:
            setup, apply, _ = natives[name]
            nx = cycler(xs)

            def nat(setup=setup, apply=apply, nx=nx, m=m):
                st = setup(nx())
                for _ in range(m):
                    r = b(apply(st, v))
                return r

            fns[name] = nat
        med, ratio, best = compare(fns, n, heavy=(n >= 1e6 or fname == "mlp") and m == 50)
        row["b"][m] = dict(di=med["di"], native=med[best], best=best, ratio=ratio[best], strategy=Hm.strategy,
                           timed=cands)
        log(f"   {eng.name} {fname} n={n}: (b) m={m} di[{Hm.strategy}]/{best}={ratio[best]:.3f}")

    # (c) H @ V, V (n, 16), at a new point each time
    Hc = di.hessian_operator(f, eng.backend, x0)
    nxt = cycler(xs)

    def di_c():
        Hc.update(nxt())
        return b(Hc @ V)

    for _ in range(3):
        di_c()
    pred = {k: s + 16 * a for k, (s, a) in comp.items()}
    loop_best = min(pred, key=pred.get)
    fns = {"di": di_c}
    setup, apply, _ = natives[loop_best]
    nx = cycler(xs)

    def loop16(setup=setup, apply=apply, nx=nx):
        st = setup(nx())
        cols = [V[:, j] for j in range(16)]
        return [b(apply(st, c)) for c in cols]

    fns[f"16x {loop_best}"] = loop16
    for name, (setup, _, batched) in natives.items():
        if batched is None:
            continue
        nx = cycler(xs)
        fns[f"vmap {name}"] = (lambda s, bt, nx: lambda: b(bt(s(nx()), V)))(setup, batched, nx)
    med, ratio, best = compare(fns, n, heavy=(n >= 1e6 or fname == "mlp"))
    row["c"] = dict(di=med["di"], native=med[best], best=best, ratio=ratio[best], all=med)
    log(f"   {eng.name} {fname} n={n}: (c) di/{best}={ratio[best]:.3f}")
    return row


# --------------------------------------------------------------------------- memory (e)
def _rss_kb():
    with open("/proc/self/status") as fh:
        text = fh.read()
    return {k: int(re.search(rf"{k}:\s+(\d+)", text).group(1)) for k in ("VmRSS", "VmHWM")}


def mem_child(engine, what, n):
    import resource

    eng = ENGINES[engine]()
    f = eng.functions()["f2"]
    rng = np.random.default_rng(0)
    x = eng.arr(rng.uniform(0.5, 1.5, n))
    v = eng.arr(rng.standard_normal(n))
    op = None
    if what == "gradient":
        _, gradient = eng.natives(f)
        op = lambda: eng.block(gradient(x))  # noqa: E731
    elif what == "di.hvp":
        import diffinterface as di

        prep = di.prepare_hvp(f, eng.backend, x, v)
        op = lambda: eng.block(di.hvp(f, eng.backend, x, v, prep=prep))  # noqa: E731
    elif what.startswith("native:"):
        natives, _ = eng.natives(f)
        setup, apply, _ = natives[what.split(":", 1)[1]]
        op = lambda: eng.block(apply(setup(x), v))  # noqa: E731
    hwm = None
    if op is not None:
        import threading

        r = op()
        del r
        page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
        statm = open("/proc/self/statm")

        def rss_kb():
            statm.seek(0)
            return int(statm.read().split()[1]) * page_kb

        peak, done = [0], threading.Event()

        def poll():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kb())
                time.sleep(0.0002)

        before = rss_kb()
        th = threading.Thread(target=poll)
        th.start()
        best = 0
        for _ in range(3):
            r = op()
            del r
        done.set()
        th.join()
        hwm = max(peak[0], best) - before
    print(f"MEM {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {hwm if hwm is not None else -1}")


def memory(engines, n, log):
    rows = []
    for eng in engines:
        if eng not in ("jax", "torch"):
            continue
        hvp_native = {"jax": "native:jvp_grad", "torch": "native:double_bwd"}[eng]
        res = {}
        for what in ("base", "gradient", "di.hvp", hvp_native):
            out = subprocess.run([sys.executable, __file__, "--threads", ARGS.threads, "--mem-child", eng, what,
                                  str(n)], capture_output=True, text=True)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("MEM ")]
            if not line:
                log(out.stderr[-2000:])
                continue
            maxrss, hwm = (int(t) for t in line[0].split()[1:])
            res[what] = (maxrss / 1024, hwm / 1024 if hwm >= 0 else None)
        base = res["base"][0]
        g_total = res["gradient"][0] - base
        g_peak = res["gradient"][1]
        for what in ("di.hvp", hvp_native):
            if what not in res:
                continue
            total = res[what][0] - base
            peak = res[what][1]
            rows.append(dict(engine=eng, what=what, base=base, grad_total=g_total, total=total,
                             ratio_total=total / g_total if g_total > 0 else float('nan'), grad_peak=g_peak, peak=peak,
                             ratio_peak=(peak / g_peak) if (peak and g_peak) else None))
            log(f"   memory {eng} {what}: peak {peak} MiB vs gradient {g_peak} MiB; "
                f"maxrss-baseline {total:.0f} vs {g_total:.0f} MiB")
    return rows


def jax_xla_memory(n):
    """XLA's own accounting of the compiled programs at n (no run needed): bytes of
    temporaries + outputs of one HVP vs one gradient.  RSS cannot show this for JAX:
    XLA's CPU allocator reuses freed buffers, so a warm call adds (almost) nothing."""
    import jax
    import jax.numpy as jnp

    import diffinterface as di

    eng = ENGINES["jax"]()
    f = eng.functions()["f2"]
    x = jax.ShapeDtypeStruct((n,), jnp.float64)

    def peak(fn, *args):
        analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
        return (analysis.temp_size_in_bytes + analysis.output_size_in_bytes) / 2**20

    gradient = peak(jax.grad(f), x)
    native = peak(lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1], x, x)
    xs = jnp.zeros(4)
    prep = di.prepare_hvp(f, di.AutoJAX(), xs, xs)  # the same engine callable, traced at n
    ours = peak(lambda x, v: prep.engine.build_hvp(f, prep.example, False)(x, (v,))[0], x, x)
    return [("di.hvp", ours, gradient), ("native:jvp_grad", native, gradient)]


# --------------------------------------------------------------------------- report
def fmt_t(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def ok(r, target):
    return "ok" if r <= target else "**MISS**"


def tables(rows, mem_rows):
    out = []
    out.append("### (a) one-shot prepared `di.hvp` vs fastest native one-shot (target <= 1.05)\n")
    out.append("| engine | f | n | di.hvp | best native | native | ratio | |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        a = r["a"]
        out.append(f"| {r['engine']} | {r['f']} | {r['n']:,} | {fmt_t(a['di'])} | {a['best']} | {fmt_t(a['native'])} "
                   f"| {a['ratio']:.3f} | {ok(a['ratio'], 1.05)} |")
    out.append("\n### (b) Newton workload: `H.update(x)` + m x `H @ v` vs fastest native for that m (target <= 1.05)\n")
    out.append("| engine | f | n | m | di (strategy) | best native | native | ratio | |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for m, bm in r["b"].items():
            out.append(f"| {r['engine']} | {r['f']} | {r['n']:,} | {m} | {fmt_t(bm['di'])} ({bm['strategy']}) | "
                       f"{bm['best']} | {fmt_t(bm['native'])} | {bm['ratio']:.3f} | {ok(bm['ratio'], 1.05)} |")
    out.append("\n### (c) `H.update(x); H @ V`, V (n, 16), vs faster of 16 native products and native vmap (target <= 1.05)\n")
    out.append("| engine | f | n | di | best native | native | ratio | | all natives |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["c"]
        others = ", ".join(f"{k}: {fmt_t(t)}" for k, t in c["all"].items() if k != "di")
        out.append(f"| {r['engine']} | {r['f']} | {r['n']:,} | {fmt_t(c['di'])} | {c['best']} | {fmt_t(c['native'])} "
                   f"| {c['ratio']:.3f} | {ok(c['ratio'], 1.05)} | {others} |")
    out.append("\n### (d) cost of `H @ v` (state built at x) and of one-shot `di.hvp`, in native gradients\n")
    out.append("| engine | f | n | gradient | H @ v (strategy) | H@v / grad | di.hvp / grad | native per-product |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        d = r["d"]
        nat = ", ".join(f"{k}: {fmt_t(t)}" for k, t in d["native_apply"].items())
        out.append(f"| {r['engine']} | {r['f']} | {r['n']:,} | {fmt_t(d['grad'])} | {fmt_t(d['hv'])} ({d['strategy']}) "
                   f"| {d['per_v']:.2f} | {d['one_shot']:.2f} | {nat} |")
    if mem_rows:
        out.append("\n### (e) peak memory of one HVP at n = 1e7 (f2) / one gradient (target <= 3)\n")
        out.append("x alone: 76 MiB. peak = VmHWM after clear_refs minus RSS before the (warm) call; "
                   "maxrss = ru_maxrss of the subprocess minus that of the baseline subprocess "
                   "(engine imported, x allocated), JIT compile and warm-up call included.\n")
        out.append("| engine | HVP | HVP peak | gradient peak | ratio | | HVP maxrss-base | gradient maxrss-base | ratio |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for m in mem_rows:
            rp = m["ratio_peak"]
            out.append(f"| {m['engine']} | {m['what']} | {m['peak']:.0f} MiB | {m['grad_peak']:.0f} MiB | "
                       f"{rp:.2f} | {ok(rp, 3.0)} | {m['total']:.0f} MiB | {m['grad_total']:.0f} MiB | "
                       f"{m['ratio_total']:.2f} |")
    out.append("\n### First call (JIT compile / preparation), seconds\n")
    out.append("| engine | f | n | " + " | ".join(["first calls"]) + " |")
    out.append("|---|---|---|---|")
    for r in rows:
        out.append(f"| {r['engine']} | {r['f']} | {r['n']:,} | "
                   + ", ".join(f"{k} {t:.2f}" for k, t in r["compile"].items()) + " |")
    return "\n".join(out)


def write_results(section, text):
    head = "# Hessian-vector products: diffinterface vs native strategies\n\nWritten by `benchmarks/hvp.py`; see its docstring for the method.\n"
    return write_section(os.path.join(HERE, "results", "hvp.md"), head, section, text)


def main():
    if ARGS.mem_child:
        engine, what, n = ARGS.mem_child
        mem_child(engine, what, int(float(n)))
        return
    t0 = time.time()
    log = lambda s: print(s, flush=True)  # noqa: E731
    names = [e for e in ARGS.engines.split(",") if e]
    cases = [("f1", 1000), ("f1", 100_000), ("f2", 1_000_000), ("mlp", MLP_N)]
    if ARGS.quick:
        cases = [("f1", 1000), ("f2", 100_000), ("mlp", MLP_N)]
    skipped = []
    rows, versions = [], []
    for ename in names:
        eng = ENGINES[ename]()
        versions.append(eng.version())
        fs = eng.functions()
        for fname, n in cases:
            if ename == "autograd" and n >= 1_000_000:
                skipped.append(f"autograd {fname} n={n:,}")
                continue
            log(f"== {ename} {fname} n={n:,}  ({time.time() - t0:.0f} s)")
            rows.append(run_case(eng, fname, n, fs[fname], log))
    mem_rows = []
    if not (ARGS.no_memory or ARGS.quick):
        try:
            mem_rows = memory(names, 10_000_000, log)
        except Exception as exc:  # never lose the timing tables to the memory part
            log(f"memory measurement failed: {exc!r}")
    import diffinterface  # noqa: F401
    import scipy

    threads = "pinned to 1 thread (XLA_FLAGS, OMP/OPENBLAS/MKL=1, torch.set_num_threads(1))" if ARGS.threads == "1" \
        else "default thread pools"
    header = [
        f"## Threads: {threads}\n",
        f"- machine: {machine()}",
        f"- versions: numpy {np.__version__}, scipy {scipy.__version__}, " + ", ".join(versions),
        f"- command: `{' '.join(['python'] + [os.path.relpath(__file__, os.path.dirname(HERE))] + sys.argv[1:])}`",
        f"- run time: {time.time() - t0:.0f} s; skipped: {', '.join(skipped) or 'none'}",
        "",
    ]
    text = "\n".join(header) + tables(rows, mem_rows)
    if "jax" in names and not ARGS.quick:
        try:
            lines = ["\n### (e') JAX: XLA memory analysis of the compiled programs at n = 1e7 (f2)\n",
                     "temporaries + outputs; XLA's allocator reuses buffers, so process RSS under-reads JAX.\n",
                     "| HVP | HVP MiB | gradient MiB | ratio | |", "|---|---|---|---|---|"]
            for what, hv, g in jax_xla_memory(10_000_000):
                lines.append(f"| {what} | {hv:.0f} | {g:.0f} | {hv / g:.2f} | {ok(hv / g, 3.0)} |")
            text += "\n".join(lines)
        except Exception as exc:
            log(f"XLA memory analysis failed: {exc!r}")
    print()
    print(text)
    if not (ARGS.quick or ARGS.no_write):
        print("\nwrote", write_results(f"threads-{ARGS.threads}", text))


if __name__ == "__main__":
    main()

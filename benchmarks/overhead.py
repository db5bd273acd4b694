"""Overhead of diffinterface's prepared operators against hand-written native calls.

Question: how much does calling a *prepared* ``di.gradient``, ``di.pushforward``
or ``di.jacobian`` cost on top of the best hand-written JAX / PyTorch call for
the same derivative?  Targets: median ratio <= 1.05 at n = 1e5, <= 1.5 at n = 10.

    python benchmarks/overhead.py                      # engines pinned to 1 thread
    python benchmarks/overhead.py --threads default    # default thread pools
    python benchmarks/overhead.py --quick              # n = 10 only, shorter timings
    python benchmarks/overhead.py --breakdown          # where a prepared call's time goes

Functions (x a float64 vector of size n):

* ``sin``: f(x) = sum(sin(x) * x**2)
* ``mlp``: mean squared error of a 2-layer tanh MLP on a fixed batch of 32
  samples (a closure constant); x holds all parameters, layer sizes chosen so
  that their count is ~n: (inputs, hidden) = (1, 3) -> 10, (8, 100) -> 1001,
  (98, 1000) -> 100001
* ``vec``: f(x) = sin(x) * x**2 elementwise (Jacobian n x n), for ``jacobian``,
  at n = 10 and 1e3 only (n = 1e5 would be an 80 GB dense Jacobian)

Native side (the faster variant where several are listed; the winner is named
in the table):

* JAX: ``jax.jit(jax.grad(f))``; ``jax.jit(lambda x, t: jax.jvp(f, (x,), (t,))[1])``;
  ``jax.jit(jax.jacrev(f))`` against ``AutoJAX()`` and ``jax.jit(jax.jacfwd(f))``
  against ``AutoJAX(mode="forward")``
* torch: ``torch.autograd.grad(f(leaf), leaf)`` on a leaf made once with
  ``requires_grad=True``, or ``torch.func.grad(f)``; ``torch.func.jvp``;
  ``torch.func.jacrev`` against ``AutoTorch()``, ``torch.func.jacfwd`` against
  ``AutoTorch(mode="forward")``

diffinterface side: ``di.<op>(f, backend, x, [t,] prep=prep)`` with
``prep = di.prepare_<op>(...)`` made beforehand.  Both sides get the same
native input (``jax.Array`` float64 with x64 enabled, or a float64
``torch.Tensor``); one extra table passes NumPy arrays through ``AutoJAX()``.

Method: every callable is warmed up first (its first call, JIT compilation
included, is reported separately: for diffinterface ``prepare_<op>`` plus the
first prepared call); then the two sides run in alternating batches of about
5 ms (A, B, B, A, ...) until each has run ``--min-time`` seconds (default 0.5)
and 7 batches.  Times are medians over batches of the per-call time; the
ratio is the median over rounds of di / native for the two batches run back
to back (robust to other load on the machine).
Each call blocks on its result (``.block_until_ready()`` for JAX).  With
``--threads 1`` (default) the script sets
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``
before importing JAX and calls ``torch.set_num_threads(1)``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "src"))

PINNED_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
SIZES = (10, 1_000, 100_000)
JAC_SIZES = (10, 1_000)
MLP_SHAPES = {10: (1, 3), 1_000: (8, 100), 100_000: (98, 1000)}  # (inputs, hidden)
MLP_BATCH = 32
TARGETS = {100_000: 1.05, 10: 1.5}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", choices=("1", "default"), default="1",
                   help="pin JAX and torch to one thread (default) or leave their defaults")
    p.add_argument("--engines", nargs="+", choices=("jax", "torch"), default=("jax", "torch"))
    p.add_argument("--sizes", nargs="+", type=int, default=SIZES, choices=SIZES)
    p.add_argument("--min-time", type=float, default=0.5,
                   help="seconds each side runs, at least, per measurement")
    p.add_argument("--quick", action="store_true", help="n = 10 only, --min-time 0.05")
    p.add_argument("--out", help="also write the tables (markdown) to this file")
    p.add_argument("--breakdown", action="store_true",
                   help="only print where a prepared call's time goes, step by step, at n = 10")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.min_time = (10,), 0.05
    return args


ARGS = parse_args()
LOAD_AT_START = os.getloadavg()[0]
if ARGS.threads == "1":
    flags = os.environ.get("XLA_FLAGS", "")
    if PINNED_XLA_FLAGS not in flags:
        os.environ["XLA_FLAGS"] = (flags + " " + PINNED_XLA_FLAGS).strip()

import numpy as np  # noqa: E402

import statistics  # noqa: E402

from _timing import first_call, interleaved_samples, paired_ratio  # noqa: E402

import diffinterface as di  # noqa: E402


# --- the functions, written once for jax.numpy and torch -------------------------------------

def f_sin(x, xp):
    return xp.sum(xp.sin(x) * x**2)


def f_vec(x, xp):
    return xp.sin(x) * x**2


def mlp_loss(x, X, Y, d, h, xp):
    i = d * h
    W1 = x[:i].reshape(d, h)
    b1 = x[i:i + h]
    w2 = x[i + h:i + 2 * h]
    b2 = x[i + 2 * h]
    pred = xp.tanh(X @ W1 + b1) @ w2 + b2
    return xp.mean((pred - Y) ** 2)


def mlp_size(n):
    d, h = MLP_SHAPES[n]
    return h * (d + 2) + 1


def mlp_data(n):
    d, _ = MLP_SHAPES[n]
    rng = np.random.default_rng(1)
    return rng.standard_normal((MLP_BATCH, d)), rng.standard_normal(MLP_BATCH)


def inputs(size):
    rng = np.random.default_rng(0)
    return rng.uniform(-1.0, 1.0, size), rng.uniform(-1.0, 1.0, size)


# --- engines ---------------------------------------------------------------------------------

class JaxSide:
    name = "jax"

    def __init__(self):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        self.jax, self.jnp = jax, jnp
        jax.jit(lambda z: jnp.sin(z) * 2)(jnp.ones(3)).block_until_ready()  # backend start-up

    def array(self, a):
        return self.jnp.asarray(a)

    def function(self, fname, n):
        jnp = self.jnp
        if fname == "sin":
            return lambda x: f_sin(x, jnp)
        if fname == "vec":
            return lambda x: f_vec(x, jnp)
        X, Y = (jnp.asarray(a) for a in mlp_data(n))
        d, h = MLP_SHAPES[n]
        return lambda x: mlp_loss(x, X, Y, d, h, jnp)

    def backend(self, mode):
        return di.AutoJAX(mode=mode)

    def natives(self, op, mode, f):
        """{variant name: callable(x[, t])} (a new jit per call of this method)."""
        jax = self.jax
        if op == "gradient":
            return {"jit(grad)": jax.jit(jax.grad(f))}
        if op == "pushforward":
            return {"jit(jvp)": jax.jit(lambda x, t: jax.jvp(f, (x,), (t,))[1])}
        if mode == "forward":
            return {"jit(jacfwd)": jax.jit(jax.jacfwd(f))}
        return {"jit(jacrev)": jax.jit(jax.jacrev(f))}

    @staticmethod
    def timed(fn, *args):
        return lambda: fn(*args).block_until_ready()

    @staticmethod
    def to_numpy(a):
        return np.asarray(a)


class TorchSide:
    name = "torch"

    def __init__(self, threads):
        import torch

        if threads == "1":
            torch.set_num_threads(1)
        self.torch = torch
        # one-off start-up of autograd and torch.func, outside every measurement
        z = torch.ones(3, dtype=torch.float64)
        g = lambda v: torch.sum(torch.sin(v) * v)  # noqa: E731
        torch.func.grad(g)(z), torch.func.jvp(g, (z,), (z,)), torch.func.jacrev(torch.sin)(z)
        torch.func.jacfwd(torch.sin)(z)
        leaf = z.clone().requires_grad_(True)
        torch.autograd.grad(g(leaf), leaf)

    def array(self, a):
        return self.torch.from_numpy(np.array(a, dtype=np.float64))

    def function(self, fname, n):
        torch = self.torch
        if fname == "sin":
            return lambda x: f_sin(x, torch)
        if fname == "vec":
            return lambda x: f_vec(x, torch)
        X, Y = (torch.from_numpy(a) for a in mlp_data(n))
        d, h = MLP_SHAPES[n]
        return lambda x: mlp_loss(x, X, Y, d, h, torch)

    def backend(self, mode):
        return di.AutoTorch(mode=mode)

    def natives(self, op, mode, f):
        torch = self.torch
        tf = torch.func
        if op == "gradient":
            fgrad = tf.grad(f)
            leaves = {}

            def autograd_leaf(x):
                leaf = leaves.get(id(x))
                if leaf is None:  # made once per input, outside the timed calls after warm-up
                    leaf = leaves[id(x)] = x.detach().clone().requires_grad_(True)
                return torch.autograd.grad(f(leaf), leaf)[0]

            return {"autograd.grad(leaf)": autograd_leaf, "func.grad": fgrad}
        if op == "pushforward":
            return {"func.jvp": lambda x, t: tf.jvp(f, (x,), (t,))[1]}
        if mode == "forward":
            return {"func.jacfwd": tf.jacfwd(f)}
        return {"func.jacrev": tf.jacrev(f)}

    @staticmethod
    def timed(fn, *args):
        return lambda: fn(*args)

    @staticmethod
    def to_numpy(a):
        return a.detach().numpy()


# --- measurements ----------------------------------------------------------------------------

def prepared_call(op, f, backend, x, t):
    """(prepare time, first-call time, timed-call factory) for diffinterface."""
    t0 = time.perf_counter()
    if op == "pushforward":
        prep = di.prepare_pushforward(f, backend, x, t)
    else:
        prep = getattr(di, "prepare_" + op)(f, backend, x)
    t_prep = time.perf_counter() - t0
    fn = getattr(di, op)
    if op == "pushforward":
        call = lambda x_, t_: fn(f, backend, x_, t_, prep=prep)  # noqa: E731
    else:
        call = lambda x_: fn(f, backend, x_, prep=prep)  # noqa: E731
    return t_prep, call


def measure(side, fname, op, mode, n, min_time):
    size = mlp_size(n) if fname == "mlp" else n
    xa, ta = inputs(size)
    x, t = side.array(xa), side.array(ta)
    args = (x, t) if op == "pushforward" else (x,)
    f = side.function(fname, n)
    backend = side.backend(mode)

    natives = side.natives(op, mode, f)
    first_native = {}
    for name, g in natives.items():
        first_native[name] = first_call(side.timed(g, *args))
    t_prep, di_call = prepared_call(op, f, backend, x, t)
    t_first = first_call(side.timed(di_call, *args))

    ref = side.to_numpy(next(iter(natives.values()))(*args))
    got = side.to_numpy(di_call(*args))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)

    fns = [side.timed(g, *args) for g in natives.values()] + [side.timed(di_call, *args)]
    for fn in fns:  # warm-up beyond the first call
        for _ in range(3):
            fn()
    samples = interleaved_samples(fns, min_s=min_time)
    native_times = {name: statistics.median(s) for name, s in zip(natives, samples)}
    best = min(native_times, key=native_times.get)
    best_samples = samples[list(natives).index(best)]
    return {
        "engine": side.name, "function": fname, "operator": op if op != "jacobian" else f"jacobian ({mode})",
        "n": size, "n_class": n, "variant": best, "native": native_times[best],
        "di": statistics.median(samples[-1]), "ratio": paired_ratio(best_samples, samples[-1]),
        "native_first": first_native[best], "di_prepare": t_prep, "di_first": t_first,
        "all_natives": native_times,
    }


def noise_floor(side, n, min_time):
    """A/A check: the paired ratio of two identical native gradient callables (made
    separately) at size n; how far from 1.000 a ratio drifts on this machine by chance."""
    xa, _ = inputs(n)
    x = side.array(xa)
    f = side.function("sin", n)
    a, b = (side.timed(next(iter(side.natives("gradient", "reverse", f).values())), x) for _ in range(2))
    for fn in (a, b):
        for _ in range(3):
            fn()
    s_a, s_b = interleaved_samples([a, b], min_s=min_time)
    return paired_ratio(s_a, s_b)


def numpy_rows(side, sizes, min_time):
    """di.gradient through AutoJAX() with NumPy in / NumPy out, against the same jitted
    jax.grad called on a jax.Array and, hand-written, on the NumPy array."""
    rows = []
    for n in sizes:
        xa, _ = inputs(n)
        xj = side.array(xa)
        f = side.function("sin", n)
        jg = side.jax.jit(side.jax.grad(f))
        prep = di.prepare_gradient(f, di.AutoJAX(), xa)
        b = di.AutoJAX()
        fns = [
            lambda: jg(xj).block_until_ready(),
            lambda: np.asarray(jg(xa)),
            lambda: di.gradient(f, b, xa, prep=prep),
        ]
        out = fns[2]()
        assert isinstance(out, np.ndarray)
        np.testing.assert_allclose(out, np.asarray(jg(xj)), rtol=1e-12)
        for fn in fns:
            for _ in range(3):
                fn()
        s_jax, s_np, s_di = interleaved_samples(fns, min_s=min_time)
        rows.append((n, statistics.median(s_jax), statistics.median(s_np), statistics.median(s_di),
                     paired_ratio(s_np, s_di), paired_ratio(s_jax, s_di)))
    return rows


# --- report ----------------------------------------------------------------------------------

def fmt_us(s):
    return f"{s * 1e6:.1f}" if s < 1e-3 else f"{s * 1e6:.0f}"


def fmt_ms(s):
    return f"{s * 1e3:.1f}"


def target_cell(r):
    target = TARGETS.get(r["n_class"])
    if target is None:
        return "-"
    ratio = r["ratio"]
    return f"≤{target}: {'met' if ratio <= target else 'MISSED'}"


def main_table(rows):
    lines = [
        "| engine | function | operator | n | native | native median (µs) | di median (µs) | ratio "
        "| target | native first call (ms) | di prepare (ms) | di first call (ms) |",
        "|---|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['function']} | {r['operator']} | {r['n']} | {r['variant']} | "
            f"{fmt_us(r['native'])} | {fmt_us(r['di'])} | {r['ratio']:.3f} | {target_cell(r)} | "
            f"{fmt_ms(r['native_first'])} | {fmt_ms(r['di_prepare'])} | {fmt_ms(r['di_first'])} |"
        )
    others = [r for r in rows if len(r["all_natives"]) > 1]
    if others:
        lines.append("")
        lines.append("Native variants (median µs): " + "; ".join(
            f"{r['engine']} {r['function']} n={r['n']}: "
            + ", ".join(f"{k} {fmt_us(v)}" for k, v in r["all_natives"].items()) for r in others))
    return lines


def numpy_table(rows):
    lines = [
        "| n | native jit(grad) on jax.Array (µs) | native np.asarray(jit(grad)(x_np)) (µs) "
        "| di.gradient AutoJAX(), NumPy in/out (µs) | ratio vs NumPy hand-written | ratio vs jax.Array |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, t_jax, t_np, t_di, r_np, r_jax in rows:
        lines.append(f"| {n} | {fmt_us(t_jax)} | {fmt_us(t_np)} | {fmt_us(t_di)} | {r_np:.3f} | {r_jax:.3f} |")
    return lines


def environment(torch_threads):
    try:
        model = next(line.split(":", 1)[1].strip() for line in
                     subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                     if line.startswith("Model name"))
    except Exception:  # noqa: BLE001
        model = platform.processor() or "?"
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for mod in ("jax", "jaxlib", "torch"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    return [
        f"- machine: {model}, {os.cpu_count()} cores ({platform.system()} {platform.release()})",
        "- versions: " + ", ".join(versions),
        f"- threads: {'pinned to 1' if ARGS.threads == '1' else 'engine defaults'}; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '(unset)')!r}; torch.get_num_threads()={torch_threads}",
        "- command: `python " + " ".join(["benchmarks/overhead.py"] + sys.argv[1:]) + "`",
        f"- load average (1 min) at start / end: {LOAD_AT_START:.2f} / {os.getloadavg()[0]:.2f} "
        "(other processes on the machine; the A/A noise floor below shows what that does to ratios)",
        f"- timing: alternating ~5 ms batches (A, B, B, A, ...), each side >= {ARGS.min_time} s and >= 7 "
        "batches; µs columns are medians of the per-call time over batches; ratio is the median over "
        "rounds of di / native for batches run back to back",
    ]


def breakdown():
    """Best-of-repeats cost of each step of the prepared di call path at n = 10, f = sin.
    Uses library internals, so a step the library no longer has prints n/a."""
    import timeit

    def internal(path):
        module, name = path.rsplit(".", 1)
        return getattr(__import__(module, fromlist=[name]), name)

    def jax_steps():
        side = JaxSide()
        x, t = side.array(xa), side.array(ta)
        f, b = side.function("sin", 10), di.AutoJAX()
        pg, pp = di.prepare_gradient(f, b, x), di.prepare_pushforward(f, b, x, t)
        jg = side.natives("gradient", "reverse", f)["jit(grad)"]
        jj = side.natives("pushforward", "reverse", f)["jit(jvp)"]
        return {
            "native jit(grad)(x)": lambda: jg(x).block_until_ready(),
            "di.gradient(..., prep=)": lambda: di.gradient(f, b, x, prep=pg).block_until_ready(),
            "  prep.fn('gradient')(x) (the jitted call alone)": lambda: pg.fn("gradient")(x).block_until_ready(),
            "  prep.fast_path('gradient', ...) (hot path: checks + call)":
                lambda: pg.fast_path("gradient", f, "gradient", b, x).block_until_ready(),
            "  prep.matches(...) (slow path check)": lambda: pg.matches("gradient", f, b, x, ()),
            "    _arrays.signature(x)": lambda: internal("diffinterface._arrays.signature")(x),
            "      str(x.dtype)": lambda: str(x.dtype),
            "native jit(jvp)(x, t)": lambda: jj(x, t).block_until_ready(),
            "di.pushforward(..., prep=)": lambda: di.pushforward(f, b, x, t, prep=pp).block_until_ready(),
            "  prep.fn('pushforward')(x, (t,)) (jitted value_and_pushforward, y dropped)":
                lambda: pp.fn("pushforward")(x, (t,))[0].block_until_ready(),
            "  prep.check_seed_shapes((t,), ...)":
                lambda: internal("diffinterface.prep.check_seed_shapes")((t,), "tx", (10,), "x"),
        }

    def torch_steps():
        side = TorchSide(ARGS.threads)
        torch = side.torch
        x, t = side.array(xa), side.array(ta)
        f, b = side.function("sin", 10), di.AutoTorch()
        pg, pp = di.prepare_gradient(f, b, x), di.prepare_pushforward(f, b, x, t)
        leaf = x.detach().clone().requires_grad_(True)

        def fresh_leaf():
            z = x.detach().requires_grad_(True)
            return torch.autograd.grad(f(z), z)[0]

        def as_engine():
            z = x.detach().requires_grad_(True)
            with torch.enable_grad():
                y = f(z)
                (g,) = torch.autograd.grad(y, z)
            return y.detach(), g

        return {
            "native autograd.grad on a leaf made once": lambda: torch.autograd.grad(f(leaf), leaf)[0],
            "  same, leaf made per call (x.detach().requires_grad_())": fresh_leaf,
            "  same + enable_grad() + y.detach() (what the engine does)": as_engine,
            "di.gradient(..., prep=)": lambda: di.gradient(f, b, x, prep=pg),
            "  prep.fn('gradient')(x) (the engine callable alone)": lambda: pg.fn("gradient")(x),
            "  prep.fast_path('gradient', ...) (hot path: checks + call)":
                lambda: pg.fast_path("gradient", f, "gradient", b, x),
            "  prep.matches(...) (slow path check)": lambda: pg.matches("gradient", f, b, x, ()),
            "    _arrays.signature(x)": lambda: internal("diffinterface._arrays.signature")(x),
            "      str(x.device)": lambda: str(x.device),
            "native torch.func.jvp(f, (x,), (t,))[1]": lambda: torch.func.jvp(f, (x,), (t,))[1],
            "di.pushforward(..., prep=)": lambda: di.pushforward(f, b, x, t, prep=pp),
            "  prep.fn('pushforward')(x, (t,)) (the engine callable alone)": lambda: pp.fn("pushforward")(x, (t,)),
            "  t.to(x.dtype)": lambda: t.to(x.dtype),
        }

    xa, ta = inputs(10)
    tables = []
    if "jax" in ARGS.engines:
        tables.append(("JAX", jax_steps()))
    if "torch" in ARGS.engines:
        tables.append(("torch", torch_steps()))
    for name, steps in tables:
        print(f"\n| step ({name}, n = 10, f = sin) | best of 7 x 2000 calls (µs) |\n|---|---:|")
        for label, fn in steps.items():
            try:
                fn()
                cost = f"{min(timeit.repeat(fn, number=2000, repeat=7)) / 2000 * 1e6:.2f}"
            except Exception as error:  # noqa: BLE001
                cost = f"n/a ({type(error).__name__})"
            print(f"| {label} | {cost} |", flush=True)


def main():
    if ARGS.breakdown:
        return breakdown()
    start = time.perf_counter()
    rows, np_rows, torch_threads = [], [], "-"
    sides = []
    if "jax" in ARGS.engines:
        sides.append(JaxSide())
    if "torch" in ARGS.engines:
        side = TorchSide(ARGS.threads)
        torch_threads = side.torch.get_num_threads()
        sides.append(side)
    cases = []
    for side in sides:
        for op in ("gradient", "pushforward"):
            for fname in ("sin", "mlp"):
                for n in ARGS.sizes:
                    cases.append((side, fname, op, "reverse", n))
        for mode in ("reverse", "forward"):
            for n in ARGS.sizes:
                if n in JAC_SIZES:
                    cases.append((side, "vec", "jacobian", mode, n))
    for side, fname, op, mode, n in cases:
        r = measure(side, fname, op, mode, n, ARGS.min_time)
        print(f"  {r['engine']:5} {r['function']:3} {r['operator']:18} n={r['n']:<6} "
              f"native {fmt_us(r['native']):>8} µs  di {fmt_us(r['di']):>8} µs  "
              f"ratio {r['ratio']:.3f}", file=sys.stderr, flush=True)
        rows.append(r)
    if "jax" in ARGS.engines:
        np_rows = numpy_rows(sides[0], ARGS.sizes, ARGS.min_time)
    floors = [(side.name, n, noise_floor(side, n, ARGS.min_time)) for side in sides for n in ARGS.sizes
              if n in TARGETS]

    lines = [f"## Threads: {'1 (pinned)' if ARGS.threads == '1' else 'default'}", ""]
    lines += environment(torch_threads)
    lines += ["", *main_table(rows)]
    if floors:
        lines += ["", "Noise floor (A/A: native gradient of `sin` against an identical copy of itself, "
                  "same method): " + ", ".join(f"{e} n={n}: {r:.3f}" for e, n, r in floors)]
    if np_rows:
        lines += ["", "NumPy inputs through `AutoJAX()` (gradient of `sin`):", "", *numpy_table(np_rows)]
    judged = [r for r in rows if r["n_class"] in TARGETS]
    missed = [r for r in judged if r["ratio"] > TARGETS[r["n_class"]]]
    lines += ["", f"Targets: {len(judged) - len(missed)}/{len(judged)} rows met"
              + ("" if not missed else "; missed: " + ", ".join(
                  f"{r['engine']} {r['function']} {r['operator']} n={r['n']} ({r['ratio']:.2f})"
                  for r in missed)),
              f"Wall time: {time.perf_counter() - start:.0f} s"]
    text = "\n".join(lines)
    print(text)
    if ARGS.out:
        with open(ARGS.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()

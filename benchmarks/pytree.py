"""Pytree overhead: prepared `di.gradient` of an MLP loss with dict parameters vs a flat vector.

    python benchmarks/pytree.py                      # engines pinned to 1 thread (writes results/pytree.md)
    python benchmarks/pytree.py --threads default    # default thread pools (its own section of pytree.md)
    python benchmarks/pytree.py --quick              # short timings, no file written

Loss: squared loss of a tanh MLP with two hidden layers on a fixed batch of 64
samples (a closure constant), float64 (JAX with x64 enabled):

* ``n = 95,701`` (~1e5): 16 -> 300 -> 300 -> 1
* ``n = 1,015``  (~1e3): 10 -> 26 -> 26 -> 1

Two ways of writing the same loss:

* ``dict``: ``loss(p)`` with ``p = {"w1", "b1", "w2", "b2", "w3", "b3"}``, the
  leaves in the engine's own arrays (jax arrays / torch tensors / NumPy for
  autograd);
* ``flat``: ``loss(v)`` on one vector of the n parameters (same array kind),
  sliced and reshaped into the same six arrays inside the loss.

Timed callables (per engine and size):

* ``flat``  = ``di.gradient(loss_flat, backend, v, prep=prep_flat)``
* ``dict``  = ``di.gradient(loss_dict, backend, p, prep=prep_dict)``
* ``flat fresh x`` = ``flat`` on a new copy of ``v`` each call (the copy
  included): the dict path hands the engine a new concatenated buffer each
  call, and a new 0.8 MB buffer costs more than its copy (page faults, cold
  cache) on this machine;
* ``native`` = the engine's own gradient of ``loss_flat`` (jax.jit(jax.grad),
  ``torch.autograd.grad`` on a detached leaf, ``autograd.grad``), and
  ``native dict`` the same of ``loss_dict`` (JAX and autograd take dicts;
  torch: ``torch.autograd.grad`` on six detached leaves), for reference.

The ratio is dict / flat (both through diffinterface), target <= 1.05 at n ~ 1e5.

Method: every callable is warmed up (the first call, i.e. prepare + JIT compile,
is timed and reported separately); the four callables run in alternating
batches (A, B, C, D, D, C, B, A, ...; ``_timing.interleaved_samples``),
repeated ``--reps`` times; times are medians over all batches; the ratio is the
median over all rounds of dict[i] / flat[i] (batches run back to back), with
the spread of the per-repeat ratios.  A second table times the pieces of the
pytree path (``_run_tree``) on their own: the prep check (which rebuilds the
TreeSpec of x), ``x_spec.ravel(x)`` and ``x_spec.unravel(g)``.
``--threads 1`` (default) sets ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` and OMP/OPENBLAS/MKL_NUM_THREADS=1 before the
imports and calls ``torch.set_num_threads(1)``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _timing import THREAD_ENV, machine, write_section  # noqa: E402 (no engine imported)


def _early_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", choices=["1", "default"], default="1")
    p.add_argument("--quick", action="store_true", help="short timings, no file written")
    p.add_argument("--engines", default="jax,torch,autograd")
    p.add_argument("--reps", type=int, default=5, help="repeats of each interleaved comparison")
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per callable per repeat")
    p.add_argument("--no-write", action="store_true")
    return p.parse_args()


ARGS = _early_args()
if ARGS.threads == "1":
    os.environ.update(THREAD_ENV)

import numpy as np  # noqa: E402

from _timing import block, first_call, interleaved_samples, paired_ratio  # noqa: E402

BATCH = 64
SIZES = {"1e5": (16, 300), "1e3": (10, 26)}  # label: (d_in, hidden)
NAMES = ("w1", "b1", "w2", "b2", "w3", "b3")


def shapes(d, h):
    return {"w1": (d, h), "b1": (h,), "w2": (h, h), "b2": (h,), "w3": (h,), "b3": ()}


def n_params(d, h):
    return sum(int(np.prod(s)) for s in shapes(d, h).values())


def data(d, h):
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((BATCH, d)), rng.standard_normal(BATCH)
    v = rng.standard_normal(n_params(d, h)) * 0.1
    p, i = {}, 0
    for k in NAMES:
        s = shapes(d, h)[k]
        size = int(np.prod(s))
        p[k] = v[i:i + size].reshape(s).copy()
        i += size
    return X, Y, v, p


def make_losses(xp, X, Y, d, h):
    def forward(w1, b1, w2, b2, w3, b3):
        z = xp.tanh(xp.tanh(X @ w1 + b1) @ w2 + b2)
        r = z @ w3 + b3 - Y
        return xp.sum(r * r) / BATCH

    def loss_dict(p):
        return forward(p["w1"], p["b1"], p["w2"], p["b2"], p["w3"], p["b3"])

    def loss_flat(v):
        i = 0
        w1 = xp.reshape(v[i:i + d * h], (d, h)); i += d * h
        b1 = v[i:i + h]; i += h
        w2 = xp.reshape(v[i:i + h * h], (h, h)); i += h * h
        b2 = v[i:i + h]; i += h
        w3 = v[i:i + h]; i += h
        b3 = v[i]
        return forward(w1, b1, w2, b2, w3, b3)

    return loss_flat, loss_dict


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

    def xp(self):
        return self.jnp

    def arr(self, a):
        return self.jnp.asarray(a)

    def copy(self, a):
        return self.jnp.array(a, copy=True)

    def natives(self, loss_flat, loss_dict):
        return self.jax.jit(self.jax.grad(loss_flat)), self.jax.jit(self.jax.grad(loss_dict))


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

    def xp(self):
        return self.torch

    def arr(self, a):
        return self.torch.from_numpy(np.array(a, dtype=np.float64))

    def copy(self, a):
        return a.clone()

    def natives(self, loss_flat, loss_dict):
        torch = self.torch

        def grad_flat(v):
            leaf = v.detach().requires_grad_(True)
            return torch.autograd.grad(loss_flat(leaf), leaf)[0]

        def grad_dict(p):
            leaves = {k: t.detach().requires_grad_(True) for k, t in p.items()}
            gs = torch.autograd.grad(loss_dict(leaves), list(leaves.values()))
            return dict(zip(leaves, gs))

        return grad_flat, grad_dict


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

    def xp(self):
        return self.anp

    def arr(self, a):
        return np.array(a, dtype=np.float64)

    def copy(self, a):
        return a.copy()

    def natives(self, loss_flat, loss_dict):
        return self.autograd.grad(loss_flat), self.autograd.grad(loss_dict)


ENGINES = {"jax": Jax, "torch": Torch, "autograd": Autograd}


# --------------------------------------------------------------------------- timing
def timing_kw():
    if ARGS.quick:
        return dict(min_s=0.05, min_batches=3, max_s=1.0)
    return dict(min_s=ARGS.min_time, min_batches=9, max_s=4.0)


def as_numpy(g):
    if isinstance(g, dict):
        return np.concatenate([as_numpy(g[k]).reshape(-1) for k in NAMES])
    if hasattr(g, "detach"):
        return g.detach().numpy()
    return np.asarray(g)


def run_case(eng, label, log):
    import diffinterface as di

    d, h = SIZES[label]
    n = n_params(d, h)
    X, Y, v_np, p_np = data(d, h)
    loss_flat, loss_dict = make_losses(eng.xp(), eng.arr(X), eng.arr(Y), d, h)
    v = eng.arr(v_np)
    p = {k: eng.arr(a) for k, a in p_np.items()}
    b = eng.backend
    compile_s = {}
    preps = {}

    def prep_flat():
        preps["flat"] = di.prepare_gradient(loss_flat, b, v)

    def prep_dict():
        preps["dict"] = di.prepare_gradient(loss_dict, b, p)

    compile_s["prepare flat"] = first_call(prep_flat)
    compile_s["prepare dict"] = first_call(prep_dict)
    pf, pd = preps["flat"], preps["dict"]
    nat_flat, nat_dict = eng.natives(loss_flat, loss_dict)
    fns = {
        "flat": lambda: block(di.gradient(loss_flat, b, v, prep=pf)),
        "dict": lambda: block(di.gradient(loss_dict, b, p, prep=pd)),
        "native": lambda: block(nat_flat(v)),
        "native dict": lambda: block(nat_dict(p)),
        # the flat call on a new copy of v each call (copy included): what a fresh input
        # buffer costs, as the dict path's ravel makes one per call
        "flat fresh x": lambda: block(di.gradient(loss_flat, b, eng.copy(v), prep=pf)),
    }
    for k, fn in fns.items():
        compile_s[k] = first_call(fn)
    # all four give the same gradient
    ref = as_numpy(fns["native"]())
    for k, fn in fns.items():
        err = np.max(np.abs(as_numpy(fn()) - ref))
        assert err <= 1e-10 * (1 + np.max(np.abs(ref))), (eng.name, label, k, err)
    for fn in fns.values():  # warm-up
        for _ in range(3):
            fn()

    names = list(fns)
    all_samples = {k: [] for k in names}
    rep_ratios = []
    for rep in range(1 if ARGS.quick else ARGS.reps):
        samples = interleaved_samples([fns[k] for k in names], **timing_kw())
        for k, s in zip(names, samples):
            all_samples[k].extend(s)
        rep_ratios.append(paired_ratio(samples[0], samples[1]))
    med = {k: statistics.median(s) for k, s in all_samples.items()}
    ratio = paired_ratio(all_samples["flat"], all_samples["dict"])

    # the pieces of the pytree path, timed on their own
    spec = pd.x_spec
    g_flat = di.gradient(loss_flat, b, v, prep=pf)
    pieces = {
        "prep.matches (TreeSpec of x)": lambda: pd.matches("gradient", loss_dict, b, p, ()),
        "x_spec.ravel(x)": lambda: block(spec.ravel(p)),
        "x_spec.unravel(g)": lambda: block(spec.unravel(g_flat)),
    }
    for fn in pieces.values():
        fn()
    psamples = interleaved_samples(list(pieces.values()), **(dict(min_s=0.05, min_batches=3, max_s=1.0)
                                                            if ARGS.quick else dict(min_s=0.2, min_batches=9)))
    piece_t = {k: statistics.median(s) for k, s in zip(pieces, psamples)}

    row = dict(engine=eng.name, label=label, n=n, med=med, ratio=ratio, rep_ratios=rep_ratios,
               compile=compile_s, pieces=piece_t)
    log(f"   flat {fmt_t(med['flat'])}  dict {fmt_t(med['dict'])}  ratio {ratio:.3f} "
        f"(repeats {', '.join(f'{r:.3f}' for r in rep_ratios)})  native {fmt_t(med['native'])}  "
        f"native dict {fmt_t(med['native dict'])}  extra {fmt_t(med['dict'] - med['flat'])}  pieces "
        + ", ".join(f"{k} {fmt_t(t)}" for k, t in piece_t.items()))
    return row


# --------------------------------------------------------------------------- report
def fmt_t(s):
    if abs(s) >= 1:
        return f"{s:.2f} s"
    if abs(s) >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def us(s):
    return f"{s * 1e6:,.1f}"


def tables(rows):
    out = ["### Prepared `di.gradient`: dict parameters vs flat vector (target dict / flat <= 1.05 at n ~ 1e5)\n",
           "| engine | params | flat µs | dict µs | ratio | per-repeat ratios | | native µs | native dict µs | dict - flat µs "
           "| flat, fresh copy of x µs |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["med"]
        verdict = ("ok" if r["ratio"] <= 1.05 else "**MISS**") if r["label"] == "1e5" else "(context)"
        spread = f"{min(r['rep_ratios']):.3f} – {max(r['rep_ratios']):.3f}"
        out.append(f"| {r['engine']} | {r['n']:,} | {us(m['flat'])} | {us(m['dict'])} | {r['ratio']:.3f} | {spread} "
                   f"| {verdict} | {us(m['native'])} | {us(m['native dict'])} | {us(m['dict'] - m['flat'])} "
                   f"| {us(m['flat fresh x'])} |")
    out.append("\n### Where the pytree path's time goes (each piece timed alone, µs per call)\n")
    keys = list(rows[0]["pieces"]) if rows else []
    out.append("| engine | params | " + " | ".join(keys) + " | sum | fresh x: (flat, fresh copy) - flat "
               "| dict - flat (measured) |")
    out.append("|---|---|" + "---|" * (len(keys) + 3))
    for r in rows:
        pc = r["pieces"]
        out.append(f"| {r['engine']} | {r['n']:,} | " + " | ".join(us(pc[k]) for k in keys)
                   + f" | {us(sum(pc.values()))} | {us(r['med']['flat fresh x'] - r['med']['flat'])} "
                   f"| {us(r['med']['dict'] - r['med']['flat'])} |")
    out.append("\n### First call, seconds (prepare includes the JIT compile for JAX)\n")
    out.append("| engine | params | first calls |")
    out.append("|---|---|---|")
    for r in rows:
        out.append(f"| {r['engine']} | {r['n']:,} | " + ", ".join(f"{k} {t:.3f}" for k, t in r["compile"].items()) + " |")
    return "\n".join(out)


def write_results(section, text):
    head = ("# Pytree overhead: prepared `di.gradient` with dict parameters vs a flat vector\n\n"
            "Written by `benchmarks/pytree.py`; see its docstring for the method.\n")
    return write_section(os.path.join(HERE, "results", "pytree.md"), head, section, text)


def main():
    t0 = time.time()
    log = lambda s: print(s, flush=True)  # noqa: E731
    rows, versions = [], []
    for ename in [e for e in ARGS.engines.split(",") if e]:
        eng = ENGINES[ename]()
        versions.append(eng.version())
        for label in ("1e5", "1e3"):
            log(f"== {ename} n~{label}  ({time.time() - t0:.0f} s)")
            rows.append(run_case(eng, label, log))
    import optree
    import scipy

    import diffinterface

    threads = "pinned to 1 thread (XLA_FLAGS, OMP/OPENBLAS/MKL=1, torch.set_num_threads(1))" if ARGS.threads == "1" \
        else "default thread pools"
    header = [
        f"## Threads: {threads}\n",
        f"- machine: {machine()} (shared, noisy: medians over {ARGS.reps} interleaved repeats)",
        f"- versions: diffinterface {getattr(diffinterface, '__version__', '?')}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, optree {optree.__version__}, " + ", ".join(versions),
        f"- command: `{' '.join(['python'] + [os.path.relpath(__file__, os.path.dirname(HERE))] + sys.argv[1:])}`",
        f"- run time: {time.time() - t0:.0f} s",
        "",
    ]
    text = "\n".join(header) + tables(rows)
    print()
    print(text)
    if not (ARGS.quick or ARGS.no_write):
        print("\nwrote", write_results(f"threads-{ARGS.threads}", text))


if __name__ == "__main__":
    main()

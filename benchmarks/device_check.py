"""Device check: diffinterface on a GPU with JAX and torch, results on the device, no hidden host copies.

    python benchmarks/device_check.py              # on a machine with a CUDA GPU
    python benchmarks/device_check.py --device cpu # the same checks on the CPU (to try the script)

For each engine (JAX with a GPU backend, torch with CUDA), x lives on the GPU in
float64 and every call below is made twice: once to prepare / compile / let the
operators measure their strategies, then once more under a guard that turns
any implicit host transfer into an error (JAX: ``jax.transfer_guard("disallow")``;
torch: ``torch.cuda.set_sync_debug_mode("warn")``, which warns at each
operation that waits for the GPU, such as ``.item()`` or ``.cpu()``).  A row
says whether the result is on the GPU, whether the guarded call transferred
or synchronized, and its largest relative error against the engine's own
native functions evaluated on the CPU (an independent reference).

Then a short timing: the Hessian operator (``H.update(x)`` + 10 ``H @ v``)
and the Jacobian operator (``J.update(x)`` + 10 pairs ``J @ v``, ``J.T @ w``)
at n = 1e6 against the fastest of two hand-written native strategies on the
same GPU (JAX: jitted jvp-of-grad / jvp + vjp per product, or a linearization
built inside jit; torch: torch.func per product, or graphs kept with
retain_graph), in alternating rounds (medians; compile and strategy
measurement excluded; the fastest native is chosen on the first half of the
rounds and compared on the second).

Writes the report to ``$OUT/device.md`` when OUT is set (the device tool's
output folder) and prints it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

N_CHECK, N_TIME, K = 1000, 1_000_000, 8  # sizes: checks, timing; block width


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    p.add_argument("--engines", default="jax,torch")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--n-time", type=int, default=N_TIME)
    p.add_argument("--profile", action="store_true", help="cProfile the di side of each timed workload")
    return p.parse_args()


ARGS = _args()
LINES: list[str] = []


def log(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


def functions(xp):
    """A scalar objective with a tridiagonal Hessian and a residual map with a bidiagonal Jacobian."""

    def objective(x):
        return xp.sum(xp.sin(x) * x**2) + 0.5 * xp.sum((x[1:] - x[:-1]) ** 2)

    def residuals(x):
        return x[1:] * x[:-1] + xp.sin(x[1:])

    return objective, residuals


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ----------------------------------------------------------------- engines
class JaxSide:
    name = "jax"

    def __init__(self):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        self.jax, self.jnp = jax, jnp
        self.dev = jax.devices("gpu")[0] if ARGS.device == "gpu" else jax.devices("cpu")[0]
        self.cpu = jax.devices("cpu")[0]
        import diffinterface as di

        self.backend = di.AutoJAX()
        self.f, self.r = functions(jnp)

    def put(self, a):
        return self.jax.device_put(a, self.dev)

    def host(self, a):
        from jax.experimental import sparse

        if isinstance(a, sparse.BCOO):
            a = a.todense()
        return np.asarray(self.jax.device_get(a))

    def devices(self, a) -> set:
        leaves = self.jax.tree_util.tree_leaves(a)
        return {str(d.platform) for leaf in leaves for d in leaf.devices()}

    def guarded(self, call):
        with self.jax.transfer_guard("disallow"):
            out = call()
            self.jax.block_until_ready(out)
        return out, "none"

    def sync(self, out):
        self.jax.block_until_ready(out)
        return out

    def reference(self, x, v, w):
        jax, f, r = self.jax, self.f, self.r
        xc, vc, wc = (jax.device_put(np.asarray(a), self.cpu) for a in (x, v, w))
        grad = jax.grad(f)
        return {
            "gradient": grad(xc), "value": f(xc), "hvp": jax.jvp(grad, (xc,), (vc,))[1],
            "hessian": jax.hessian(f)(xc), "jacobian": jax.jacfwd(r)(xc),
            "jvp": jax.jvp(r, (xc,), (vc,))[1], "vjp": jax.vjp(r, xc)[1](wc)[0],
        }

    def native_timers(self, f, r):
        """name -> (set-up(x) -> state, hvp(state, v)) and (set-up, jvp(state, v), vjp(state, w))."""
        jax = self.jax
        grad = jax.grad(f)

        def lin_hvp(x):
            return jax.linearize(grad, x)[1]

        def lin_jac(x):
            lin = jax.linearize(r, x)[1]
            return lin, jax.linear_transpose(lin, x)

        hvp = {"jvp of grad": (lambda x: x, jax.jit(lambda x, v: jax.jvp(grad, (x,), (v,))[1])),
               "linearize": (jax.jit(lin_hvp), jax.jit(lambda s, v: s(v)))}
        jac = {"jvp, vjp": (lambda x: x, jax.jit(lambda x, v: jax.jvp(r, (x,), (v,))[1]),
                            jax.jit(lambda x, w: jax.vjp(r, x)[1](w)[0])),
               "linearize": (jax.jit(lin_jac), jax.jit(lambda s, v: s[0](v)), jax.jit(lambda s, w: s[1](w)[0]))}
        return hvp, jac


class TorchSide:
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch
        self.dev = torch.device("cuda" if ARGS.device == "gpu" else "cpu")
        import diffinterface as di

        self.backend = di.AutoTorch()
        self.f, self.r = functions(torch)

    def put(self, a):
        return self.torch.as_tensor(np.asarray(a), dtype=self.torch.float64, device=self.dev)

    def host(self, a):
        if a.layout != self.torch.strided:
            a = a.to_dense()
        return a.detach().cpu().numpy()

    def devices(self, a) -> set:
        leaves = a if isinstance(a, (tuple, list)) else (a,)
        return {"gpu" if leaf.device.type == "cuda" else leaf.device.type for leaf in leaves}

    def guarded(self, call):
        torch = self.torch
        if self.dev.type != "cuda":
            return call(), "n/a (cpu)"
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                out = call()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
        # the mode's own "prototype feature" notice is no synchronization
        syncs = [str(c.message).splitlines()[0] for c in caught if "synchronizing" in str(c.message).lower()
                 and "prototype" not in str(c.message).lower()]
        return out, ("none" if not syncs else f"{len(syncs)} sync(s): {syncs[0][:80]}")

    def sync(self, out):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()
        return out

    def reference(self, x, v, w):
        torch = self.torch
        from torch.func import grad, hessian, jacrev, jvp, vjp

        xc, vc, wc = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (x, v, w))
        return {
            "gradient": grad(self.f)(xc), "value": self.f(xc), "hvp": jvp(grad(self.f), (xc,), (vc,))[1],
            "hessian": hessian(self.f)(xc), "jacobian": jacrev(self.r)(xc),
            "jvp": jvp(self.r, (xc,), (vc,))[1], "vjp": vjp(self.r, xc)[1](wc)[0],
        }

    def native_timers(self, f, r):
        """As JaxSide.native_timers: torch.func, and graphs kept at x with retain_graph."""
        torch = self.torch
        from torch.func import grad, jvp, vjp

        def kept_grad(x):
            leaf = x.detach().requires_grad_(True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(f(leaf), leaf, create_graph=True)
            return leaf, g

        def double(x):
            leaf = x.detach().requires_grad_(True)
            with torch.enable_grad():
                y = r(leaf)
                u = torch.zeros_like(y, requires_grad=True)
                (gu,) = torch.autograd.grad(y, leaf, u, create_graph=True)
            return leaf, y, u, gu

        def back(out, inp, seed):
            return torch.autograd.grad(out, inp, seed, retain_graph=True)[0]

        hvp = {"func jvp of grad": (lambda x: x, lambda x, v: jvp(grad(f), (x,), (v,))[1]),
               "kept graph": (kept_grad, lambda s, v: back(s[1], s[0], v))}
        jac = {"func jvp, vjp": (lambda x: x, lambda x, v: jvp(r, (x,), (v,))[1], lambda x, w: vjp(r, x)[1](w)[0]),
               "double backward": (double, lambda s, v: back(s[3], s[2], v), lambda s, w: back(s[1], s[0], w))}
        return hvp, jac


# ----------------------------------------------------------------- checks
def checks(side):
    import diffinterface as di

    rng = np.random.default_rng(0)
    xn, x2n = rng.uniform(-1, 1, N_CHECK), rng.uniform(-1, 1, N_CHECK)
    vn, wn = rng.standard_normal(N_CHECK), rng.standard_normal(N_CHECK - 1)
    Vn, Wn = rng.standard_normal((N_CHECK, K)), rng.standard_normal((N_CHECK - 1, K))
    x, x2, v, w, V, W = (side.put(a) for a in (xn, x2n, vn, wn, Vn, Wn))
    ref = {k: side.host(a) for k, a in side.reference(xn, vn, wn).items()}
    ref2 = {k: side.host(a) for k, a in side.reference(x2n, vn, wn).items()}
    f, r, b = side.f, side.r, side.backend
    sparse = di.AutoSparse(b)
    H = di.hessian_operator(f, b, x)
    J = di.jacobian_operator(r, b, x)
    G = di.gauss_newton_operator(r, b, x)
    jac_dense, hess2 = ref["jacobian"], ref2["hessian"]
    preps: dict = {}

    def prep(key, make):  # prepared at the first (unguarded) call, inside the row's try
        if key not in preps:
            preps[key] = make()
        return preps[key]

    cases = [
        ("gradient (prepared)", lambda: di.gradient(f, b, x, prep=prep("gradient", lambda: di.prepare_gradient(f, b, x))), ref["gradient"]),
        ("value_and_gradient", lambda: di.value_and_gradient(f, b, x, prep=prep("gradient", lambda: di.prepare_gradient(f, b, x)))[1], ref["gradient"]),
        ("hvp (prepared)", lambda: di.hvp(f, b, x, v, prep=prep("hvp", lambda: di.prepare_hvp(f, b, x, v))), ref["hvp"]),
        ("hessian (prepared)", lambda: di.hessian(f, b, x, prep=prep("hessian", lambda: di.prepare_hessian(f, b, x))), ref["hessian"]),
        ("jacobian (prepared)", lambda: di.jacobian(r, b, x, prep=prep("jacobian", lambda: di.prepare_jacobian(r, b, x))), ref["jacobian"]),
        ("pushforward (prepared)", lambda: di.pushforward(r, b, x, v, prep=prep("pushforward", lambda: di.prepare_pushforward(r, b, x, v))), ref["jvp"]),
        ("pullback (prepared)", lambda: di.pullback(r, b, x, w, prep=prep("pullback", lambda: di.prepare_pullback(r, b, x, w))), ref["vjp"]),
        ("H.update(x2) @ v", lambda: H.update(x2) @ v, ref2["hessian"] @ vn),
        ("H @ V (k=8)", lambda: H.update(x2) @ V, hess2 @ Vn),
        ("H.gradient", lambda: H.update(x).gradient, ref["gradient"]),
        ("J @ v", lambda: J.update(x) @ v, ref["jvp"]),
        ("J.T @ w", lambda: J.update(x).T @ w, ref["vjp"]),
        ("J @ V (k=8)", lambda: J.update(x) @ V, jac_dense @ Vn),
        ("J.T @ W (k=8)", lambda: J.update(x).T @ W, jac_dense.T @ Wn),
        ("G @ v", lambda: G.update(x) @ v, jac_dense.T @ (jac_dense @ vn)),
        ("AutoSparse jacobian", lambda: di.jacobian(r, sparse, x, prep=prep("sparse jacobian", lambda: di.prepare_jacobian(r, sparse, x))), ref["jacobian"]),
        ("AutoSparse hessian", lambda: di.hessian(f, sparse, x, prep=prep("sparse hessian", lambda: di.prepare_hessian(f, sparse, x))), ref["hessian"]),
    ]
    log(f"\n### {side.name}: x on {side.devices(x)}, n = {N_CHECK}\n")
    log("| call | result on | implicit transfers / syncs (guarded call) | max rel. error vs native on CPU | ok |")
    log("|---|---|---|---|---|")
    failures = 0
    for label, call, expected in cases:
        try:
            side.sync(call())  # compile, prepare, measure strategies
            side.sync(call())
            out, transfers = side.guarded(call)
            where = side.devices(out if not hasattr(out, "indices") else out.data)
            error = rel_err(side.host(out), expected)
            ok = error < 1e-10 and where == {ARGS.device} and transfers in ("none", "n/a (cpu)")
        except Exception as exc:  # noqa: BLE001 - report every failure, keep checking
            where, transfers, error, ok = "-", f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}", float("nan"), False
            traceback.print_exc()
        failures += not ok
        log(f"| {label} | {where} | {transfers} | {error:.1e} | {'yes' if ok else 'NO'} |")
    return failures


# ----------------------------------------------------------------- timing
def interleaved(fns: dict, rounds: int) -> dict:
    samples = {k: [] for k in fns}
    names = list(fns)
    for fn in fns.values():
        for _ in range(3):
            fn()
    reps = {k: max(1, int(0.05 / max(_time_once(fn), 1e-6))) for k, fn in fns.items()}
    for i in range(rounds):
        for k in (names if i % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            for _ in range(reps[k]):
                fns[k]()
            samples[k].append((time.perf_counter() - start) / reps[k])
    return samples


def _time_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timing(side):
    import diffinterface as di

    if side.name == "jax":
        xp = side.jnp
    else:
        xp = side.torch
    f, r = functions(xp)
    rng = np.random.default_rng(1)
    n = ARGS.n_time
    xs = [side.put(rng.uniform(-1, 1, n)) for _ in range(3)]
    v, w = side.put(rng.standard_normal(n)), side.put(rng.standard_normal(n - 1))
    native_hvp, native_jac = side.native_timers(f, r)
    H = di.hessian_operator(f, side.backend, xs[0])
    J = di.jacobian_operator(r, side.backend, xs[0])
    state = {"i": 0}

    def nxt():
        state["i"] = (state["i"] + 1) % 3
        return xs[state["i"]]

    def di_h():
        H.update(nxt())
        for _ in range(10):
            out = H @ v
        return side.sync(out)

    def di_j():
        J.update(nxt())
        for _ in range(10):
            a, c = J @ v, J.T @ w
        return side.sync((a, c))

    def h_work(setup, hvp):
        def run():
            s = setup(nxt())
            for _ in range(10):
                out = hvp(s, v)
            return side.sync(out)
        return run

    def j_work(setup, jvp, vjp):
        def run():
            s = setup(nxt())
            for _ in range(10):
                a, c = jvp(s, v), vjp(s, w)
            return side.sync((a, c))
        return run

    for label, di_fn, natives, op in (
            ("update + 10 x H@v", di_h, {k: h_work(*p) for k, p in native_hvp.items()}, H),
            ("update + 10 x (J@v, J.T@w)", di_j, {k: j_work(*p) for k, p in native_jac.items()}, J)):
        s = interleaved({"di": di_fn, **natives}, ARGS.rounds)
        if ARGS.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(lambda: [di_fn() for _ in range(50)])
            pstats.Stats(profiler).sort_stats("tottime").print_stats(14)
        # the fastest native is chosen on the first half of the rounds and compared on the
        # second (choosing on the rounds it is compared on favours the natives)
        half = len(s["di"]) // 2
        best = min(natives, key=lambda k: statistics.median(s[k][:half]))
        held = {k: x[half:] for k, x in s.items()}
        med = {k: statistics.median(x) for k, x in held.items()}
        ratio = statistics.median(a / c for a, c in zip(held["di"], held[best]))
        log(f"| {side.name} | {label} | {med['di'] * 1e3:.3f} | {best} | {med[best] * 1e3:.3f} | {ratio:.2f} | "
            f"{op.strategy} |")


def main():
    import platform

    log(f"# Device check ({time.strftime('%Y-%m-%d %H:%M')})\n")
    log(f"Command: `python benchmarks/device_check.py{' --device cpu' if ARGS.device == 'cpu' else ''}`; "
        f"Python {platform.python_version()}, numpy {np.__version__}.")
    sides, failures = [], 0
    for name in ARGS.engines.split(","):
        try:
            side = JaxSide() if name == "jax" else TorchSide()
            if name == "jax":
                log(f"jax {side.jax.__version__}: devices {side.jax.devices()}")
            else:
                import torch

                log(f"torch {torch.__version__}: cuda {torch.cuda.is_available()}"
                    + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
            sides.append(side)
        except Exception as exc:  # noqa: BLE001
            log(f"{name}: not available ({type(exc).__name__}: {exc})")
            failures += 1
    for side in sides:
        failures += checks(side)
    if not ARGS.no_timing:
        log(f"\n### Timing at n = {ARGS.n_time:,} (native chosen on the first {ARGS.rounds // 2} of {ARGS.rounds} "
            "alternating rounds, medians of the rest, ms)\n")
        log("| engine | workload | di ms | fastest native | native ms | di / native | di strategy |")
        log("|---|---|---|---|---|---|---|")
        for side in sides:
            try:
                timing(side)
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                log(f"| {side.name} | timing failed: {type(exc).__name__}: {str(exc)[:100]} | | | | |")
    log(f"\n{failures} check(s) failed.")
    out = os.environ.get("OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "device.md"), "w") as fh:
            fh.write("\n".join(LINES) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Jacobian-operator strategies: what each engine caches at one x so that
many JVPs (``J @ v``) and VJPs (``J.T @ w``) are cheap (see
``diffinterface.jacobian_operators``).

A strategy has ``name``, ``modes`` (the ways it can evaluate a block; the
operator times them at the first block of each kind and size) and

* ``setup(x, ctx) -> state``: the eager work done once per point;
* ``prepare(state, kind)``: the work only products of ``kind`` ("jvp" or
  "vjp") need, done on the first such product (idempotent; the operator calls
  it explicitly only to time it): torch's kept forward graph and autograd's
  forward trace serve VJPs only, so a workload of JVPs never builds them;
* ``value(state)``: ``f(x)`` (from the set-up where it has it, else computed
  on demand: a JAX set-up does not return f(x), which costs a second output
  buffer and, with XLA's fusion, often a second evaluation of f);
* ``jvp(state, t, batched, mode)`` / ``vjp(state, w, batched, mode)``: one
  product (``batched=False``), or a block: ``batched=True`` with seeds and
  results of shape ``(k,) + shape`` (contiguous), or for strategies with
  ``columns = True`` (JAX) ``batched="columns"``: seeds and results ``(size,
  k)``, the layout change done inside the jitted call; ``mode`` one of
  ``modes`` (None: the first);
* ``gauss_newton(state, t, batched, mode)``: ``Jᵀ(J t)``, fused where that
  saves a dispatch or a pass;
* optionally ``dense(state)``: the Jacobian, shape ``y.shape + x.shape``.

Block modes: ``"vmap"`` (the engine's vectorizing map: ``jax.vmap``,
``torch.func.vmap`` / ``is_grads_batched``), ``"map"`` (JAX: ``lax.map``, a
loop of single products inside one compiled call), ``"loop"`` (a Python loop
of single products).  Which is fastest depends on f, by 2-3x either way: a
vmapped ``roll`` or ``concatenate`` makes XLA and torch move the batch axis
with transposes, an elementwise stencil is faster one column at a time, while
a dense layer is faster as one matrix-matrix product.

Per engine (every engine module is imported lazily, inside the builders):

* JAX: ``linearize`` (``jax.linearize`` and ``jax.linear_transpose`` built
  inside ``jax.jit`` at each x; the returned ``Partial`` objects are applied by
  jitted functions that take them as arguments, so a new x never recompiles;
  each product is one linear sweep) and ``recompute`` (jitted ``jax.jvp`` /
  ``jax.vjp`` per product, no set-up; ``G @ v`` one jitted jvp-then-vjp
  sharing the primal computation).
* torch: ``kept_graph`` (the forward graph kept at x, built at the first VJP,
  or by the first JVP when it comes first and the workload has VJPs: forward-mode
  dual numbers through f with x requiring grad give the JVP and the graph in one
  pass; each VJP is one backward with ``retain_graph=True``; JVPs by
  ``torch.func.jvp``), ``double_backward`` (also keeps ``u -> Jᵀu`` with
  ``create_graph=True``; each JVP is then one backward through that graph) and
  ``recompute`` (``torch.func.jvp`` / ``torch.func.vjp`` per product, nothing
  kept; its vmapped pullback wins VJP blocks through dense layers).
* autograd: ``make_vjp`` (the kept trace, built at the first VJP: VJPs are one
  reverse pass; JVPs by ``make_jvp``) and ``vjp_of_vjp`` (``make_vjp`` of the
  linear map ``u -> Jᵀu``: each JVP is one reverse pass through the kept
  backward trace).
* finite differences: ``differences`` (a JVP is one or two evaluations of f;
  VJPs need the Jacobian, built once per point on the first VJP).
* any other engine: ``recompute`` from the engine's batched pushforward and
  pullback primitives.

The operator measures the strategies of an engine once and picks, per point,
the one cheapest for the products taken there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from diffinterface._arrays import cast_tensor
from diffinterface.backends._engine import Example

__all__ = ["jacobian_strategies", "k_leading"]


def _jax_x64(fn, ex):
    from diffinterface.backends._jax import needs_x64, with_x64

    return with_x64(fn) if needs_x64(ex.x_dtype) else fn


def k_leading(a: Any, k: int, inner: tuple, workspace: dict | None = None) -> Any:
    """A ``(size, k)`` block as a C-contiguous ``(k,) + inner`` array (torch or NumPy).

    A view where the block is already k-leading in memory (``Wk.T``); else one
    transposing copy, blocked over rows for NumPy (whose plain transposing copy
    of a tall ``(size, k)`` array is 3-4x slower than a blocked one), into a
    buffer kept in ``workspace`` (the operator's own, reused at every block of
    that shape: a fresh multi-megabyte array per block costs page faults, which
    on some machines cost more than the copy).  Products on strided seeds cost
    2-3x more than the copy: every operation of the graph that reads a seed
    reads it strided."""
    torch_like = hasattr(a, "movedim")
    view = a.T if torch_like else np.asarray(a).T
    if view.is_contiguous() if torch_like else view.flags.c_contiguous:
        return view.reshape((k,) + tuple(inner))
    key = (tuple(view.shape), str(view.dtype), str(getattr(view, "device", "")))
    out = None if workspace is None else workspace.get(key)
    if out is None:
        if torch_like:
            import torch

            out = torch.empty(view.shape, dtype=view.dtype, device=view.device)
        else:
            out = np.empty(view.shape, dtype=view.dtype)
        if workspace is not None:
            workspace[key] = out
    rows = view.shape[1]
    if torch_like:
        out.copy_(view)
    elif rows * k <= 1 << 16:
        out[...] = view
    else:
        step = 256
        for start in range(0, rows, step):
            out[:, start:start + step] = view[:, start:start + step]
    return out.reshape((k,) + tuple(inner))


def _loop(one, seeds):
    """``one`` applied to each seed of a k-leading block, the results written into one
    fresh ``(k,) + shape`` array as they come (no list of k results, then a copy)."""
    first = one(seeds[0])
    if hasattr(first, "detach"):  # torch
        import torch

        out = torch.empty((len(seeds),) + tuple(first.shape), dtype=first.dtype, device=first.device)
    else:
        first = np.asarray(first)
        out = np.empty((len(seeds),) + first.shape, dtype=first.dtype)
    out[0] = first
    for j in range(1, len(seeds)):
        out[j] = one(seeds[j])
    return out


class Strategy:
    """Defaults shared by the strategies."""

    name = "?"
    #: True: blocks may be passed as ``(size, k)`` columns with ``batched="columns"``
    #: (results ``(size, k)``), the layout change done inside the engine's compiled call
    columns = False
    #: block modes, the default first
    modes: tuple = ("loop",)
    #: {"jvp" | "vjp": name of another strategy whose products of that kind run the
    #: same code at the same cost}: the operator times them once, as the twin's, in
    #: the twin's block modes, so timing noise never decides between equal products
    same_products: dict = {}
    #: True: after ``fuse(state)`` the first single JVP at the point, if no VJP came
    #: before it, also does the VJP preparation, in the same pass over f
    fuses_first_jvp = False

    def prepare(self, state, kind):
        return None

    def fuse(self, state):
        """Have the first JVP at this point do the VJP preparation too (see
        ``fuses_first_jvp``); the operator asks where the workload takes both kinds."""
        return None

    def gauss_newton(self, state, t, batched, mode=None):
        return self.vjp(state, self.jvp(state, t, batched, mode), batched, mode)

    def dense(self, state):
        return None


# --------------------------------------------------------------------- JAX
def _jax_apply(one, seeds, batched, mode, in_shape, out_shape):
    """``one`` on a seed, or mapped over a block (inside jit): ``batched`` "columns"
    ((size, k) in and out), True (k-leading) or False; ``mode`` "vmap" or "map"."""
    import jax
    import jax.numpy as jnp

    if not batched:
        return one(seeds)
    if batched != "columns":
        return jax.lax.map(one, seeds) if mode == "map" else jax.vmap(one)(seeds)
    k = seeds.shape[-1]
    cols = seeds.reshape(tuple(in_shape) + (k,))  # splits the leading axis: free
    if mode == "map":  # a loop of single products over contiguous rows
        out = jnp.moveaxis(jax.lax.map(one, jnp.moveaxis(cols, -1, 0)), 0, -1)
    else:
        out = jax.vmap(one, in_axes=-1, out_axes=-1)(cols)
    return out.reshape((int(np.prod(out_shape)), k))


class JaxLinearize(Strategy):
    name = "linearize"
    columns = True  # blocks arrive as (size, k) columns: the layout change happens inside jit
    modes = ("vmap", "map")

    def __init__(self, f, ex):
        import jax
        import jax.numpy as jnp

        from diffinterface.backends._jax import _bind

        def setup(x, *ctx):
            x = jnp.asarray(x)
            lin = jax.linearize(_bind(f, ctx), x)[1]
            return lin, jax.linear_transpose(lin, x)

        xd, yd = ex.x_dtype, ex.y_dtype  # seeds are cast inside jit (under x64 where needed)
        xs, ys = ex.x_shape, ex.y_shape

        def jvp(lin, t, batched, mode):
            return _jax_apply(lin, jnp.asarray(t, dtype=xd), batched, mode, xs, ys)

        def vjp(lt, w, batched, mode):
            return _jax_apply(lambda c: lt(c)[0], jnp.asarray(w, dtype=yd), batched, mode, ys, xs)

        def gn(lin, lt, t, batched, mode):
            return _jax_apply(lambda s: lt(lin(s))[0], jnp.asarray(t, dtype=xd), batched, mode, xs, xs)

        self._setup = _jax_x64(jax.jit(setup), ex)
        self._value = _jax_x64(jax.jit(lambda x, *ctx: f(jnp.asarray(x), *ctx)), ex)
        self._jvp = _jax_x64(jax.jit(jvp, static_argnums=(2, 3)), ex)
        self._vjp = _jax_x64(jax.jit(vjp, static_argnums=(2, 3)), ex)
        self._gn = _jax_x64(jax.jit(gn, static_argnums=(3, 4)), ex)

    def setup(self, x, ctx):
        lin, lt = self._setup(x, *ctx)
        return {"x": x, "ctx": ctx, "lin": lin, "lt": lt}

    def value(self, state):
        if "y" not in state:
            state["y"] = self._value(state["x"], *state["ctx"])
        return state["y"]

    def jvp(self, state, t, batched, mode=None):
        return self._jvp(state["lin"], t, batched, mode or "vmap")

    def vjp(self, state, w, batched, mode=None):
        return self._vjp(state["lt"], w, batched, mode or "vmap")

    def gauss_newton(self, state, t, batched, mode=None):
        return self._gn(state["lin"], state["lt"], t, batched, mode or "vmap")


class JaxRecompute(Strategy):
    name = "recompute"
    columns = True
    modes = ("vmap", "map")

    def __init__(self, f, ex):
        import jax
        import jax.numpy as jnp

        from diffinterface.backends._jax import _bind

        xd, yd = ex.x_dtype, ex.y_dtype
        xs, ys = ex.x_shape, ex.y_shape

        # the primal computations are outside the mapped function: vmap leaves them
        # unbatched and lax.map's body does not repeat them
        def jvp(x, t, batched, mode, *ctx):
            g, x, t = _bind(f, ctx), jnp.asarray(x), jnp.asarray(t, dtype=xd)
            if not batched:
                return jax.jvp(g, (x,), (t,))[1]
            lin = jax.linearize(g, x)[1]
            return _jax_apply(lin, t, batched, mode, xs, ys)

        def vjp(x, w, batched, mode, *ctx):
            pull = jax.vjp(_bind(f, ctx), jnp.asarray(x))[1]
            return _jax_apply(lambda c: pull(c)[0], jnp.asarray(w, dtype=yd), batched, mode, ys, xs)

        def gn(x, t, batched, mode, *ctx):
            g, x = _bind(f, ctx), jnp.asarray(x)
            pull = jax.vjp(g, x)[1]
            if not batched:  # jvp then vjp in one program: XLA shares their primal work
                return pull(jax.jvp(g, (x,), (jnp.asarray(t, dtype=xd),))[1])[0]
            lin = jax.linearize(g, x)[1]
            return _jax_apply(lambda s: pull(lin(s))[0], jnp.asarray(t, dtype=xd), batched, mode, xs, xs)

        self._value = _jax_x64(jax.jit(lambda x, *ctx: f(jnp.asarray(x), *ctx)), ex)
        self._jvp = _jax_x64(jax.jit(jvp, static_argnums=(2, 3)), ex)
        self._vjp = _jax_x64(jax.jit(vjp, static_argnums=(2, 3)), ex)
        self._gn = _jax_x64(jax.jit(gn, static_argnums=(2, 3)), ex)
        self._stage = _jax_x64(jax.device_put, ex)

    def setup(self, x, ctx):
        if isinstance(x, np.ndarray):  # staged once per point, not copied at every product
            x = self._stage(x)
        return {"x": x, "ctx": ctx}

    def value(self, state):
        if "y" not in state:
            state["y"] = self._value(state["x"], *state["ctx"])
        return state["y"]

    def jvp(self, state, t, batched, mode=None):
        return self._jvp(state["x"], t, batched, mode or "vmap", *state["ctx"])

    def vjp(self, state, w, batched, mode=None):
        return self._vjp(state["x"], w, batched, mode or "vmap", *state["ctx"])

    def gauss_newton(self, state, t, batched, mode=None):
        return self._gn(state["x"], t, batched, mode or "vmap", *state["ctx"])


# --------------------------------------------------------------------- torch
class TorchKeptGraph(Strategy):
    name = "kept_graph"
    modes = ("loop", "vmap")
    # a first JVP before any VJP runs f once with forward-mode dual numbers and x
    # requiring grad: the JVP and the kept forward graph in one pass (one JVP then one
    # VJP cost 0.75x double_backward's, the fastest native, for a torch MLP, 0.91x for
    # a stencil)
    fuses_first_jvp = True

    def __init__(self, f, ex):
        self.f = f

    def setup(self, x, ctx):
        return {"x": x.detach(), "ctx": ctx}

    def prepare(self, state, kind):
        """The forward graph at x (VJPs and the value need it; JVPs do not)."""
        if kind == "vjp" and "y" not in state:
            self._keep_forward(state)

    def _keep_forward(self, state, t=None):
        """Run f at x requiring grad and keep its graph (state's leaf, y, value); with a
        tangent ``t``, through forward-mode dual numbers, returning J t from the same pass."""
        import torch
        import torch.autograd.forward_ad as forward_ad

        leaf = state["x"].detach().requires_grad_(True)
        with torch.enable_grad():
            if t is None:
                y, tangent = self.f(leaf, *state["ctx"]), None
            else:
                with forward_ad.dual_level():
                    dual = self.f(forward_ad.make_dual(leaf, cast_tensor(t, leaf.dtype)), *state["ctx"])
                    y, tangent = forward_ad.unpack_dual(dual)
        state["leaf"], state["y"], state["value"] = leaf, y, y.detach()
        if t is not None:
            return torch.zeros_like(state["value"]) if tangent is None else tangent.detach()

    def value(self, state):
        if "value" not in state:
            self.prepare(state, "vjp")
        return state["value"]

    def fuse(self, state):
        state["fuse"] = True

    def jvp(self, state, t, batched, mode=None):
        from torch.func import jvp, vmap

        if not batched and state.pop("fuse", False) and "y" not in state:
            try:
                return self._keep_forward(state, t)
            except RuntimeError:  # an operation without a forward-mode formula: never again
                self.fuses_first_jvp = False
        x, ctx = state["x"], state["ctx"]
        g = lambda z: self.f(z, *ctx)  # noqa: E731
        t = cast_tensor(t, x.dtype)
        if not batched:
            return jvp(g, (x,), (t,))[1]
        one = lambda s: jvp(g, (x,), (s,))[1]  # noqa: E731
        return _vmap_or_loop(self, "_jvp_vmap", one, t, vmap(one) if mode == "vmap" else None)

    def vjp(self, state, w, batched, mode=None):
        import torch

        if "y" not in state:
            self.prepare(state, "vjp")
        y, leaf = state["y"], state["leaf"]
        if not batched and y.requires_grad:  # the common case first: one backward
            return torch.autograd.grad(y, leaf, cast_tensor(w, y.dtype), retain_graph=True)[0]
        if not y.requires_grad:  # f does not depend on x
            shape = (w.shape[0],) + tuple(leaf.shape) if batched else leaf.shape
            return torch.zeros(shape, dtype=leaf.dtype, device=leaf.device)
        return _grad_through(self, y, leaf, cast_tensor(w, y.dtype), batched, mode)


class TorchDoubleBackward(TorchKeptGraph):
    name = "double_backward"
    same_products = {"vjp": "kept_graph"}  # a backward through the same kept forward graph
    fuses_first_jvp = False  # its set-up builds the graph

    def setup(self, x, ctx):
        import torch

        state = super().setup(x, ctx)
        self.prepare(state, "vjp")
        y, leaf = state["y"], state["leaf"]
        if y.requires_grad:
            with torch.enable_grad():
                u = torch.zeros_like(y, requires_grad=True)
                (gu,) = torch.autograd.grad(y, leaf, u, create_graph=True)
            state["u"], state["gu"] = u, gu
        return state

    def jvp(self, state, t, batched, mode=None):
        import torch

        gu = state.get("gu")
        if not batched and gu is not None and gu.requires_grad:  # the common case first: one backward
            return torch.autograd.grad(gu, state["u"], cast_tensor(t, gu.dtype), retain_graph=True)[0]
        if gu is None or not gu.requires_grad:
            y = state["value"]
            shape = (t.shape[0],) + tuple(y.shape) if batched else y.shape
            return torch.zeros(shape, dtype=y.dtype, device=y.device)
        return _grad_through(self, state["gu"], state["u"], cast_tensor(t, state["gu"].dtype), batched, mode)


class TorchRecompute(TorchKeptGraph):
    """``torch.func.jvp`` / ``torch.func.vjp`` per product, nothing kept at x (the
    forward is recomputed by each product); a VJP block is one ``torch.func.vjp``
    whose pullback is vmapped (a loop where vmap fails on f): functorch's batching
    rules turn a dense layer's k backward passes into matrix-matrix products, where
    the kept graph's ``is_grads_batched`` falls back to slower rules."""

    name = "recompute"
    same_products = {"jvp": "kept_graph"}  # torch.func.jvp at x
    fuses_first_jvp = False  # keeps nothing
    # a loop of pullbacks runs kept_graph's backward passes (plus functorch's wrapping):
    # only the vmapped pullback is worth timing (vmap failing on f falls back to the loop)
    modes = ("vmap",)

    def prepare(self, state, kind):
        return None

    def value(self, state):
        if "value" not in state:
            import torch

            with torch.no_grad():
                state["value"] = self.f(state["x"], *state["ctx"])
        return state["value"]

    def vjp(self, state, w, batched, mode=None):
        from torch.func import vjp, vmap

        x, ctx = state["x"], state["ctx"]
        y, pullback = vjp(lambda z: self.f(z, *ctx), x)
        state.setdefault("value", y.detach())
        w = cast_tensor(w, y.dtype)
        if not batched:
            return pullback(w)[0]
        return _vmap_or_loop(self, "_vjp_vmap", lambda s: pullback(s)[0], w,
                             (lambda seeds: vmap(pullback)(seeds)[0]) if mode == "vmap" else None)


def _vmap_or_loop(owner, flag, one, seeds, vectorized):
    """``vectorized(seeds)`` (a ``torch.func.vmap``; None: not asked for) while
    ``owner.<flag>`` holds, else ``one`` per seed of the k-leading block; the first
    vmap failure on f (an error naming vmap or functorch) turns the flag off."""
    if vectorized is not None and getattr(owner, flag, True):
        try:
            return vectorized(seeds)
        except RuntimeError as error:
            if "vmap" not in str(error) and "functorch" not in str(error):
                raise
            setattr(owner, flag, False)
    return _loop(one, seeds)


def _grad_through(owner, out, inp, seeds, batched, mode):
    """Backward of ``out`` w.r.t. ``inp`` along ``seeds`` through the kept graph: one
    seed, or a block by ``is_grads_batched`` (mode "vmap": vmap over the backward) or a
    loop of single backward passes (mode "loop", or where vmap fails)."""
    import torch

    if not batched:
        return torch.autograd.grad(out, inp, seeds, retain_graph=True)[0]
    if mode == "vmap" and getattr(owner, "_grad_vmap", True):
        try:
            return torch.autograd.grad(out, inp, seeds, retain_graph=True, is_grads_batched=True)[0]
        except RuntimeError:
            owner._grad_vmap = False
    return _loop(lambda s: torch.autograd.grad(out, inp, s, retain_graph=True)[0], seeds)


# --------------------------------------------------------------------- autograd
class AutogradMakeVjp(Strategy):
    name = "make_vjp"

    def __init__(self, f, ex):
        self.f = f

    def setup(self, x, ctx):
        return {"x": x, "ctx": ctx}

    def prepare(self, state, kind):
        """The forward trace at x (VJPs and the value need it; JVPs retrace with make_jvp)."""
        if kind == "vjp" and "pull" not in state:
            from autograd import make_vjp

            state["pull"], state["y"] = make_vjp(lambda z: self.f(z, *state["ctx"]))(state["x"])

    def value(self, state):
        self.prepare(state, "vjp")
        return state["y"]

    def jvp(self, state, t, batched, mode=None):
        from autograd import make_jvp

        push = state.get("push")
        if push is None:
            push = state["push"] = make_jvp(lambda z: self.f(z, *state["ctx"]))(state["x"])
        dtype = np.result_type(state["x"])
        if batched:
            return _loop(lambda s: push(np.asarray(s, dtype=dtype))[1], t)
        return push(np.asarray(t, dtype=dtype))[1]

    def vjp(self, state, w, batched, mode=None):
        self.prepare(state, "vjp")
        pull = state["pull"]
        if batched:
            return _loop(pull, w)
        return pull(w)


class AutogradVjpOfVjp(AutogradMakeVjp):
    name = "vjp_of_vjp"
    same_products = {"vjp": "make_vjp"}  # the same kept forward trace

    def setup(self, x, ctx):
        from autograd import make_vjp

        state = super().setup(x, ctx)
        self.prepare(state, "vjp")
        y = np.asarray(state["y"])
        push, _ = make_vjp(state["pull"])(np.zeros_like(y))
        state["push_linear"] = push
        return state

    def jvp(self, state, t, batched, mode=None):
        push, shape = state["push_linear"], np.shape(state["y"])
        if batched:
            return _loop(lambda s: _autograd_zero_safe(push(s), shape), t)
        return _autograd_zero_safe(push(t), shape)


def _autograd_zero_safe(result, shape):
    result = np.asarray(result)
    return result if result.shape == tuple(shape) else np.zeros(shape) + result


# --------------------------------------------------------------------- finite differences
class FiniteDifferences(Strategy):
    name = "differences"

    def __init__(self, engine, f, ex):
        self.engine, self.f = engine, f
        self._jacobian = engine.build_value_and_jacobian(f, ex, True)
        self._x_shape = ex.x_shape

    def setup(self, x, ctx):
        return {"x": x, "ctx": ctx, "y": np.asarray(self.f(x, *ctx))}

    def value(self, state):
        return state["y"]

    def _one_jvp(self, state, t):
        x = state["x"]
        t = np.asarray(t, dtype=np.result_type(x))
        size = float(np.max(np.abs(t))) if t.size else 0.0
        if size == 0.0:
            return np.zeros_like(state["y"])
        scale = max(1.0, float(np.max(np.abs(x)))) if np.size(x) else 1.0
        g = lambda z: self.f(z, *state["ctx"])  # noqa: E731
        return self.engine._difference(g, x, state["y"], t, self.engine.rel_step * scale / size)

    def jvp(self, state, t, batched, mode=None):
        if batched:
            return _loop(lambda s: self._one_jvp(state, s), t)
        return self._one_jvp(state, t)

    def dense(self, state):
        if "jac" not in state:
            _, jac = self._jacobian(state["x"], *state["ctx"])
            state["jac"] = np.asarray(jac).reshape(np.size(state["y"]), -1)
        return state["jac"].reshape(np.shape(state["y"]) + self._x_shape)

    def vjp(self, state, w, batched, mode=None):
        self.dense(state)
        jac = state["jac"]
        if batched:
            return (np.reshape(w, (len(w), -1)) @ jac).reshape((len(w),) + self._x_shape)
        return (np.reshape(w, -1) @ jac).reshape(self._x_shape)


# --------------------------------------------------------------------- generic
class PrimitiveRecompute(Strategy):
    """Any engine: its batched pushforward/pullback primitives, per product."""

    name = "recompute"
    modes = ("vmap",)

    def __init__(self, engine, f, ex):
        self.engine, self.f, self.ex = engine, f, ex
        self._fns: dict = {}

    def _fn(self, kind, batch):
        fn = self._fns.get((kind, batch))
        if fn is None:
            ex = Example(self.ex.x_shape, self.ex.x_dtype, self.ex.y_shape, self.ex.y_dtype, batch)
            build = self.engine.build_value_and_pushforward if kind == "jvp" else self.engine.build_value_and_pullback
            fn = self._fns[(kind, batch)] = build(self.f, ex, True)
        return fn

    def setup(self, x, ctx):
        return {"x": x, "ctx": ctx}

    def value(self, state):
        if "y" not in state:
            state["y"] = self.f(state["x"], *state["ctx"])
        return state["y"]

    def _apply(self, kind, state, seeds, batched):
        batch = tuple(seeds[i] for i in range(seeds.shape[0])) if batched else (seeds,)
        y, out = self._fn(kind, len(batch))(state["x"], batch, *state["ctx"])
        state["y"] = y
        return self.engine.stack(list(out)) if batched else out[0]

    def jvp(self, state, t, batched, mode=None):
        return self._apply("jvp", state, t, batched)

    def vjp(self, state, w, batched, mode=None):
        return self._apply("vjp", state, w, batched)


def jacobian_strategies(engine: Any, f, ex: Example) -> list:
    """The strategies worth measuring for ``engine`` (first = default)."""
    module = type(engine).__module__
    if module.endswith("._jax"):
        return [JaxRecompute(f, ex), JaxLinearize(f, ex)]
    if module.endswith("._torch"):
        return [TorchKeptGraph(f, ex), TorchDoubleBackward(f, ex), TorchRecompute(f, ex)]
    if module.endswith("._autograd"):
        return [AutogradMakeVjp(f, ex), AutogradVjpOfVjp(f, ex)]
    if module.endswith("._finite_diff"):
        return [FiniteDifferences(engine, f, ex)]
    return [PrimitiveRecompute(engine, f, ex)]

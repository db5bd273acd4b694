"""Jacobian-operator strategies: what each engine caches at one x so that
many JVPs (``J @ v``) and VJPs (``J.T @ w``) are cheap (see
``diffinterface.jacobian_operators``).

A strategy has ``name`` and

* ``setup(x, ctx) -> state``: the work done once per point;
* ``value(state)``: ``f(x)`` (from the set-up where it has it);
* ``jvp(state, t, batched)`` / ``vjp(state, w, batched)``: one product, or a
  block (leading axis k) when ``batched``; strategies with ``columns = True``
  (JAX) also take ``batched="columns"``: seeds and results ``(size, k)``, the
  block mapped with ``vmap(in_axes=-1, out_axes=-1)`` inside the jitted call
  (no eager transpose before or after);
* ``gauss_newton(state, t, batched)``: ``Jᵀ(J t)``, fused where that saves a
  dispatch or a pass;
* optionally ``dense(state)``: the Jacobian, shape ``y.shape + x.shape``.

Per engine (every engine module is imported lazily, inside the builders):

* JAX: ``linearize`` (``jax.linearize`` and ``jax.linear_transpose`` built
  inside ``jax.jit`` at each x; the returned ``Partial`` objects are applied by
  jitted functions that take them as arguments, so a new x never recompiles;
  each product is one linear sweep) and ``recompute`` (jitted ``jax.jvp`` /
  ``jax.vjp`` per product, no set-up).
* torch: ``kept_graph`` (the forward graph kept at x: each VJP is one
  backward with ``retain_graph=True``; JVPs by ``torch.func.jvp``) and
  ``double_backward`` (also keeps ``u -> Jᵀu`` with ``create_graph=True``;
  each JVP is then one backward through that graph).
* autograd: ``make_vjp`` (the kept trace: VJPs are one reverse pass; JVPs by
  ``make_jvp``) and ``vjp_of_vjp`` (``make_vjp`` of the linear map ``u ->
  Jᵀu``: each JVP is one reverse pass through the kept backward trace).
* finite differences: ``differences`` (a JVP is one or two evaluations of f;
  VJPs need the Jacobian, built once per point on the first VJP).
* any other engine: ``recompute`` from the engine's batched pushforward and
  pullback primitives.

The operator measures the strategies of an engine once and picks, per point,
the one cheapest for the number of products taken there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from diffinterface.backends._engine import Example

__all__ = ["jacobian_strategies"]


def _jax_x64(fn, ex):
    from diffinterface.backends._jax import needs_x64, with_x64

    return with_x64(fn) if needs_x64(ex.x_dtype) else fn


class Strategy:
    """Defaults shared by the strategies."""

    name = "?"
    #: True: blocks may be passed as ``(size, k)`` columns with ``batched="columns"``
    #: (results ``(size, k)``), the layout change done inside the engine's compiled call
    columns = False

    def gauss_newton(self, state, t, batched):
        return self.vjp(state, self.jvp(state, t, batched), batched)

    def dense(self, state):
        return None


# --------------------------------------------------------------------- JAX
class JaxLinearize(Strategy):
    name = "linearize"
    columns = True  # blocks arrive as (size, k) columns: the layout change happens inside jit

    def __init__(self, f, ex):
        import jax
        import jax.numpy as jnp

        from diffinterface.backends._jax import _bind

        def setup(x, *ctx):
            x = jnp.asarray(x)
            y, lin = jax.linearize(_bind(f, ctx), x)
            return y, lin, jax.linear_transpose(lin, x)

        xd, yd = ex.x_dtype, ex.y_dtype  # seeds are cast inside jit (under x64 where needed)
        cols_in, cols_out = _jax_columns(ex)

        def jvp(lin, t, batched):
            t = jnp.asarray(t, dtype=xd)
            if batched == "columns":
                return cols_out(jax.vmap(lin, in_axes=-1, out_axes=-1)(cols_in(t, ex.x_shape)), ex.y_shape)
            return jax.vmap(lin)(t) if batched else lin(t)

        def vjp(lt, w, batched):
            w = jnp.asarray(w, dtype=yd)
            one = lambda c: lt(c)[0]  # noqa: E731
            if batched == "columns":
                return cols_out(jax.vmap(one, in_axes=-1, out_axes=-1)(cols_in(w, ex.y_shape)), ex.x_shape)
            return jax.vmap(one)(w) if batched else one(w)

        def gn(lin, lt, t, batched):
            one = lambda s: lt(lin(s))[0]  # noqa: E731
            t = jnp.asarray(t, dtype=xd)
            if batched == "columns":
                return cols_out(jax.vmap(one, in_axes=-1, out_axes=-1)(cols_in(t, ex.x_shape)), ex.x_shape)
            return jax.vmap(one)(t) if batched else one(t)

        self._setup = _jax_x64(jax.jit(setup), ex)
        self._jvp = _jax_x64(jax.jit(jvp, static_argnums=2), ex)
        self._vjp = _jax_x64(jax.jit(vjp, static_argnums=2), ex)
        self._gn = _jax_x64(jax.jit(gn, static_argnums=3), ex)

    def setup(self, x, ctx):
        y, lin, lt = self._setup(x, *ctx)
        return {"y": y, "lin": lin, "lt": lt}

    def value(self, state):
        return state["y"]

    def jvp(self, state, t, batched):
        return self._jvp(state["lin"], t, batched)

    def vjp(self, state, w, batched):
        return self._vjp(state["lt"], w, batched)

    def gauss_newton(self, state, t, batched):
        return self._gn(state["lin"], state["lt"], t, batched)


def _jax_columns(ex):
    """(seeds (size, k) -> shape + (k,), results shape + (k,) -> (size, k)): reshapes that
    only split or merge leading axes (free inside jit; no transpose is materialized)."""
    def cols_in(a, shape):
        return a.reshape(tuple(shape) + (a.shape[-1],))

    def cols_out(a, shape):
        return a.reshape((int(np.prod(shape)), a.shape[-1]))

    return cols_in, cols_out


class JaxRecompute(Strategy):
    name = "recompute"
    columns = True

    def __init__(self, f, ex):
        import jax
        import jax.numpy as jnp

        from diffinterface.backends._jax import _bind

        xd, yd = ex.x_dtype, ex.y_dtype
        cols_in, cols_out = _jax_columns(ex)

        def jvp(x, t, batched, *ctx):
            g, x, t = _bind(f, ctx), jnp.asarray(x), jnp.asarray(t, dtype=xd)
            if batched == "columns":
                y, out = jax.vmap(lambda s: jax.jvp(g, (x,), (s,)), in_axes=-1,
                                  out_axes=(None, -1))(cols_in(t, ex.x_shape))
                return y, cols_out(out, ex.y_shape)
            if batched:
                return jax.vmap(lambda s: jax.jvp(g, (x,), (s,)), out_axes=(None, 0))(t)
            return jax.jvp(g, (x,), (t,))

        def vjp(x, w, batched, *ctx):
            y, pull = jax.vjp(_bind(f, ctx), jnp.asarray(x))
            w = jnp.asarray(w, dtype=yd)
            if batched == "columns":
                out = jax.vmap(lambda c: pull(c)[0], in_axes=-1, out_axes=-1)(cols_in(w, ex.y_shape))
                return y, cols_out(out, ex.x_shape)
            return y, (jax.vmap(pull)(w)[0] if batched else pull(w)[0])

        def gn(x, t, batched, *ctx):
            x, t = jnp.asarray(x), jnp.asarray(t, dtype=xd)
            y, lin = jax.linearize(_bind(f, ctx), x)
            lt = jax.linear_transpose(lin, x)
            one = lambda s: lt(lin(s))[0]  # noqa: E731
            if batched == "columns":
                return y, cols_out(jax.vmap(one, in_axes=-1, out_axes=-1)(cols_in(t, ex.x_shape)), ex.x_shape)
            return y, (jax.vmap(one)(t) if batched else one(t))

        self._value = _jax_x64(jax.jit(lambda x, *ctx: f(jnp.asarray(x), *ctx)), ex)
        self._jvp = _jax_x64(jax.jit(jvp, static_argnums=2), ex)
        self._vjp = _jax_x64(jax.jit(vjp, static_argnums=2), ex)
        self._gn = _jax_x64(jax.jit(gn, static_argnums=2), ex)

    def setup(self, x, ctx):
        return {"x": x, "ctx": ctx}

    def value(self, state):
        if "y" not in state:
            state["y"] = self._value(state["x"], *state["ctx"])
        return state["y"]

    def jvp(self, state, t, batched):
        state["y"], out = self._jvp(state["x"], t, batched, *state["ctx"])
        return out

    def vjp(self, state, w, batched):
        state["y"], out = self._vjp(state["x"], w, batched, *state["ctx"])
        return out

    def gauss_newton(self, state, t, batched):
        state["y"], out = self._gn(state["x"], t, batched, *state["ctx"])
        return out


# --------------------------------------------------------------------- torch
class TorchKeptGraph(Strategy):
    name = "kept_graph"

    def __init__(self, f, ex):
        self.f = f

    def setup(self, x, ctx):
        import torch

        leaf = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y = self.f(leaf, *ctx)
        return {"leaf": leaf, "y": y, "ctx": ctx, "value": y.detach()}

    def value(self, state):
        return state["value"]

    def jvp(self, state, t, batched):
        import torch
        from torch.func import jvp, vmap

        x, ctx = state["leaf"].detach(), state["ctx"]
        g = lambda z: self.f(z, *ctx)  # noqa: E731
        t = t.to(x.dtype)
        if not batched:
            return jvp(g, (x,), (t,))[1]
        if state.get("vmap", True):
            try:
                return vmap(lambda s: jvp(g, (x,), (s,))[1])(t)
            except RuntimeError as error:
                if "vmap" not in str(error) and "functorch" not in str(error):
                    raise
                state["vmap"] = False
        return torch.stack([jvp(g, (x,), (s,))[1] for s in t])

    def vjp(self, state, w, batched):
        import torch

        y, leaf = state["y"], state["leaf"]
        if not y.requires_grad:  # f does not depend on x
            shape = (w.shape[0],) + tuple(leaf.shape) if batched else leaf.shape
            return torch.zeros(shape, dtype=leaf.dtype, device=leaf.device)
        return _grad_through(self, state, y, leaf, w.to(y.dtype), batched)


class TorchDoubleBackward(TorchKeptGraph):
    name = "double_backward"

    def setup(self, x, ctx):
        import torch

        state = super().setup(x, ctx)
        y, leaf = state["y"], state["leaf"]
        if y.requires_grad:
            with torch.enable_grad():
                u = torch.zeros_like(y, requires_grad=True)
                (gu,) = torch.autograd.grad(y, leaf, u, create_graph=True)
            state["u"], state["gu"] = u, gu
        return state

    def jvp(self, state, t, batched):
        import torch

        if "gu" not in state or not state["gu"].requires_grad:
            y = state["value"]
            shape = (t.shape[0],) + tuple(y.shape) if batched else y.shape
            return torch.zeros(shape, dtype=y.dtype, device=y.device)
        return _grad_through(self, state, state["gu"], state["u"], t.to(state["gu"].dtype), batched)


def _grad_through(owner, state, out, inp, seeds, batched):
    """Backward of ``out`` w.r.t. ``inp`` along ``seeds`` through the kept graph.  A block
    uses ``is_grads_batched`` (vmap over the backward) or a loop of single backward passes:
    whichever the first block measured faster (vmap wins for small dense layers, the loop
    for large elementwise graphs, by up to 3x either way), or the loop where vmap fails."""
    import time

    import torch

    if not batched:
        return torch.autograd.grad(out, inp, seeds, retain_graph=True)[0]

    def loop():
        return torch.stack([torch.autograd.grad(out, inp, s, retain_graph=True)[0] for s in seeds])

    def vectorized():
        return torch.autograd.grad(out, inp, seeds, retain_graph=True, is_grads_batched=True)[0]

    mode = getattr(owner, "block_mode", None)
    if mode == "loop":
        return loop()
    if mode == "vmap":
        return vectorized()
    try:
        start = time.perf_counter()
        result = vectorized()
        vmap_s = time.perf_counter() - start
    except RuntimeError:
        owner.block_mode = "loop"
        return loop()
    start = time.perf_counter()
    loop()
    owner.block_mode = "loop" if time.perf_counter() - start < vmap_s else "vmap"
    return result


# --------------------------------------------------------------------- autograd
class AutogradMakeVjp(Strategy):
    name = "make_vjp"

    def __init__(self, f, ex):
        self.f = f

    def setup(self, x, ctx):
        from autograd import make_vjp

        pull, y = make_vjp(lambda z: self.f(z, *ctx))(x)
        return {"x": x, "ctx": ctx, "pull": pull, "y": y}

    def value(self, state):
        return state["y"]

    def jvp(self, state, t, batched):
        from autograd import make_jvp

        push = state.get("push")
        if push is None:
            push = state["push"] = make_jvp(lambda z: self.f(z, *state["ctx"]))(state["x"])
        dtype = np.result_type(state["x"])
        if batched:
            return np.stack([push(np.asarray(s, dtype=dtype))[1] for s in t])
        return push(np.asarray(t, dtype=dtype))[1]

    def vjp(self, state, w, batched):
        pull = state["pull"]
        if batched:
            return np.stack([pull(c) for c in w])
        return pull(w)


class AutogradVjpOfVjp(AutogradMakeVjp):
    name = "vjp_of_vjp"

    def setup(self, x, ctx):
        from autograd import make_vjp

        state = super().setup(x, ctx)
        y = np.asarray(state["y"])
        push, _ = make_vjp(state["pull"])(np.zeros_like(y))
        state["push_linear"] = push
        return state

    def jvp(self, state, t, batched):
        push, x = state["push_linear"], state["x"]
        if batched:
            return np.stack([_autograd_zero_safe(push(s), np.shape(state["y"])) for s in t])
        return _autograd_zero_safe(push(t), np.shape(state["y"]))


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

    def jvp(self, state, t, batched):
        if batched:
            return np.stack([self._one_jvp(state, s) for s in t])
        return self._one_jvp(state, t)

    def dense(self, state):
        if "jac" not in state:
            _, jac = self._jacobian(state["x"], *state["ctx"])
            state["jac"] = np.asarray(jac).reshape(np.size(state["y"]), -1)
        return state["jac"].reshape(np.shape(state["y"]) + self._x_shape)

    def vjp(self, state, w, batched):
        self.dense(state)
        jac = state["jac"]
        if batched:
            return (np.reshape(w, (len(w), -1)) @ jac).reshape((len(w),) + self._x_shape)
        return (np.reshape(w, -1) @ jac).reshape(self._x_shape)


# --------------------------------------------------------------------- generic
class PrimitiveRecompute(Strategy):
    """Any engine: its batched pushforward/pullback primitives, per product."""

    name = "recompute"

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

    def jvp(self, state, t, batched):
        return self._apply("jvp", state, t, batched)

    def vjp(self, state, w, batched):
        return self._apply("vjp", state, w, batched)


def jacobian_strategies(engine: Any, f, ex: Example) -> list:
    """The strategies worth measuring for ``engine`` (first = default)."""
    module = type(engine).__module__
    if module.endswith("._jax"):
        return [JaxRecompute(f, ex), JaxLinearize(f, ex)]
    if module.endswith("._torch"):
        return [TorchKeptGraph(f, ex), TorchDoubleBackward(f, ex)]
    if module.endswith("._autograd"):
        return [AutogradMakeVjp(f, ex), AutogradVjpOfVjp(f, ex)]
    if module.endswith("._finite_diff"):
        return [FiniteDifferences(engine, f, ex)]
    return [PrimitiveRecompute(engine, f, ex)]

"""Hessian-operator strategies for JAX (see ``linear_operators``).

* ``jvp_of_grad``: every product is a jitted forward-over-reverse pass that
  returns only the product (XLA drops the rest of the gradient), with no
  set-up; ``f`` and ``∇f`` come from one jitted ``value_and_grad`` when asked;
* ``linearize``: ``jax.linearize`` of the gradient built inside ``jax.jit``
  at each new x; the returned ``Partial`` is applied by a second jitted
  function that takes it as an argument, so moving to a new x never
  recompiles.  Each product then costs only the linear (tangent) sweep.  Two
  set-ups: one that also returns ``f`` and ``∇f`` (for points where they are
  asked for, as in ``scipy_objective``) and one that returns the
  linearization alone (1.2-1.7x faster: two fewer outputs to write); the
  operator uses the first where the previous point asked for the gradient.

Which wins depends on the function and on how many products are taken at one
x; the operator measures both once and chooses per point.  Blocks ``H @ V``
are one jitted ``vmap`` over the columns of ``V`` (no transposes outside jit),
either jvp_of_grad's (no state at x: ``columns_at``) or the linearization's;
the operator times both, each in both ``COLUMN_MODES``, at the first block of
each size (vmapped, either can be 1.3-2x faster than the other, depending on
f).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from diffinterface.backends._jax import _bind, needs_x64, with_x64


def _maybe_x64(fn, ex):
    return with_x64(fn) if needs_x64(ex.x_dtype) else fn


#: how a block (n, k) is mapped inside the program: "rows" transposes it and maps over
#: contiguous rows, "axes" maps over its last axis in place; which is faster depends on f
#: (rows won for a stencil, axes by 1.4x for f1 at n = 1e5), so the operator measures both
COLUMN_MODES = ("rows", "axes")


def _columns(single, x_shape, mode):
    """Apply ``single`` (x-shaped tangent -> x-shaped product) to each column of an (n, k) block."""

    def block(V):
        if mode == "axes":
            k = V.shape[-1]
            out = jax.vmap(single, in_axes=-1, out_axes=-1)(V.reshape(tuple(x_shape) + (k,)))
            return out.reshape(V.shape)
        rows = jax.vmap(lambda v: single(v.reshape(x_shape)).reshape(-1))(V.T)
        return rows.T

    return block


class _LazyGradient:
    """``f`` and ``∇f`` from one jitted ``value_and_grad`` pass, at the first ask per
    point, for states built without them (``self._value_and_grad`` set by the subclass)."""

    def value_and_gradient(self, state):
        if "gradient" not in state:
            state["value"], state["gradient"] = self._value_and_grad(state["x"], *state["ctx"])
        return state["value"], state["gradient"]


def _jitted_value_and_grad(f, ex):
    return _maybe_x64(jax.jit(lambda x, *ctx: jax.value_and_grad(_bind(f, ctx))(x)), ex)


class JaxJvpOfGrad(_LazyGradient):
    name = "jvp_of_grad"
    column_modes = COLUMN_MODES

    def __init__(self, f, ex):
        shape = tuple(ex.x_shape)

        def product(x, v, *ctx):
            x = jnp.asarray(x)
            return jax.jvp(jax.grad(_bind(f, ctx)), (x,), (v.astype(x.dtype),))[1]

        def products(x, tangents, *ctx):
            return jax.vmap(lambda t: product(x, t, *ctx))(tangents)

        def columns(x, V, mode, *ctx):
            return _columns(lambda v: product(x, v.astype(jnp.asarray(x).dtype), *ctx), shape, mode)(V)

        self._product = _maybe_x64(jax.jit(product), ex)
        self._products = _maybe_x64(jax.jit(products), ex)
        self._columns = _maybe_x64(jax.jit(columns, static_argnums=2), ex)
        self._value_and_grad = _jitted_value_and_grad(f, ex)
        self._ndim = len(shape)

    def setup(self, x, ctx):
        return {"x": x, "ctx": ctx}

    def apply(self, state, tangents):
        fn = self._product if tangents.ndim == self._ndim else self._products
        return fn(state["x"], tangents, *state["ctx"])

    def apply_columns(self, state, V, mode="rows"):
        return self._columns(state["x"], V, mode, *state["ctx"])

    def columns_at(self, x, ctx, V, mode="rows"):
        """A block ``H @ V`` at x without any cached state (the operator's block path)."""
        return self._columns(x, V, mode, *ctx)

class JaxLinearize(_LazyGradient):
    name = "linearize"
    column_modes = COLUMN_MODES

    def __init__(self, f, ex):
        shape = tuple(ex.x_shape)

        def linearization(x, *ctx):
            return jax.linearize(jax.grad(_bind(f, ctx)), jnp.asarray(x))

        def setup(x, *ctx):
            g, lin = linearization(x, *ctx)
            return _bind(f, ctx)(jnp.asarray(x)), g, lin

        def setup_products_only(x, *ctx):
            return linearization(x, *ctx)[1]

        def apply(lin, tangents, ndim):
            if tangents.ndim == ndim:
                return lin(tangents)
            return jax.vmap(lin)(tangents)

        self._setup = _maybe_x64(jax.jit(setup), ex)
        self._setup_products_only = _maybe_x64(jax.jit(setup_products_only), ex)
        self._apply = _maybe_x64(jax.jit(apply, static_argnums=2), ex)
        self._columns = _maybe_x64(jax.jit(lambda lin, V, mode: _columns(lin, shape, mode)(V), static_argnums=2), ex)
        self._value_and_grad = _jitted_value_and_grad(f, ex)
        self._ndim = len(shape)

    def setup(self, x, ctx):
        y, g, lin = self._setup(x, *ctx)
        return {"value": y, "gradient": g, "lin": lin}

    def setup_products_only(self, x, ctx):
        """The linearization alone (a Newton loop that takes its gradient elsewhere): the
        set-up that also returns f and ∇f writes two more outputs, 1.2-1.7x the time."""
        return {"x": x, "ctx": ctx, "lin": self._setup_products_only(x, *ctx)}

    def apply(self, state, tangents):
        return self._apply(state["lin"], tangents, self._ndim)

    def apply_columns(self, state, V, mode="rows"):
        return self._columns(state["lin"], V, mode)


def jax_hessian_strategies(engine, f, ex):
    return [JaxJvpOfGrad(f, ex), JaxLinearize(f, ex)]

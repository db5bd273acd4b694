"""Hessian-operator strategies for JAX (see ``linear_operators``).

* ``jvp_of_grad``: every product is a jitted forward-over-reverse pass (it
  recomputes the forward and backward sweeps, but needs no set-up);
* ``linearize``: ``jax.linearize`` of ``value_and_grad`` built inside
  ``jax.jit`` at each new x; the returned ``Partial`` is applied by a second
  jitted function that takes it as an argument, so moving to a new x never
  recompiles.  Each product then costs only the linear (tangent) sweep.

Which wins depends on the function and on how many products are taken at one
x; the operator measures both once and chooses per point.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from diffinterface.backends._jax import _bind, needs_x64, with_x64


def _maybe_x64(fn, ex):
    return with_x64(fn) if needs_x64(ex.x_dtype) else fn


class JaxJvpOfGrad:
    name = "jvp_of_grad"

    def __init__(self, f, ex):
        def products(x, tangents, *ctx):
            vg = jax.value_and_grad(_bind(f, ctx))
            x = jnp.asarray(x)
            if tangents.ndim == x.ndim:
                (y, g), (_, hv) = jax.jvp(vg, (x,), (tangents.astype(x.dtype),))
                return y, g, hv
            (y, g), (_, hv) = jax.vmap(lambda t: jax.jvp(vg, (x,), (t,)), out_axes=((None, None), (0, 0)))(
                tangents.astype(x.dtype)
            )
            return y, g, hv

        self._products = _maybe_x64(jax.jit(products), ex)
        self._value_and_grad = _maybe_x64(jax.jit(lambda x, *ctx: jax.value_and_grad(_bind(f, ctx))(x)), ex)

    def setup(self, x, ctx):
        return {"x": x, "ctx": ctx}

    def apply(self, state, tangents):
        y, g, hv = self._products(state["x"], tangents, *state["ctx"])
        state["value"], state["gradient"] = y, g
        return hv

    def value_and_gradient(self, state):
        if "gradient" not in state:
            state["value"], state["gradient"] = self._value_and_grad(state["x"], *state["ctx"])
        return state["value"], state["gradient"]


class JaxLinearize:
    name = "linearize"

    def __init__(self, f, ex):
        def setup(x, *ctx):
            (y, g), lin = jax.linearize(jax.value_and_grad(_bind(f, ctx)), jnp.asarray(x))
            return y, g, lin

        def apply(lin, tangents, ndim):
            if tangents.ndim == ndim:
                return lin(tangents)[1]
            return jax.vmap(lambda t: lin(t)[1])(tangents)

        self._setup = _maybe_x64(jax.jit(setup), ex)
        self._apply = _maybe_x64(jax.jit(apply, static_argnums=2), ex)
        self._ndim = len(ex.x_shape)

    def setup(self, x, ctx):
        y, g, lin = self._setup(x, *ctx)
        return {"value": y, "gradient": g, "lin": lin}

    def apply(self, state, tangents):
        return self._apply(state["lin"], tangents, self._ndim)

    def value_and_gradient(self, state):
        return state["value"], state["gradient"]


def jax_hessian_strategies(engine, f, ex):
    return [JaxJvpOfGrad(f, ex), JaxLinearize(f, ex)]

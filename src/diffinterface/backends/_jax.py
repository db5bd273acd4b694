"""The JAX engine.

Prepared operators are ``jax.jit``-compiled once; gradients and Jacobians use
``jax.grad``/``jax.jacrev`` in reverse mode and ``jax.jacfwd`` in forward
mode; batches of tangents or cotangents go through ``jax.vmap``.  A float64
input with JAX's x64 mode off is computed in float64 inside
``jax.enable_x64(True)`` for the call only; the global flag is never touched.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from diffinterface._arrays import JAX, NUMPY, SCALAR
from diffinterface._errors import UnsupportedOperationError, WrongEngineError
from diffinterface.backends._engine import Engine
from diffinterface.backends._foreign import foreign_code_error, wrong_output_error

_NATIVE = "jax.numpy"


def needs_x64(dtype) -> bool:
    return np.dtype(dtype).itemsize == 8 and not jax.config.jax_enable_x64 and np.dtype(dtype).kind in "fc"


def with_x64(fn):
    @functools.wraps(fn)
    def in_x64(*args):
        with jax.enable_x64(True):
            return fn(*args)

    return in_x64


def _bind(f, ctx):
    return lambda z: f(z, *ctx)


def _with_aux(g):
    def both(z):
        y = g(z)
        return y, y

    return both


class JAXEngine(Engine):
    accepts = (SCALAR, NUMPY, JAX)
    native_kind = "jax"
    compiles = True
    display = "AutoJAX()"

    def __init__(self, backend):
        super().__init__(backend)
        self.mode = backend.mode

    # --- arrays -----------------------------------------------------------
    def to_native(self, x):
        if type(x) is float or isinstance(x, (np.floating, int)):
            return np.asarray(x, dtype=np.float64)
        return x

    def copy_native(self, x):
        return np.array(x, copy=True) if isinstance(x, np.ndarray) else x

    def stage(self, x):
        if isinstance(x, np.ndarray):  # once per point, not once per product
            if needs_x64(x.dtype):
                with jax.enable_x64(True):
                    return jax.device_put(x)
            return jax.device_put(x)
        return x

    def cache_buffer(self, value):
        raise UnsupportedOperationError(
            "AutoJAX() cannot write into a di.Cache buffer: JAX arrays are immutable (x.at[i].set "
            "returns a new array); use AutoTorch() or AutoFiniteDiff(), or compute without the buffer"
        )

    def stack(self, arrays):
        return jnp.stack(arrays)

    def basis(self, shape, dtype):
        return tuple(np.eye(int(np.prod(shape)), dtype=dtype).reshape((-1,) + tuple(shape)))

    def ones(self, shape, dtype):
        return np.ones(shape, dtype=dtype)

    def output_info(self, f, x, ctx, compiled):
        run = lambda: jax.eval_shape(_bind(f, ctx), x)
        if needs_x64(getattr(x, "dtype", np.float64)):
            run = with_x64(run)
        try:
            out = run()
        except jax.errors.TracerArrayConversionError as error:
            raise WrongEngineError(
                "f converted a JAX tracer to a NumPy array: it is written with NumPy, but "
                "AutoJAX traces with jax.numpy; write f with jax.numpy (or the array API), or use "
                "AutoAutograd() (autograd.numpy) or AutoFiniteDiff() for NumPy code"
            ) from error
        except jax.errors.ConcretizationTypeError as error:
            raise WrongEngineError(
                "f uses Python control flow (if/while/float()) on the value of x, which JAX cannot "
                "trace; use jnp.where or jax.lax.cond, or AutoTorch()/AutoAutograd()/AutoFiniteDiff() "
                "which run f eagerly"
            ) from error
        except TypeError as error:
            translated = foreign_code_error(error, self.display, _NATIVE, "jax")
            if translated is not None:
                raise translated from error
            if "not a valid JAX type" in str(error):
                raise WrongEngineError(
                    f"f returned a value that is not a JAX array ({error}); AutoJAX traces with "
                    "jax.numpy: use AutoTorch() for torch code, or write f with jax.numpy"
                ) from error
            raise
        if not isinstance(out, jax.ShapeDtypeStruct):
            raise wrong_output_error(out, self.display, _NATIVE)
        return tuple(out.shape), out.dtype

    def _finish(self, fn, ex, compiled):
        if compiled:
            fn = jax.jit(fn)
        if needs_x64(ex.x_dtype):
            fn = with_x64(fn)
        return fn

    # --- primitives -------------------------------------------------------
    def build_value_and_pushforward(self, f, ex, compiled):
        def value_and_pushforward(x, tangents, *ctx):
            g = _bind(f, ctx)
            x = jnp.asarray(x)
            tangents = [jnp.asarray(t, dtype=x.dtype) for t in tangents]
            if len(tangents) == 1:
                y, t = jax.jvp(g, (x,), (tangents[0],))
                return y, (t,)
            y, ts = jax.vmap(lambda t: jax.jvp(g, (x,), (t,)), out_axes=(None, 0))(jnp.stack(tangents))
            return y, tuple(ts)

        return self._finish(value_and_pushforward, ex, compiled)

    def build_value_and_pullback(self, f, ex, compiled):
        def value_and_pullback(x, cotangents, *ctx):
            y, vjp = jax.vjp(_bind(f, ctx), jnp.asarray(x))
            cotangents = [jnp.asarray(c, dtype=y.dtype) for c in cotangents]
            if len(cotangents) == 1:
                return y, vjp(cotangents[0])
            return y, tuple(jax.vmap(vjp)(jnp.stack(cotangents))[0])

        return self._finish(value_and_pullback, ex, compiled)

    # --- without the primal: dropped inside jit, so XLA never computes it ---
    def build_pushforward(self, f, ex, compiled):
        vpf = self.build_value_and_pushforward(f, ex, False)
        return self._finish(lambda x, tangents, *ctx: vpf(x, tangents, *ctx)[1], ex, compiled)

    def build_pullback(self, f, ex, compiled):
        vpb = self.build_value_and_pullback(f, ex, False)
        return self._finish(lambda x, cotangents, *ctx: vpb(x, cotangents, *ctx)[1], ex, compiled)

    # --- native overrides -------------------------------------------------
    def build_gradient(self, f, ex, compiled):
        if self.mode == "forward":
            return self._finish(lambda x, *ctx: jax.jacfwd(_bind(f, ctx))(jnp.asarray(x)), ex, compiled)
        return self._finish(lambda x, *ctx: jax.grad(_bind(f, ctx))(jnp.asarray(x)), ex, compiled)

    def build_value_and_gradient(self, f, ex, compiled):
        if self.mode == "forward":
            return self.build_value_and_jacobian(f, ex, compiled)
        return self._finish(lambda x, *ctx: jax.value_and_grad(_bind(f, ctx))(jnp.asarray(x)), ex, compiled)

    def _jac_transform(self):
        return jax.jacfwd if self.mode == "forward" else jax.jacrev

    def build_jacobian(self, f, ex, compiled):
        jac = self._jac_transform()
        return self._finish(lambda x, *ctx: jac(_bind(f, ctx))(jnp.asarray(x)), ex, compiled)

    def build_value_and_jacobian(self, f, ex, compiled):
        jac = self._jac_transform()

        def value_and_jacobian(x, *ctx):
            j, y = jac(_with_aux(_bind(f, ctx)), has_aux=True)(jnp.asarray(x))
            return y, j

        return self._finish(value_and_jacobian, ex, compiled)

    def build_value_and_derivative(self, f, ex, compiled):
        def value_and_derivative(x, *ctx):
            x = jnp.asarray(x)
            return jax.jvp(_bind(f, ctx), (x,), (jnp.ones_like(x),))

        return self._finish(value_and_derivative, ex, compiled)

    def build_derivative(self, f, ex, compiled):
        vd = self.build_value_and_derivative(f, ex, False)
        return self._finish(lambda x, *ctx: vd(x, *ctx)[1], ex, compiled)

    def build_tree_value_and_gradient(self, f, spec, compiled):
        """Gradient over the leaves of a pytree x, inside one jitted function."""
        def value_and_gradient(leaves, *ctx):
            return jax.value_and_grad(lambda ls: f(spec.unflatten(ls), *ctx))(list(leaves))

        fn = jax.jit(value_and_gradient) if compiled else value_and_gradient
        dtype = next((d for d in spec.dtypes if "float64" in d), None)
        return with_x64(fn) if dtype is not None and needs_x64(np.float64) else fn

    # --- second order -----------------------------------------------------
    def build_value(self, f, ex, compiled):
        return self._finish(f, ex, compiled)

    def differentiable_gradient(self, f, outer):
        if self.mode == "forward":
            return lambda z, *ctx: jax.jacfwd(_bind(f, ctx))(z)
        return lambda z, *ctx: jax.grad(_bind(f, ctx))(z)

    def hessian_operator_strategies(self, f, ex):
        from diffinterface.backends._jax_hvp import jax_hessian_strategies

        return jax_hessian_strategies(self, f, ex)


ENGINE = JAXEngine

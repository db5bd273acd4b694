"""Second order: a pair of engines, ``outer`` differentiating ``inner``'s gradient.

The pair needs one thing from the inner engine: a gradient function the outer
engine can differentiate (``differentiable_gradient``).  Every second-order
operator is then a first-order operator of the outer engine applied to it:

* ``hvp``: the outer pushforward of the gradient (forward-over-reverse), or
  its pullback (reverse-over-reverse; the Hessian is symmetric);
* ``hessian``: the outer Jacobian of the gradient.

Pairs work within one engine (JAX over JAX, torch over torch, autograd over
autograd) and with finite differences outside any engine's gradient.  A
single backend passed to a second-order operator uses its fastest pair,
measured in ``benchmarks/hvp.py``: JAX forward-over-reverse, torch and
autograd reverse-over-reverse (double backward), finite differences over
finite differences.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from diffinterface._arrays import NUMPY, SCALAR
from diffinterface._errors import UnsupportedOperationError
from diffinterface.backends._engine import Engine, Example, _drop_value
from diffinterface.backends._specs import AutoAutograd, AutoFiniteDiff, AutoJAX, AutoTorch, SecondOrder

#: the pair a single backend stands for in second-order operators
def default_pair(backend: Any) -> SecondOrder:
    if isinstance(backend, SecondOrder):
        return backend
    if isinstance(backend, AutoJAX):
        return SecondOrder(AutoJAX(mode="forward"), AutoJAX(mode="reverse"))
    if isinstance(backend, AutoTorch):
        return SecondOrder(AutoTorch(mode="reverse"), AutoTorch(mode="reverse"))
    if isinstance(backend, AutoAutograd):
        return SecondOrder(backend, backend)
    if isinstance(backend, AutoFiniteDiff):
        return SecondOrder(backend, backend)
    dense = getattr(backend, "dense_backend", None)
    if dense is not None:
        return default_pair(dense)
    raise UnsupportedOperationError(f"{backend!r} has no second-order strategy")


def _gradient_example(ex: Example) -> Example:
    return Example(ex.x_shape, ex.x_dtype, ex.x_shape, ex.x_dtype, ex.batch)


class SecondOrderEngine(Engine):
    """Second-order operators for ``SecondOrder(outer, inner)``."""

    def __init__(self, pair: SecondOrder, outer: Engine, inner: Engine) -> None:
        super().__init__(pair)
        self.pair = pair
        self.inner = inner
        self.outer = outer
        self.through_numpy = isinstance(pair.outer, AutoFiniteDiff)
        if not self.through_numpy and type(outer) is not type(inner):
            raise UnsupportedOperationError(
                f"SecondOrder({pair.outer!r}, {pair.inner!r}) cannot work: {pair.outer!r} cannot "
                f"differentiate code traced by {pair.inner!r}. Use a pair within one engine, e.g. "
                f"SecondOrder({type(pair.inner).__name__}(), {pair.inner!r}), or finite differences "
                f"outside it: SecondOrder(AutoFiniteDiff(), {pair.inner!r})"
            )
        if isinstance(pair.inner, AutoFiniteDiff) and not self.through_numpy:
            raise UnsupportedOperationError(  # pragma: no cover - blocked above by the type check
                "finite differences cannot be differentiated by an AD engine; use "
                "SecondOrder(AutoFiniteDiff(), AutoFiniteDiff())"
            )
        if self.through_numpy and isinstance(pair.inner, AutoFiniteDiff) and pair.outer.rel_step is None:
            # differencing a finite-difference gradient: a larger outer step keeps
            # the inner rounding noise (~eps^(2/3)) from being amplified
            step = {"forward": np.finfo(float).eps ** (1 / 3), "central": np.finfo(float).eps ** 0.25,
                    "complex": np.finfo(float).eps ** 0.25}[pair.outer.method]
            method = "central" if pair.outer.method == "complex" else pair.outer.method
            self.outer = type(outer)(replace(pair.outer, method=method, rel_step=step))
        self.accepts = (SCALAR, NUMPY) if self.through_numpy else inner.accepts
        self.compiles = outer.compiles or inner.compiles
        self.display = repr(pair)
        self.mode = outer.mode
        self.native_kind = "numpy" if self.through_numpy else getattr(inner, "native_kind", None)

    # --- arrays: those of the inner engine (NumPy when finite differences lead)
    def to_native(self, x):
        return (self.outer if self.through_numpy else self.inner).to_native(x)

    def copy_native(self, x):
        return (self.outer if self.through_numpy else self.inner).copy_native(x)

    def stack(self, arrays):
        return (self.outer if self.through_numpy else self.inner).stack(arrays)

    def cache_buffer(self, value):
        return self.inner.cache_buffer(value)

    def stage(self, x):
        return x if self.through_numpy else self.inner.stage(x)  # f is only ever called by the inner engine

    def output_info(self, f, x, ctx, compiled):
        return self.inner.output_info(f, self.inner.to_native(x), ctx, compiled)

    def gradient_function(self, f, ex: Example, compiled: bool):
        """``(x, *ctx) -> ∇f(x)`` in a form the outer engine can differentiate."""
        if not self.through_numpy:
            return self.inner.differentiable_gradient(f, self.outer)
        inner_gradient = self.inner.build_gradient(f, ex, compiled)
        to_native = self.inner.to_native

        def numpy_gradient(z, *ctx):
            return np.asarray(inner_gradient(to_native(z), *ctx))

        return numpy_gradient

    # --- second-order operators --------------------------------------------
    def build_gradient_and_hvp(self, f, ex, compiled):
        if not self.through_numpy:
            native = self.inner.native_gradient_and_hvp(f, ex, self.outer, compiled)
            if native is not None:
                return native
        grad_f = self.gradient_function(f, ex, compiled and self.through_numpy)
        gex = _gradient_example(ex)
        if self.outer.mode == "forward" or self.through_numpy:
            return self._guarded(self.outer.build_value_and_pushforward(grad_f, gex, compiled), None)
        return self._guarded(self.outer.build_value_and_pullback(grad_f, gex, compiled), None)

    def build_hvp(self, f, ex, compiled):
        if not self.through_numpy and self.inner.native_gradient_and_hvp(f, ex, self.outer, compiled) is not None:
            return _drop_value(self.build_gradient_and_hvp(f, ex, compiled))
        grad_f = self.gradient_function(f, ex, compiled and self.through_numpy)
        gex = _gradient_example(ex)
        if self.outer.mode == "forward" or self.through_numpy:
            return self._guarded(self.outer.build_pushforward(grad_f, gex, compiled), None)
        return self._guarded(self.outer.build_pullback(grad_f, gex, compiled), None)

    def _hessian_from_products(self, f, ex, compiled):
        """(x, *ctx) -> (∇f, H) from n HVPs of the native path (double backward)."""
        n = int(np.prod(ex.x_shape))
        basis = self.inner.basis(ex.x_shape, ex.x_dtype)
        products = self.inner.native_gradient_and_hvp(f, Example(ex.x_shape, ex.x_dtype, (), ex.y_dtype, n),
                                                       self.outer, compiled)
        stack = self.inner.stack

        def gradient_and_hessian(x, *ctx):
            g, columns = products(x, basis, *ctx)
            return g, stack([c.reshape(n) for c in columns]).reshape(tuple(ex.x_shape) * 2)

        return gradient_and_hessian

    def _guarded(self, primary, fallback):
        """torch.func transforms refuse in-place writes (a di.Cache) when nested:
        switch to the double-backward path, which allows them."""
        state = {"fn": primary}

        def run(*args):
            try:
                return state["fn"](*args)
            except RuntimeError as error:
                if "in-place" not in str(error) or state["fn"] is not primary:
                    raise
                if fallback is None:
                    raise UnsupportedOperationError(
                        f"{self.display} nests torch.func transforms, which refuse in-place writes such as a "
                        "di.Cache buffer; use AutoTorch() (double backward) for second order with a Cache"
                    ) from error
                state["fn"] = fallback()
                return state["fn"](*args)

        return run

    def build_value_gradient_and_hessian(self, f, ex, compiled):
        grad_f = self.gradient_function(f, ex, compiled and self.through_numpy)
        gradient_and_hessian = self._guarded(
            self.outer.build_value_and_jacobian(grad_f, _gradient_example(ex), compiled),
            self._native_fallback(f, ex, compiled))
        value = self.inner.build_value(f, ex, compiled)
        to_inner = self.inner.to_native

        def value_gradient_and_hessian(x, *ctx):
            g, h = gradient_and_hessian(x, *ctx)
            return value(to_inner(x), *ctx), g, h

        return value_gradient_and_hessian

    def build_hessian(self, f, ex, compiled):
        grad_f = self.gradient_function(f, ex, compiled and self.through_numpy)
        fallback = self._native_fallback(f, ex, compiled)
        return self._guarded(self.outer.build_jacobian(grad_f, _gradient_example(ex), compiled),
                             None if fallback is None else (lambda: _drop_value(fallback())))

    def _native_fallback(self, f, ex, compiled):
        if self.through_numpy or self.inner.native_gradient_and_hvp(f, ex, self.outer, compiled) is None:
            return None
        return lambda: self._hessian_from_products(f, ex, compiled)

    build_value_derivative_and_second_derivative = build_value_gradient_and_hessian
    build_second_derivative = build_hessian

    def hessian_operator_strategies(self, f, ex):
        """Candidate ways to apply H at a fixed x; see ``linear_operators``."""
        if self.pair == default_pair(self.inner.backend) and not self.through_numpy:
            native = self.inner.hessian_operator_strategies(f, ex)
            if native:
                return native
        from diffinterface.linear_operators import RecomputeStrategy

        return [RecomputeStrategy(self, f, ex)]


def get_second_order_engine(backend: Any) -> SecondOrderEngine:
    from diffinterface.backends import get_engine

    pair = default_pair(backend)
    return SecondOrderEngine(pair, get_engine(pair.outer), get_engine(pair.inner))

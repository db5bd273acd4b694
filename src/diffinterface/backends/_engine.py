"""The engine protocol and the generic operator fallbacks.

An engine turns a user function ``f(x, *contexts)`` into callables on its own
("native") arrays.  It must implement two primitives,

* ``build_value_and_pushforward``: ``(x, tangents, *ctx) -> (y, tuple of JVPs)``
* ``build_value_and_pullback``:    ``(x, cotangents, *ctx) -> (y, tuple of VJPs)``

and gets every other first-order operator from the fallbacks below.  An engine
overrides an operator only where it has a faster native path.  Each builder
receives an :class:`Example` (shapes and dtypes, never caller arrays) and
``compiled``: True inside ``prepare_*`` (the engine may trace or compile),
False for one-shot calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from diffinterface._errors import UnsupportedOperationError

NativeFn = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Example:
    """What a builder may know about the call: shapes, dtypes and batch size."""

    x_shape: tuple
    x_dtype: Any
    y_shape: tuple
    y_dtype: Any
    batch: int = 1


class Engine:
    """Base class of the engines; subclasses live in ``backends/_<name>.py``."""

    #: array kinds (see ``diffinterface._arrays``) accepted as x
    accepts: tuple[str, ...] = ()
    #: whether ``prepare_*`` should warm the callables up (JIT compilation)
    compiles: bool = False
    #: the user-facing name used in error messages, e.g. "AutoJAX()"
    display: str = "?"
    #: the modes the engine has natively: gradients and Jacobians use ``mode``
    mode: str = "reverse"

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    # --- arrays -----------------------------------------------------------
    def to_native(self, x: Any) -> Any:
        """Convert an accepted input (NumPy, float or native) to a native array."""
        return x

    def copy_native(self, x: Any) -> Any:
        """A private copy, so a prep never aliases caller memory."""
        raise NotImplementedError

    def stage(self, x: Any) -> Any:
        """``x`` placed where the engine computes (a device array for JAX), for
        state reused by many calls; the default keeps it as it is."""
        return x

    def cache_buffer(self, value: Any) -> Any:
        """The scratch buffer ``f`` gets for a ``di.Cache(value)``."""
        return value

    def output_info(self, f: Callable, x: Any, ctx: tuple, compiled: bool) -> tuple[tuple, Any]:
        """Shape and dtype of ``f(x, *ctx)``; raises WrongEngineError for foreign code."""
        raise NotImplementedError

    def stack(self, arrays: list) -> Any:
        raise NotImplementedError

    def basis(self, shape: tuple, dtype: Any) -> tuple:
        """The standard basis of arrays of ``shape`` as a tuple of one-hot arrays."""
        raise NotImplementedError

    def ones(self, shape: tuple, dtype: Any) -> Any:
        raise NotImplementedError

    # --- primitives -------------------------------------------------------
    def build_value_and_pushforward(self, f: Callable, ex: Example, compiled: bool) -> NativeFn:
        raise UnsupportedOperationError(
            f"{self.display} has no pushforward (forward mode); use AutoJAX(), AutoTorch() or "
            "AutoFiniteDiff() for Jacobian-vector products"
        )

    def build_value_and_pullback(self, f: Callable, ex: Example, compiled: bool) -> NativeFn:
        raise UnsupportedOperationError(
            f"{self.display} has no pullback (reverse mode); use AutoJAX(), AutoTorch() or "
            "AutoAutograd() for vector-Jacobian products"
        )

    # --- second-order hooks (see backends/_second_order.py) -----------------
    def build_value(self, f: Callable, ex: Example, compiled: bool) -> NativeFn:
        """``(x, *ctx) -> f(x, *ctx)`` (compiled where the engine compiles)."""
        return f

    def differentiable_gradient(self, f: Callable, outer: "Engine") -> NativeFn:
        """``(x, *ctx) -> ∇f(x)`` written so that ``outer`` (an engine of the
        same library) can differentiate it again."""
        raise UnsupportedOperationError(
            f"{self.display} cannot be differentiated again by an AD engine; use "
            f"SecondOrder(AutoFiniteDiff(), {self.display})"
        )

    def native_gradient_and_hvp(self, f: Callable, ex: Example, outer: "Engine", compiled: bool) -> NativeFn | None:
        """A faster native ``(x, tangents, *ctx) -> (∇f, HVPs)`` for this outer engine, or None."""
        return None

    def hessian_operator_strategies(self, f: Callable, ex: Example) -> list:
        """Native ways to cache state for many HVPs at one x (``linear_operators``)."""
        return []

    # --- generic fallbacks, from the primitives ---------------------------
    def build_pushforward(self, f, ex, compiled):
        vpf = self.build_value_and_pushforward(f, ex, compiled)
        return lambda x, tangents, *ctx: vpf(x, tangents, *ctx)[1]

    def build_pullback(self, f, ex, compiled):
        vpb = self.build_value_and_pullback(f, ex, compiled)
        return lambda x, cotangents, *ctx: vpb(x, cotangents, *ctx)[1]

    def build_value_and_derivative(self, f, ex, compiled):
        vpf = self.build_value_and_pushforward(f, _with_batch(ex, 1), compiled)
        one = (self.ones(ex.x_shape, ex.x_dtype),)

        def value_and_derivative(x, *ctx):
            y, (dy,) = vpf(x, one, *ctx)
            return y, dy

        return value_and_derivative

    def build_derivative(self, f, ex, compiled):
        return _drop_value(self.build_value_and_derivative(f, ex, compiled))

    def build_value_and_gradient(self, f, ex, compiled):
        if self.mode == "forward":
            vjac = self.build_value_and_jacobian(f, ex, compiled)
            return vjac  # y is scalar: the Jacobian has x's shape
        vpb = self.build_value_and_pullback(f, _with_batch(ex, 1), compiled)
        one = (self.ones(ex.y_shape, ex.y_dtype),)

        def value_and_gradient(x, *ctx):
            y, (g,) = vpb(x, one, *ctx)
            return y, g

        return value_and_gradient

    def build_gradient(self, f, ex, compiled):
        return _drop_value(self.build_value_and_gradient(f, ex, compiled))

    def build_value_and_jacobian(self, f, ex, compiled):
        y_shape, x_shape = ex.y_shape, ex.x_shape
        if self.mode == "forward":
            seeds = self.basis(x_shape, ex.x_dtype)
            vpf = self.build_value_and_pushforward(f, _with_batch(ex, len(seeds)), compiled)

            def value_and_jacobian(x, *ctx):
                y, columns = vpf(x, seeds, *ctx)
                stacked = self.stack(list(columns)).reshape((len(seeds), -1))
                return y, stacked.T.reshape(y_shape + x_shape)

            return value_and_jacobian
        seeds = self.basis(y_shape, ex.y_dtype)
        vpb = self.build_value_and_pullback(f, _with_batch(ex, len(seeds)), compiled)

        def value_and_jacobian_rev(x, *ctx):
            y, rows = vpb(x, seeds, *ctx)
            return y, self.stack(list(rows)).reshape(y_shape + x_shape)

        return value_and_jacobian_rev

    def build_jacobian(self, f, ex, compiled):
        return _drop_value(self.build_value_and_jacobian(f, ex, compiled))


def _with_batch(ex: Example, batch: int) -> Example:
    return Example(ex.x_shape, ex.x_dtype, ex.y_shape, ex.y_dtype, batch)


def _drop_value(fn: NativeFn) -> NativeFn:
    return lambda *args: fn(*args)[1]

"""In-place functions ``f(y, x, *contexts)`` that write their output into ``y``."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from diffinterface._errors import UnsupportedOperationError

__all__ = ["InPlace"]

_FAMILIES = ("jacobian", "pushforward", "pullback")


class InPlace:
    """Marks ``f(y, x, *contexts)`` as writing its output into ``y`` in place.

    ``y`` is an example output buffer (its shape and dtype are what count);
    the engine gives ``f`` a fresh buffer of the right type at every call.
    Works with ``jacobian``, ``pushforward`` and ``pullback`` (and their
    variants) under the engines that allow mutation: ``AutoTorch`` and
    ``AutoFiniteDiff``.  Contexts stay positional after ``x``:

    >>> import numpy as np, diffinterface as di
    >>> def f(y, x):
    ...     y[:] = x[1:] * x[:-1]
    >>> di.jacobian(di.InPlace(f, np.zeros(2)), di.AutoFiniteDiff(method="complex"), np.array([1.0, 2.0, 3.0]))
    array([[2., 1., 0.],
           [0., 3., 2.]])
    """

    __slots__ = ("f", "y")

    def __init__(self, f: Callable, y: Any) -> None:
        if not callable(f):
            from diffinterface._errors import InvalidInputError

            raise InvalidInputError(f"InPlace(f, y): f must be callable, got {type(f).__name__}")
        self.f = f
        self.y = y

    def _key(self) -> tuple:
        return (self.f, tuple(np.shape(self.y)), str(getattr(self.y, "dtype", "float64")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InPlace) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"InPlace({getattr(self.f, '__qualname__', self.f)}, y of shape {tuple(np.shape(self.y))})"

    def out_of_place(self, family: str, backend: Any) -> Callable:
        """``x -> y``: a fresh buffer per call, written by ``f``."""
        from diffinterface.backends._specs import AutoFiniteDiff, AutoTorch

        base = getattr(backend, "dense_backend", backend)
        if family not in _FAMILIES:
            raise UnsupportedOperationError(
                f"an in-place function has no {family}; in-place functions work with jacobian, "
                "pushforward and pullback (write f(x) -> y for gradients and Hessians)"
            )
        shape = tuple(np.shape(self.y))
        f = self.f
        if isinstance(base, AutoFiniteDiff):
            def numpy_out_of_place(x, *ctx):
                y = np.zeros(shape, dtype=np.result_type(x, self.y))
                f(y, x, *ctx)
                return y

            return numpy_out_of_place
        if isinstance(base, AutoTorch):
            import torch

            def torch_out_of_place(x, *ctx):
                y = torch.zeros(shape, dtype=x.dtype, device=x.device)
                f(y, x, *ctx)
                return y

            return torch_out_of_place
        raise UnsupportedOperationError(
            f"{base!r} cannot differentiate an in-place function (its arrays cannot be written in "
            "place); use AutoTorch() or AutoFiniteDiff(), or write f(x) -> y"
        )

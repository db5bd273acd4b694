"""Contexts: arguments of ``f`` after ``x`` that are not differentiated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffinterface._errors import InvalidInputError

__all__ = ["Constant", "Cache", "Context", "unwrap_contexts"]


@dataclass(frozen=True, slots=True, eq=False)
class Constant:
    """A value ``f`` reads but is not differentiated with respect to.

    A prep built with one ``Constant`` value can be called with another value
    (of the same structure) without preparing again.

    >>> import numpy as np
    >>> import diffinterface as di
    >>> f = lambda x, a: float(np.sum(a * x ** 2))
    >>> di.gradient(f, di.AutoFiniteDiff(), np.ones(2), di.Constant(np.array([1.0, 2.0]))).round(6)
    array([2., 4.])
    """

    value: Any


@dataclass(frozen=True, slots=True, eq=False)
class Cache:
    """Scratch space ``f`` may overwrite; never differentiated.

    The engine hands ``f`` a fresh buffer of the right type at each call, shaped
    like ``value``: complex for the complex step, a new tensor for torch (so a
    kept autograd graph never sees it overwritten).  HIPS autograd cannot trace
    writes into a buffer and refuses a Cache.

    >>> import numpy as np, diffinterface as di
    >>> def f(x, scratch):
    ...     scratch[:] = x ** 2
    ...     return np.sum(scratch)
    >>> di.gradient(f, di.AutoFiniteDiff(method="complex"), np.ones(2), di.Cache(np.zeros(2)))
    array([2., 2.])
    """

    value: Any


Context = Constant | Cache


def unwrap_contexts(contexts: tuple, engine: Any = None) -> tuple:
    """The raw values of ``contexts``, after checking each is a Constant or Cache.

    With an ``engine``, each Cache is replaced by the buffer the engine supplies.
    """
    values = []
    for position, context in enumerate(contexts):
        if not isinstance(context, (Constant, Cache)):
            raise InvalidInputError(
                f"argument {position + 1} after x is a {type(context).__name__}; positional "
                "arguments after x are contexts and must be wrapped: di.Constant(value) for "
                "data f reads, di.Cache(buffer) for scratch space f overwrites"
            )
        if engine is not None and isinstance(context, Cache):
            values.append(engine.cache_buffer(context.value))
        else:
            values.append(context.value)
    return tuple(values)

"""Second-order operators of a scalar ``f``: second_derivative, hvp, hessian.

The backend may be a single engine (its fastest strategy: JAX
forward-over-reverse, torch and autograd reverse-over-reverse, finite
differences over finite differences) or a ``SecondOrder(outer, inner)`` pair.
Each operator has ``prepare_<op>``, ``prep=`` and ``out=`` like the
first-order ones.
"""

from __future__ import annotations

from typing import Any, Callable

from diffinterface.operators._common import run, seed_batch_for
from diffinterface.prep import Prep, prepare

__all__ = [
    "second_derivative", "value_derivative_and_second_derivative", "prepare_second_derivative",
    "hvp", "gradient_and_hvp", "prepare_hvp",
    "hessian", "value_gradient_and_hessian", "prepare_hessian",
]

_THREE = ("value", "array", "result")


def second_derivative(f: Callable, backend: Any, x: Any, *contexts: Any, prep: Prep | None = None, out: Any = None) -> Any:
    """``f''(x)`` for scalar ``x`` and scalar ``f``.

    >>> import diffinterface as di
    >>> round(di.second_derivative(lambda x: x ** 3, di.AutoFiniteDiff(), 2.0), 5)
    12.0
    """
    return run("second_derivative", "second_derivative", f, backend, x, contexts, prep, out)


def value_derivative_and_second_derivative(f, backend, x, *contexts, prep=None, out=None):
    """``(f(x), f'(x), f''(x))`` for scalar ``x``."""
    return run("value_derivative_and_second_derivative", "second_derivative", f, backend, x, contexts,
               prep, out, parts=_THREE)


def prepare_second_derivative(f: Callable, backend: Any, x: Any, *contexts: Any) -> Prep:
    """Prepare :func:`second_derivative` and its ``value_derivative_and_`` variant."""
    return prepare("second_derivative", f, backend, x, contexts)


def hvp(f: Callable, backend: Any, x: Any, tx: Any, *contexts: Any, prep: Prep | None = None, out: Any = None) -> Any:
    """Hessian-vector product ``∇²f(x) tx``; ``tx`` a vector or a tuple of them.

    A tuple of tangents returns a tuple, evaluated in one vectorized pass where
    the engine can.  For many products at one point, see
    :func:`diffinterface.hessian_operator`.
    """
    return run("hvp", "hvp", f, backend, x, contexts, prep, out, tx, "tx")


def gradient_and_hvp(f, backend, x, tx, *contexts, prep=None, out=None):
    """``(∇f(x), ∇²f(x) tx)`` from one pass."""
    return run("gradient_and_hvp", "hvp", f, backend, x, contexts, prep, out, tx, "tx",
               parts=("array", "result"))


def prepare_hvp(f: Callable, backend: Any, x: Any, tx: Any, *contexts: Any) -> Prep:
    """Prepare :func:`hvp` and :func:`gradient_and_hvp` for tangents like ``tx``."""
    return prepare("hvp", f, backend, x, contexts, seed_batch_for(tx, "tx", x))


def hessian(f: Callable, backend: Any, x: Any, *contexts: Any, prep: Prep | None = None, out: Any = None) -> Any:
    """The Hessian of scalar ``f`` at ``x``, of shape ``x.shape + x.shape``."""
    return run("hessian", "hessian", f, backend, x, contexts, prep, out)


def value_gradient_and_hessian(f, backend, x, *contexts, prep=None, out=None):
    """``(f(x), ∇f(x), ∇²f(x))``."""
    return run("value_gradient_and_hessian", "hessian", f, backend, x, contexts, prep, out, parts=_THREE)


def prepare_hessian(f: Callable, backend: Any, x: Any, *contexts: Any) -> Prep:
    """Prepare :func:`hessian` and :func:`value_gradient_and_hessian` at ``x``."""
    return prepare("hessian", f, backend, x, contexts)

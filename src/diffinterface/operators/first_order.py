"""First-order operators: derivative, gradient, jacobian, pushforward, pullback.

Every operator takes ``f(x, *contexts)``, a backend spec and ``x``; results
follow ``x`` (array library, dtype, device, shape).  Each has a
``value_and_`` variant returning ``(f(x), result)``, an ``out=`` buffer
(written in place and returned) and a ``prepare_`` function whose result is
passed back as ``prep=`` to skip all set-up at later points.
"""

from __future__ import annotations

from typing import Any, Callable

from diffinterface.operators._common import run, seed_batch_for
from diffinterface.prep import Prep, prepare

__all__ = [
    "derivative", "value_and_derivative", "prepare_derivative",
    "gradient", "value_and_gradient", "prepare_gradient",
    "jacobian", "value_and_jacobian", "prepare_jacobian",
    "pushforward", "value_and_pushforward", "prepare_pushforward",
    "pullback", "value_and_pullback", "prepare_pullback",
]


def derivative(f: Callable, backend: Any, x: Any, *contexts: Any, prep: Prep | None = None, out: Any = None) -> Any:
    """Derivative ``f'(x)`` of ``f`` at a scalar ``x``; has the shape of ``f(x)``.

    >>> import numpy as np, diffinterface as di
    >>> round(di.derivative(lambda x: x ** 3, di.AutoFiniteDiff(), 2.0), 6)
    12.0
    """
    return run("derivative", "derivative", f, backend, x, contexts, prep, out)


def value_and_derivative(f, backend, x, *contexts, prep=None, out=None):
    """``(f(x), f'(x))`` for a scalar ``x``; see :func:`derivative`."""
    return run("value_and_derivative", "derivative", f, backend, x, contexts, prep, out)


def prepare_derivative(f: Callable, backend: Any, x: Any, *contexts: Any) -> Prep:
    """Prepare :func:`derivative` and :func:`value_and_derivative` at ``x``."""
    return prepare("derivative", f, backend, x, contexts)


def gradient(f: Callable, backend: Any, x: Any, *contexts: Any, prep: Prep | None = None, out: Any = None) -> Any:
    """Gradient of a scalar-valued ``f`` at ``x``; has the shape of ``x``.

    >>> import numpy as np, diffinterface as di
    >>> di.gradient(lambda x: np.sum(x ** 2), di.AutoFiniteDiff(), np.array([1.0, 2.0])).round(6)
    array([2., 4.])
    """
    return run("gradient", "gradient", f, backend, x, contexts, prep, out)


def value_and_gradient(f, backend, x, *contexts, prep=None, out=None):
    """``(f(x), ∇f(x))``; see :func:`gradient`."""
    return run("value_and_gradient", "gradient", f, backend, x, contexts, prep, out)


def prepare_gradient(f: Callable, backend: Any, x: Any, *contexts: Any) -> Prep:
    """Prepare :func:`gradient` and :func:`value_and_gradient` at ``x``.

    >>> import numpy as np, diffinterface as di
    >>> f = lambda x: np.sum(x ** 2)
    >>> prep = di.prepare_gradient(f, di.AutoFiniteDiff(), np.zeros(2))
    >>> di.gradient(f, di.AutoFiniteDiff(), np.array([1.0, -1.0]), prep=prep).round(6)
    array([ 2., -2.])
    """
    return prepare("gradient", f, backend, x, contexts)


def jacobian(f: Callable, backend: Any, x: Any, *contexts: Any, prep: Prep | None = None, out: Any = None) -> Any:
    """Jacobian of ``f`` at ``x``, of shape ``f(x).shape + x.shape`` (as ``jax.jacobian``).

    The backend's mode decides how: forward mode builds it from pushforwards
    (one per input), reverse mode from pullbacks (one per output).
    """
    return run("jacobian", "jacobian", f, backend, x, contexts, prep, out)


def value_and_jacobian(f, backend, x, *contexts, prep=None, out=None):
    """``(f(x), ∂f(x))``; see :func:`jacobian`."""
    return run("value_and_jacobian", "jacobian", f, backend, x, contexts, prep, out)


def prepare_jacobian(f: Callable, backend: Any, x: Any, *contexts: Any) -> Prep:
    """Prepare :func:`jacobian` and :func:`value_and_jacobian` at ``x``."""
    return prepare("jacobian", f, backend, x, contexts)


def pushforward(f: Callable, backend: Any, x: Any, tx: Any, *contexts: Any, prep: Prep | None = None, out: Any = None) -> Any:
    """Jacobian-vector product ``∂f(x) tx`` (a JVP).

    ``tx`` is one tangent (shape of ``x``) or a tuple of tangents; a tuple
    returns a tuple, computed in one vectorized pass where the engine can.
    """
    return run("pushforward", "pushforward", f, backend, x, contexts, prep, out, tx, "tx")


def value_and_pushforward(f, backend, x, tx, *contexts, prep=None, out=None):
    """``(f(x), ∂f(x) tx)``; see :func:`pushforward`."""
    return run("value_and_pushforward", "pushforward", f, backend, x, contexts, prep, out, tx, "tx")


def prepare_pushforward(f: Callable, backend: Any, x: Any, tx: Any, *contexts: Any) -> Prep:
    """Prepare :func:`pushforward` for tangents like ``tx`` (same batch size)."""
    return prepare("pushforward", f, backend, x, contexts, seed_batch_for(tx, "tx", x))


def pullback(f: Callable, backend: Any, x: Any, ty: Any, *contexts: Any, prep: Prep | None = None, out: Any = None) -> Any:
    """Vector-Jacobian product ``ty ∂f(x)`` (a VJP), of the shape of ``x``.

    ``ty`` is one cotangent (shape of ``f(x)``) or a tuple of them.
    """
    return run("pullback", "pullback", f, backend, x, contexts, prep, out, ty, "ty")


def value_and_pullback(f, backend, x, ty, *contexts, prep=None, out=None):
    """``(f(x), ty ∂f(x))``; see :func:`pullback`."""
    return run("value_and_pullback", "pullback", f, backend, x, contexts, prep, out, ty, "ty")


def prepare_pullback(f: Callable, backend: Any, x: Any, ty: Any, *contexts: Any) -> Prep:
    """Prepare :func:`pullback` for cotangents like ``ty`` (same batch size)."""
    return prepare("pullback", f, backend, x, contexts, seed_batch_for(ty, "ty", x))

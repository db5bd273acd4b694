"""The Gauss-Newton operator: ``JᵀJ + damping·I`` for residuals ``r(x)``, matrix-free.

``G = gauss_newton_operator(r, backend, x, damping=0.0)``: ``G @ v`` is one
JVP and one VJP of r (in one fused call where the engine has one and the
first ``G @ v`` measured it faster), ``G.value = 0.5 |r|²``, ``G.gradient =
Jᵀ r``; with ``loss=`` a convex scalar function of r it is the generalized
Gauss-Newton ``Jᵀ ∇²loss(r) J``.  It is built on
:class:`~diffinterface.jacobian_operators.JacobianOperator`, whose cached
state and strategy choice it shares.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from diffinterface._arrays import NUMPY, SCALAR
from diffinterface._errors import InvalidInputError
from diffinterface.jacobian_operators import JacobianOperator, _scipy_operator

__all__ = ["GaussNewtonOperator", "gauss_newton_operator"]


class GaussNewtonOperator:
    """``JᵀJ + damping·I`` (or ``Jᵀ ∇²loss(r) J + damping·I``) for residuals ``r(x)``.

    Build it with :func:`gauss_newton_operator`.  Shape ``(n, n)``, symmetric;
    ``G @ v`` (and blocks ``G @ V``) is one JVP and one VJP of r (a single
    fused call where the engine has one and the first ``G @ v`` measured it
    faster); ``G.update(x_new)`` returns ``G``;
    ``G.value`` is ``0.5 |r|²`` (or ``loss(r)``), ``G.gradient`` is ``Jᵀ r``
    (or ``Jᵀ ∇loss(r)``), shaped like x; ``G.jacobian`` the underlying
    :class:`JacobianOperator`.
    """

    __array_ufunc__ = None

    def __init__(self, r: Callable, backend: Any, x: Any, *contexts: Any, damping: float = 0.0,
                 loss: str | Callable = "squared") -> None:
        if not (loss == "squared" or callable(loss)):
            raise InvalidInputError(
                f"loss={loss!r}: pass 'squared' (0.5 |r|^2) or a convex scalar function of the residuals"
            )
        damping = float(damping)
        if damping < 0 or not np.isfinite(damping):
            raise InvalidInputError(f"damping={damping} must be a finite number >= 0")
        self.jacobian = JacobianOperator(r, backend, x, *contexts)
        self.damping, self.loss, self.backend = damping, loss, backend
        self.n = self.jacobian.n
        self.shape = (self.n, self.n)
        self.dtype = self.jacobian.dtype
        self._loss_op = None
        if callable(loss):
            from diffinterface.linear_operators import hessian_operator

            J = self.jacobian
            self._loss_op = hessian_operator(loss, J.backend if not J._sparse_backend else J.backend.dense_backend,
                                             J._engine.copy_native(self._residuals()))

    def _residuals(self) -> Any:
        J = self.jacobian
        strategy, state = J._ensure_state()
        return strategy.value(state)

    def update(self, x: Any, *contexts: Any) -> "GaussNewtonOperator":
        """Move to a new point; returns ``self``."""
        self.jacobian.update(x, *contexts)
        if self._loss_op is not None:
            self._loss_op.update(self.jacobian._engine.copy_native(self._residuals()))
        return self

    @property
    def x(self) -> Any:
        return self.jacobian.x

    @property
    def residuals(self) -> Any:
        """``r`` at the current point, shaped like r(x)."""
        return self.jacobian.value

    @property
    def value(self) -> Any:
        """``0.5 |r|²`` (or ``loss(r)``) at the current point."""
        if self._loss_op is not None:
            return self._loss_op.value
        r = self.jacobian.value
        if self.jacobian._kind in (NUMPY, SCALAR):
            return 0.5 * float(np.vdot(r, r))
        return 0.5 * (r * r).sum()

    @property
    def gradient(self) -> Any:
        """``Jᵀ r`` (or ``Jᵀ ∇loss(r)``) at the current point, shaped like x."""
        J = self.jacobian
        if self._loss_op is not None:
            w = self._loss_op.gradient
        else:
            w = J._engine.copy_native(self._residuals())
        return J._like(J._vjp(J.ravel(w)), J._x_shape)

    def __matmul__(self, v: Any) -> Any:
        J = self.jacobian
        if self._loss_op is None:
            result = J._gauss_newton(v)
        else:
            result = J._vjp(self._loss_op @ J._jvp(v))
        if self.damping:
            result = result + self.damping * (np.asarray(v) if J._kind in (NUMPY, SCALAR) else v)
        return result

    def matvec(self, v: Any) -> Any:
        return self @ v

    def rmatvec(self, v: Any) -> Any:
        return self @ v

    @property
    def T(self) -> "GaussNewtonOperator":
        return self

    def aslinearoperator(self):
        """A symmetric ``scipy.sparse.linalg.LinearOperator`` on NumPy arrays."""
        J = self.jacobian
        return _scipy_operator(self.shape, self.dtype, self.__matmul__, self.__matmul__, J._kind, J._x)

    def todense(self) -> np.ndarray:
        """The ``(n, n)`` matrix at the current point (n products in one block)."""
        return np.asarray(self.aslinearoperator().matmat(np.eye(self.n, dtype=self.dtype)))

    def __repr__(self) -> str:
        return (f"GaussNewtonOperator(shape={self.shape}, dtype={self.dtype}, backend={self.backend!r}, "
                f"damping={self.damping}, strategy={self.jacobian.strategy})")


def gauss_newton_operator(r: Callable, backend: Any, x: Any, *contexts: Any, damping: float = 0.0,
                          loss: str | Callable = "squared") -> GaussNewtonOperator:
    """The Gauss-Newton matrix ``JᵀJ + damping·I`` of residuals ``r`` at ``x``, matrix-free.

    ``loss="squared"`` (default): the Hessian approximation of ``0.5 |r(x)|²``.
    ``loss`` a callable ``loss(r) -> scalar`` (written for the backend's
    library, convex in r): the generalized Gauss-Newton ``Jᵀ ∇²loss(r) J``,
    with ``∇²loss`` applied by the backend's Hessian operator.

    >>> import numpy as np, diffinterface as di
    >>> G = di.gauss_newton_operator(lambda x: x ** 2, di.AutoFiniteDiff(method="complex"), np.array([1.0, 2.0]))
    >>> G @ np.array([1.0, 1.0]), G.value, G.gradient
    (array([ 4., 16.]), 8.5, array([ 2., 16.]))
    """
    return GaussNewtonOperator(r, backend, x, *contexts, damping=damping, loss=loss)

"""SciPy glue: ``scipy.optimize.minimize`` keyword arguments sharing one cache per point."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from diffinterface.linear_operators import hessian_operator

__all__ = ["scipy_objective"]


class _SharedPoint:
    """One Hessian operator; moved only when SciPy asks about a new x."""

    def __init__(self, f: Callable, backend: Any, x0: Any, contexts: tuple) -> None:
        x0 = np.array(x0, dtype=np.result_type(x0, np.float64), copy=True)
        self.shape = x0.shape
        self.operator = hessian_operator(f, backend, x0, *contexts)
        self.x = x0
        self.evaluations = 1  # distinct points visited, x0 included

    def at(self, x: np.ndarray):
        x = np.asarray(x).reshape(self.shape)
        if not np.array_equal(x, self.x):
            self.x = x.copy()
            self.operator.update(self.x)
            self.evaluations += 1
        return self.operator


def scipy_objective(f: Callable, backend: Any, x0: Any, *contexts: Any) -> dict:
    """Keyword arguments ``fun``, ``jac``, ``hessp`` for ``scipy.optimize.minimize``.

    ``fun`` and ``jac`` at one x cost one value-and-gradient evaluation
    together, and ``hessp`` reuses the Hessian-operator state of that x
    (torch keeps the gradient graph, JAX a linearization, ...).  Works with
    Newton-CG, trust-ncg, trust-krylov and trust-constr.  ``x0`` and the
    points SciPy passes are NumPy arrays; the engine can be any.  With an
    ``AutoSparse`` backend the dictionary also holds ``hess`` (a
    ``scipy.sparse.csr_array`` from the compressed sparse Hessian; SciPy uses
    ``hess`` and ignores ``hessp`` when both are given, so drop one to choose).

    >>> import numpy as np, scipy.optimize, diffinterface as di
    >>> f = lambda x: np.sum((x - 1.0) ** 2) + np.sum(x ** 4)
    >>> res = scipy.optimize.minimize(x0=np.zeros(3), method="trust-krylov",
    ...                               **di.scipy_objective(f, di.AutoFiniteDiff(method="complex"), np.zeros(3)))
    >>> bool(res.success)
    True
    """
    point = _SharedPoint(f, backend, x0, contexts)

    def fun(x):
        return float(point.at(x).value)

    def jac(x):
        return np.asarray(point.at(x).gradient, dtype=float).reshape(-1)

    def hessp(x, p):
        return np.asarray(point.at(x) @ np.asarray(p, dtype=float).reshape(-1))

    fun.point = point  # for inspection (call counts, the operator)
    kwargs = {"fun": fun, "jac": jac, "hessp": hessp}
    if getattr(backend, "dense_backend", None) is not None:
        from diffinterface.sparse._autosparse import to_scipy

        def hess(x):
            return to_scipy(point.at(x).tosparse())

        kwargs["hess"] = hess
    return kwargs

"""SciPy glue for nonlinear least squares: ``scipy.optimize.least_squares``
keyword arguments whose ``fun`` and ``jac`` share one evaluation per point."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from diffinterface._errors import InvalidInputError, UnsupportedOperationError
from diffinterface.jacobian_operators import JacobianOperator
from diffinterface.sparse._autosparse import to_scipy

__all__ = ["scipy_least_squares", "DENSE_MAX_ENTRIES"]

#: with ``jac_kind="auto"``, Jacobians with at most this many entries (m * n)
#: are handed to SciPy as dense arrays (500 x 500, 2 MB in float64)
DENSE_MAX_ENTRIES = 250_000

_KINDS = ("auto", "operator", "dense", "sparse")


class _SharedPoints:
    """Two Jacobian operators sharing their preparation: the one whose
    ``LinearOperator`` SciPy holds (``jac``'s last point) stays put while the
    other follows the trial points ``fun`` is asked about; ``jac`` at a trial
    point reuses that point's evaluation."""

    def __init__(self, r: Callable, backend: Any, x0: Any, contexts: tuple) -> None:
        x0 = np.array(x0, dtype=np.result_type(np.asarray(x0), np.float64), copy=True)
        self.shape = x0.shape
        first = JacobianOperator(r, backend, x0, *contexts)
        self.operators = [first, first._fork()]
        self.xs = [x0, None]
        self.held = 0  # index of the operator SciPy may still be using
        self.evaluations = 1  # distinct points set up, x0 included

    def at(self, x: np.ndarray) -> JacobianOperator:
        x = np.asarray(x, dtype=self.xs[0].dtype).reshape(self.shape)
        for index in (self.held, 1 - self.held):
            if self.xs[index] is not None and np.array_equal(x, self.xs[index]):
                return self.operators[index]
        free = 1 - self.held
        self.xs[free] = x.copy()
        self.operators[free].update(self.xs[free])
        self.evaluations += 1
        return self.operators[free]

    def hold(self, operator: JacobianOperator) -> None:
        self.held = self.operators.index(operator)


def _choose_kind(kind: str, backend: Any, m: int, n: int) -> str:
    if kind not in _KINDS:
        raise InvalidInputError(f"jac_kind={kind!r}: use one of {', '.join(map(repr, _KINDS))}")
    sparse = getattr(backend, "dense_backend", None) is not None
    if kind == "auto":
        if sparse:
            return "sparse"
        return "dense" if m * n <= DENSE_MAX_ENTRIES else "operator"
    if kind == "sparse" and not sparse:
        raise UnsupportedOperationError(
            f"jac_kind='sparse' needs an AutoSparse backend, got {backend!r}: pass "
            f"di.AutoSparse({backend!r}) (sparsity detected and colored once, one compressed evaluation per "
            "point), or use jac_kind='operator' (matrix-free, tr_solver='lsmr') or 'dense'"
        )
    return kind


def scipy_least_squares(r: Callable, backend: Any, x0: Any, *contexts: Any, jac_kind: str = "auto") -> dict:
    """Keyword arguments ``fun`` and ``jac`` for ``scipy.optimize.least_squares``.

    ``fun(x)`` is the flattened residual vector ``r(x)``; ``jac(x)`` the
    Jacobian at the same point, from the same evaluation (one set-up of the
    Jacobian operator per point: JAX's linearization, torch's kept graph, ...).
    What ``jac`` returns (``jac_kind``):

    * ``"auto"`` (default): ``"sparse"`` with an ``AutoSparse`` backend; else a
      dense NumPy array when ``m * n <= DENSE_MAX_ENTRIES`` (250,000 entries;
      SciPy's exact trust-region solver can then be used), else a matrix-free
      ``LinearOperator``;
    * ``"operator"``: a ``scipy.sparse.linalg.LinearOperator`` (matvec = JVP,
      rmatvec = VJP): use ``tr_solver="lsmr"`` (SciPy picks it by default);
    * ``"dense"``: a dense ``(m, n)`` array (``min(m, n)`` products in one block);
    * ``"sparse"`` (``AutoSparse`` backends only): a ``scipy.sparse.csr_array``
      from the operator's ``tosparse()``: the sparsity is detected and colored
      once (on the first ``jac`` call), each ``jac`` is one compressed
      evaluation (``di.ncolors`` directions in one batched pass) at the point
      ``fun`` already set up; use ``tr_solver="lsmr"`` (SciPy's ``"exact"``
      solver takes dense Jacobians only: ``jac_kind="dense"``).  ``jac.prep()`` gives the
      AutoSparse prep (``di.ncolors``, ``di.sparsity_pattern``).

    Residuals and x of any shape are flattened (SciPy works with vectors).
    ``fun.point`` keeps the shared state for inspection (``evaluations``,
    ``operators``).

    >>> import numpy as np, scipy.optimize, diffinterface as di
    >>> r = lambda x: np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])
    >>> kwargs = di.scipy_least_squares(r, di.AutoFiniteDiff(method="complex"), np.array([-1.2, 1.0]),
    ...                                 jac_kind="operator")
    >>> res = scipy.optimize.least_squares(x0=np.array([-1.2, 1.0]), method="trf", tr_solver="lsmr", **kwargs)
    >>> np.allclose(res.x, 1.0)
    True
    """
    points = _SharedPoints(r, backend, x0, contexts)
    first = points.operators[0]
    kind = _choose_kind(jac_kind, backend, first.m, first.n)
    def fun(x):
        return np.array(points.at(x).value, dtype=first.dtype).reshape(-1)

    def jac(x):
        operator = points.at(x)
        if kind == "dense":
            return operator.todense()
        if kind == "sparse":
            return to_scipy(operator.tosparse())
        points.hold(operator)
        return operator.aslinearoperator()

    fun.point = points
    jac.kind = kind
    jac.prep = lambda: first.sparse_prep
    return {"fun": fun, "jac": jac}

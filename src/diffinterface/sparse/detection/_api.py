"""Public entry points: detectors and ``jacobian_sparsity`` / ``hessian_sparsity``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..._errors import InvalidInputError

__all__ = [
    "jacobian_sparsity",
    "hessian_sparsity",
    "TracerSparsityDetector",
    "TracerLocalSparsityDetector",
    "KnownSparsity",
]

_FRONTENDS = ("numpy", "jax", "torch")


@dataclass(frozen=True)
class TracerSparsityDetector:
    """Global detector: the pattern holds for every ``x``.

    Both branches of a data-dependent choice (``where``, ``cond``, ``max``) are
    joined; Python control flow on traced values raises an error that
    recommends :class:`TracerLocalSparsityDetector`.
    """

    local = False

    def jacobian_sparsity(self, f, x, *contexts, frontend=None):
        return _detect(f, x, contexts, self.local, hessian=False, frontend=frontend)

    def hessian_sparsity(self, f, x, *contexts, frontend=None):
        return _detect(f, x, contexts, self.local, hessian=True, frontend=frontend)


@dataclass(frozen=True)
class TracerLocalSparsityDetector(TracerSparsityDetector):
    """Local detector: valid at this ``x``; follows the branches taken.

    Knows value-dependent zeros of first derivatives: ``relu'(x) = 0`` for
    ``x < 0``, the losing operand of ``max``/``min``/``clip``, the untaken
    side of ``where``/``select``/``cond``.
    """

    local = True


class KnownSparsity:
    """A detector for a pattern the user already knows (any scipy/dense bool matrix)."""

    def __init__(self, pattern):
        pat = sp.csr_array(pattern if sp.issparse(pattern) else np.asarray(pattern), dtype=bool)
        pat.eliminate_zeros()
        self.pattern = pat

    def __repr__(self):
        return f"KnownSparsity(shape={self.pattern.shape}, nnz={self.pattern.nnz})"

    def _check(self, n, what):
        if self.pattern.shape[1] != n:
            raise InvalidInputError(
                f"KnownSparsity: the pattern has {self.pattern.shape[1]} columns but x has "
                f"{n} elements; pass the {what} pattern of shape (y.size, x.size)"
            )
        return self.pattern.copy()

    def jacobian_sparsity(self, f, x, *contexts, frontend=None):
        return self._check(int(np.prod(np.shape(x))), "Jacobian")

    def hessian_sparsity(self, f, x, *contexts, frontend=None):
        return self._check(int(np.prod(np.shape(x))), "Hessian")


def jacobian_sparsity(f, x, *contexts, detector=None, frontend=None):
    """Boolean ``scipy.sparse.csr_array`` (y.size, x.size): where the Jacobian may be nonzero.

    The front end follows ``x``: a ``jax.Array`` traces the jaxpr of ``f``, a
    ``torch.Tensor`` the ATen graph, anything else runs ``f`` on a NumPy tracer
    array; ``frontend="jax"`` traces a jax.numpy ``f`` given a NumPy ``x``.
    """
    detector = TracerSparsityDetector() if detector is None else detector
    return detector.jacobian_sparsity(f, x, *contexts, frontend=frontend)


def hessian_sparsity(f, x, *contexts, detector=None, frontend=None):
    """Symmetric boolean ``csr_array`` (x.size, x.size) of a scalar ``f``'s Hessian."""
    detector = TracerSparsityDetector() if detector is None else detector
    return detector.hessian_sparsity(f, x, *contexts, frontend=frontend)


def _unwrap(c):
    if type(c).__name__ in ("Constant", "Cache") and hasattr(c, "value"):
        return c.value
    return c


def _pick_frontend(x, frontend):
    if frontend is not None:
        if frontend not in _FRONTENDS:
            raise InvalidInputError(f"frontend must be one of {_FRONTENDS}, got {frontend!r}")
        return frontend
    mod = type(x).__module__
    if mod.startswith(("jax", "jaxlib")):
        return "jax"
    if mod.startswith("torch"):
        return "torch"
    return "numpy"


def _detect(f, x, contexts, local, hessian, frontend):
    contexts = tuple(_unwrap(c) for c in contexts)
    fe = _pick_frontend(x, frontend)
    if fe == "jax":
        from ._jax import trace_jax as run
    elif fe == "torch":
        from ._torch import trace_torch as run
    else:
        from ._numpy_tracer import trace_numpy as run
    ctx, (node, m) = run(f, x, contexts, hessian, local)
    trace = ctx.trace
    n = trace.n
    if hessian:
        if m != 1:
            raise InvalidInputError(
                f"hessian_sparsity needs a scalar f, but f returned {m} values; "
                "use jacobian_sparsity for vector-valued functions"
            )
        return trace.hessian_pattern(node)
    if node is None:
        return sp.csr_array((m, n), dtype=bool)
    return node.pat.to_csr()

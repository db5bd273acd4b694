"""Sparsity detection: global and local Jacobian and Hessian patterns.

One pattern algebra (:mod:`._algebra`) with three front ends: a NumPy /
array-API tracer array, a jaxpr interpreter and a PyTorch graph interpreter.
Importing this package imports neither JAX nor PyTorch.
"""

from . import _api
from ._algebra import UnknownOperationWarning
from ._api import (
    KnownSparsity,
    TracerLocalSparsityDetector,
    TracerSparsityDetector,
    hessian_sparsity,
    jacobian_sparsity,
)

__all__ = [*_api.__all__, "UnknownOperationWarning"]

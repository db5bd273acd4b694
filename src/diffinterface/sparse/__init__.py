"""Sparse derivatives: sparsity detection and graph coloring.

Importing this package imports neither JAX nor PyTorch.
"""

from diffinterface.sparse.coloring import (
    ColoringResult,
    GreedyColoringAlgorithm,
    check_coloring,
    coloring,
)
from diffinterface.sparse.detection import (
    KnownSparsity,
    TracerLocalSparsityDetector,
    TracerSparsityDetector,
    UnknownOperationWarning,
    hessian_sparsity,
    jacobian_sparsity,
)

__all__ = [
    "ColoringResult", "GreedyColoringAlgorithm", "check_coloring", "coloring",
    "KnownSparsity", "TracerLocalSparsityDetector", "TracerSparsityDetector",
    "UnknownOperationWarning", "hessian_sparsity", "jacobian_sparsity",
]

"""Graph coloring and decompression for sparse Jacobians and Hessians.

``coloring(pattern, structure, partition, algorithm)`` colors the columns
(rows) of a sparsity pattern so that the matrix can be recovered from a few
products with a seed matrix; ``ColoringResult.decompress`` recovers it.
Importing this module imports neither numba, JAX nor torch: the compiled
kernels load on the first coloring.
"""

from ._api import GreedyColoringAlgorithm, coloring
from ._check import check_coloring
from ._decompression import InvalidColoringError
from ._result import ColoringResult

__all__ = [
    "coloring",
    "check_coloring",
    "GreedyColoringAlgorithm",
    "ColoringResult",
    "InvalidColoringError",
]

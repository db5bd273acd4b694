"""The pattern structure and the coloring result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["ColoringResult", "PatternStructure", "index_dtype"]


def index_dtype(shape, nnz: int):
    """int32 where every index and count fits, else int64."""
    return np.int32 if max(*shape, nnz) < 2**31 - 1 else np.int64


@dataclass
class PatternStructure:
    """Canonical CSR structure of a pattern (sorted, no duplicates).

    Index arrays: int32 where ``index_dtype`` allows it, else int64.
    """

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    _csc: tuple | None = field(default=None, repr=False)
    _adj: tuple | None = field(default=None, repr=False)
    _sym: bool | None = field(default=None, repr=False)
    _adj_src: np.ndarray | None = field(default=None, repr=False)

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def rows(self) -> np.ndarray:
        """Row index of each stored entry."""
        return np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))

    def csc(self) -> tuple[np.ndarray, np.ndarray]:
        if self._csc is None:
            from ._kernels import transpose_structure

            m, n = self.shape
            self._csc = transpose_structure(m, n, self.indptr, self.indices)
        return self._csc

    def adjacency(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ptr, idx, slot in pattern) of the pattern less its diagonal."""
        ptr, idx = self.adjacency_graph()
        if self._adj_src is None:
            self._adj_src = np.flatnonzero(self.rows() != self.indices)
        return ptr, idx, self._adj_src

    def adjacency_graph(self) -> tuple[np.ndarray, np.ndarray]:
        """(ptr, idx) of the pattern less its diagonal (the pattern's arrays if none)."""
        if self._adj is None:
            from ._kernels import drop_diagonal

            self._adj = drop_diagonal(self.shape[0], self.indptr, self.indices)
        return self._adj

    def is_symmetric(self) -> bool:
        """Structural symmetry: every off-diagonal entry (i, j) has its (j, i)."""
        if self.shape[0] != self.shape[1]:
            return False
        if self._sym is None:
            from ._kernels import is_symmetric

            ptr, idx = self.adjacency_graph()
            self._sym = bool(is_symmetric(self.shape[0], ptr, idx))
        return self._sym

    def to_scipy(self) -> sp.csr_array:
        data = np.ones(self.nnz, dtype=np.bool_)
        return sp.csr_array((data, self.indices, self.indptr), shape=self.shape)


def color_groups(colors: np.ndarray, ncolors: int) -> list[np.ndarray]:
    """The indices of each color, in color order (negative colors left out)."""
    by_color = np.argsort(colors, kind="stable")
    skip = int(np.count_nonzero(colors < 0))
    counts = np.bincount(colors[colors >= 0], minlength=ncolors)
    return list(np.split(by_color[skip:], np.cumsum(counts)[:-1])) if ncolors else []


def seed_of(colors: np.ndarray, ncolors: int) -> sp.csr_array:
    """The 0/1 matrix with a one at (v, colors[v]) for each colored v."""
    colored = np.flatnonzero(colors >= 0)
    ones = np.ones(colored.size)
    return sp.csr_array((ones, (colored, colors[colored])), shape=(colors.size, ncolors))


class ColoringResult:
    """A coloring of a sparsity pattern, with what compression and decompression need.

    Attributes
    ----------
    colors: int array, one color per column (per row for partition="row");
        -1 for a vertex left out of the compression by post-processing.
    ncolors: number of colors (columns of the compressed matrix).
    groups: list of index arrays, the columns (rows) of each color.
    problem: "column", "row", "star" or "acyclic".
    order: the vertex order that gave this coloring.
    """

    def __init__(self, struct: PatternStructure, problem: str, colors: np.ndarray, *,
                 algorithm: Any, order: str, structure: str, partition: str) -> None:
        colors = np.asarray(colors, dtype=np.int64)
        colors.setflags(write=False)
        self._struct = struct
        self.problem = problem
        self.colors = colors
        self.ncolors = int(colors.max()) + 1 if colors.size else 0
        self.algorithm = algorithm
        self.order = order
        self.structure = structure
        self.partition = partition
        self.decompression = "substitution" if problem == "acyclic" else "direct"
        self._groups: list[np.ndarray] | None = None
        self._plan = None

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the pattern."""
        return self._struct.shape

    @property
    def compressed_shape(self) -> tuple[int, int]:
        """Shape ``decompress`` expects: (m, ncolors) by column, (ncolors, n) by row."""
        m, n = self.shape
        return (self.ncolors, n) if self.problem == "row" else (m, self.ncolors)

    def __repr__(self) -> str:
        return (
            f"ColoringResult(problem={self.problem!r}, shape={self.shape}, "
            f"ncolors={self.ncolors}, order={self.order!r})"
        )

    @property
    def groups(self) -> list[np.ndarray]:
        if self._groups is None:
            self._groups = color_groups(self.colors, self.ncolors)
        return self._groups

    def seed_matrix(self, sparse: bool = False):
        """The (n, ncolors) 0/1 compression matrix (rows: (m, ncolors)).

        By column: compressed = A @ seed.  By row: compressed = seed.T @ A.
        ``sparse=True`` gives a scipy.sparse.csr_array.
        """
        seed = seed_of(self.colors, self.ncolors)
        return seed if sparse else seed.toarray()

    def _plan_for_gather(self):
        """The decompression plan (built once); for direct problems it has ``gather``:
        the flat indices into the compressed matrix of the pattern's CSR values."""
        if self._plan is None:
            from ._decompression import build_plan

            self._plan = build_plan(self._struct, self.problem, self.colors, self.ncolors)
        return self._plan

    def decompress(self, compressed):
        """The sparse matrix with the pattern's structure from its compressed form.

        ``compressed``: NumPy, JAX or torch array of shape ``compressed_shape``.
        Returns a scipy.sparse.csr_array, a jax.experimental.sparse.BCOO or a
        torch sparse CSR tensor, on the input's device.
        """
        if self._plan is None:
            from ._decompression import build_plan

            self._plan = build_plan(self._struct, self.problem, self.colors, self.ncolors)
        return self._plan.apply(compressed, self.compressed_shape)

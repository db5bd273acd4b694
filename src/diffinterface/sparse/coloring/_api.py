"""Public entry points: ``GreedyColoringAlgorithm`` and ``coloring``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import scipy.sparse as sp

from ..._errors import EngineNotInstalledError, InvalidInputError, UnsupportedOperationError
from ._orders import ORDERS, TwoHopGraph, light_links, vertex_order
from ._result import ColoringResult, PatternStructure, index_dtype

__all__ = ["GreedyColoringAlgorithm", "coloring"]

_STRUCTURES = ("nonsymmetric", "symmetric")
_PARTITIONS = ("column", "row", "bidirectional")
_DECOMPRESSIONS = ("direct", "substitution")


@dataclass(frozen=True)
class GreedyColoringAlgorithm:
    """Greedy (first-fit) coloring in a vertex order.

    order: one of "natural", "largest_first", "smallest_last",
        "incidence_degree", "dynamic_largest_first", "random", or a tuple of
        them (each is tried; the coloring with the fewest colors is kept, the
        first one on ties).
    decompression: for symmetric patterns, "direct" gives a star coloring
        (each entry read from one compressed entry) and "substitution" an
        acyclic coloring (fewer colors, entries recovered by substitution).
        Nonsymmetric colorings are always direct.
    postprocessing: for star colorings, drop the colors that direct
        decompression never reads (their vertices get color -1 and are left
        out of the compression).
    seed: seed of the "random" order.
    """

    order: Union[str, tuple[str, ...]] = "largest_first"
    decompression: str = "direct"
    postprocessing: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        orders = self.order if isinstance(self.order, tuple) else (self.order,)
        if not orders or any(not isinstance(o, str) or o not in ORDERS for o in orders):
            raise InvalidInputError(
                f"GreedyColoringAlgorithm: order={self.order!r} is not a known order; "
                f"use one of {ORDERS} or a non-empty tuple of them."
            )
        if self.decompression not in _DECOMPRESSIONS:
            raise InvalidInputError(
                f"GreedyColoringAlgorithm: decompression={self.decompression!r}; "
                f"use 'direct' or 'substitution'."
            )
        if not isinstance(self.postprocessing, bool):
            raise InvalidInputError(
                "GreedyColoringAlgorithm: postprocessing must be True or False, "
                f"got {self.postprocessing!r}."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise InvalidInputError(
                f"GreedyColoringAlgorithm: seed must be an integer, got {self.seed!r}."
            )

    @property
    def orders(self) -> tuple[str, ...]:
        return self.order if isinstance(self.order, tuple) else (self.order,)


def _kernels():
    try:
        from . import _kernels
    except ImportError as exc:  # pragma: no cover - numba is an optional dependency
        raise EngineNotInstalledError(
            "coloring needs numba for its compiled kernels; install it with "
            "`pip install numba` (or `pip install diffinterface[sparse]`)."
        ) from exc
    return _kernels


def _structure(pattern) -> PatternStructure:
    """Canonical CSR structure (sorted, no duplicates) of ``pattern``.

    Index arrays are int32 when they fit (``index_dtype``): SciPy's own
    arrays are used as they are, without a copy, and the kernels move half
    the bytes.
    """
    if isinstance(pattern, np.ndarray):
        if pattern.ndim != 2:
            raise InvalidInputError(
                f"coloring: pattern must be 2-D, got an array of shape {pattern.shape}; "
                "pass a scipy.sparse matrix or array."
            )
        pattern = sp.csr_array(pattern != 0)
    if not sp.issparse(pattern):
        raise InvalidInputError(
            f"coloring: pattern must be a scipy.sparse matrix or array, got "
            f"{type(pattern).__name__}; convert it with scipy.sparse.csr_array(...)."
        )
    if pattern.ndim != 2:
        raise InvalidInputError(f"coloring: pattern must be 2-D, got shape {pattern.shape}.")
    a = pattern.tocsr()
    if not a.has_canonical_format:
        a = a.copy()
        a.sum_duplicates()
    m, n = a.shape
    dtype = index_dtype(a.shape, a.nnz)
    return PatternStructure(
        (int(m), int(n)), np.asarray(a.indptr, dtype=dtype), np.asarray(a.indices, dtype=dtype)
    )


_BITMAP_ROWS = 64  # rows at least this long keep a bitmap of their colors
_BITMAP_WORDS = 2**24  # 128 MiB of bitmaps at most
_WORDS_MAX = 8  # every row keeps a bitmap when colors stay below 64 * _WORDS_MAX


def _bitmap_rows(row_sizes: np.ndarray, n_words: int) -> np.ndarray:
    """Slot of each row kept as a bitmap of used colors (-1 for scanned rows).

    Every row, if the bitmaps fit in the budget (then a column costs a few
    word operations per row instead of a visit to each column of its rows);
    else the rows of at least _BITMAP_ROWS entries, or fewer, longer ones.
    """
    threshold = 0
    while int(np.count_nonzero(row_sizes >= threshold)) * n_words > _BITMAP_WORDS:
        threshold = max(2 * threshold, _BITMAP_ROWS)
    heavy = row_sizes >= threshold
    slot = np.full(row_sizes.size, -1, dtype=np.int64)
    slot[heavy] = np.arange(int(heavy.sum()), dtype=np.int64)
    return slot


def _distance2(csr_ptr, csr_idx, csc_ptr, csc_idx, n_cols: int, orders, seed):
    """Column coloring from the CSC (columns -> rows) and CSR (rows -> columns) structure.

    Colors are bounded by 1 + the largest number of neighbors (the largest
    degree once the order computed the degrees).  Below 64 * _WORDS_MAX
    colors, every row keeps a bitmap of its colors (``greedy_distance2_words``);
    above, the long rows do and the others are scanned (``greedy_distance2``).
    """
    k = _kernels()
    row_sizes = np.diff(csr_ptr)
    n_rows = row_sizes.size
    graph = TwoHopGraph(n_cols, csc_ptr, csc_idx, csr_ptr, csr_idx,
                        light_links(row_sizes, csr_idx.size))
    for name in orders:
        natural = name == "natural"
        order = _NO_ORDER if natural else vertex_order(name, graph, seed)
        bound = min(n_cols, graph.neighbor_bound() + 1)  # colors
        n_words = bound // 64 + 1
        if n_words <= _WORDS_MAX and n_words * n_rows <= _BITMAP_WORDS:
            colors, _ = k.greedy_distance2_words(
                n_cols, n_rows, csc_ptr, csc_idx, order, natural, n_words
            )
        else:
            if natural:
                order = vertex_order(name, graph, seed)
            slot = _bitmap_rows(row_sizes, n_words)
            n_heavy = int((slot >= 0).sum())
            colors = k.greedy_distance2(
                n_cols, csc_ptr, csc_idx, csr_ptr, csr_idx, order, slot, n_heavy, n_words
            )
        yield name, colors


_NO_ORDER = np.zeros(1, dtype=np.int64)


def _symmetric(struct: PatternStructure, orders, seed, acyclic: bool):
    _kernels()
    from . import _star_acyclic as k

    n = struct.shape[0]
    ptr, idx = struct.adjacency_graph()
    graph = TwoHopGraph.adjacency(n, ptr, idx)
    cap = k.hash_capacity(ptr)
    kernel = k.acyclic_coloring if acyclic else k.star_coloring
    for name in orders:
        order = vertex_order(name, graph, seed)
        yield name, kernel(n, ptr, idx, order, cap)


def _bidirectional(struct: PatternStructure, structure: str, algorithm) -> ColoringResult:
    if structure == "symmetric":
        raise InvalidInputError(
            "coloring: symmetric patterns are colored by column; use partition='column'."
        )
    if algorithm.decompression == "substitution":
        raise UnsupportedOperationError(
            "coloring: partition='bidirectional' supports decompression='direct' only "
            "(star bicoloring)."
        )
    from ._bicoloring import BicoloringResult, bicolor

    def color_lines(partition):
        alg = GreedyColoringAlgorithm(order=algorithm.order, seed=algorithm.seed)
        return lambda b: coloring(b, partition=partition, algorithm=alg).colors

    name, hcolors = bicolor(
        struct,
        lambda h: _symmetric(h, algorithm.orders, algorithm.seed, acyclic=False),
        color_lines("row"),
        color_lines("column"),
    )
    return BicoloringResult(struct, hcolors, algorithm=algorithm, order=name,
                            structure=structure, partition="bidirectional")


def coloring(
    pattern,
    structure: str = "nonsymmetric",
    partition: str = "column",
    algorithm: GreedyColoringAlgorithm | None = None,
) -> ColoringResult:
    """Color a sparsity pattern for compressed differentiation.

    pattern: scipy.sparse matrix or array (only its stored entries count; their
        values are ignored) or a dense 2-D NumPy array (its nonzeros count).
    structure: "nonsymmetric" (Jacobians) or "symmetric" (Hessians; the
        pattern must list both triangles).
    partition: "column" (compressed = A @ seed) or "row" (compressed =
        seed.T @ A) for nonsymmetric patterns; "column" for symmetric ones;
        "bidirectional" (nonsymmetric, direct): a star bicoloring, some rows
        and some columns compressed (see ``BicoloringResult``); its colors
        are always post-processed.

    Problems: nonsymmetric/column and /row: partial distance-2 coloring of the
    columns or rows; nonsymmetric/bidirectional: star bicoloring;
    symmetric/column: star coloring with
    ``decompression="direct"`` and acyclic coloring with "substitution".
    """
    if algorithm is None:
        algorithm = GreedyColoringAlgorithm()
    if not isinstance(algorithm, GreedyColoringAlgorithm):
        raise InvalidInputError(
            f"coloring: algorithm must be a GreedyColoringAlgorithm, got "
            f"{type(algorithm).__name__}; use di.GreedyColoringAlgorithm(order=...)."
        )
    if structure not in _STRUCTURES:
        raise InvalidInputError(
            f"coloring: structure={structure!r}; use 'nonsymmetric' or 'symmetric'."
        )
    if partition not in _PARTITIONS:
        raise InvalidInputError(
            f"coloring: partition={partition!r}; use 'column', 'row' or 'bidirectional'."
        )
    return _color_structure(_structure(pattern), structure, partition, algorithm)


def build_structure(pattern, structure: str = "nonsymmetric", partition: str = "column"):
    """The structure ``coloring`` builds before ordering and coloring (for benchmarks).

    The canonical CSR structure, with its CSC structure (column / row
    partitions) or its adjacency structure and symmetry check (symmetric
    patterns) already built and cached: ``_color_structure`` on it times the
    ordering and coloring alone, which is what ColPack's timings cover.
    """
    struct = _structure(pattern)
    if structure == "symmetric":
        struct.is_symmetric()
    elif partition != "bidirectional":
        struct.csc()
    return struct


def _color_structure(struct: PatternStructure, structure: str, partition: str, algorithm):
    m, n = struct.shape
    if partition == "bidirectional":
        return _bidirectional(struct, structure, algorithm)
    if structure == "symmetric":
        if partition != "column":
            raise InvalidInputError(
                "coloring: symmetric patterns are colored by column; use partition='column'."
            )
        if m != n:
            raise InvalidInputError(
                f"coloring: structure='symmetric' needs a square pattern, got shape {struct.shape}."
            )
        if not struct.is_symmetric():
            raise InvalidInputError(
                "coloring: structure='symmetric' needs a structurally symmetric pattern "
                "(both triangles stored); pass pattern + pattern.T, or use "
                "structure='nonsymmetric'."
            )
        acyclic = algorithm.decompression == "substitution"
        problem = "acyclic" if acyclic else "star"
        candidates = _symmetric(struct, algorithm.orders, algorithm.seed, acyclic)
    else:
        csc_ptr, csc_idx = struct.csc()
        if partition == "column":
            problem = "column"
            candidates = _distance2(
                struct.indptr, struct.indices, csc_ptr, csc_idx, n, algorithm.orders,
                algorithm.seed,
            )
        else:
            problem = "row"
            candidates = _distance2(
                csc_ptr, csc_idx, struct.indptr, struct.indices, m, algorithm.orders,
                algorithm.seed,
            )
    best = None
    for name, colors in candidates:
        ncolors = int(colors.max()) + 1 if colors.size else 0
        if best is None or ncolors < best[2]:
            best = (name, colors, ncolors)
    name, colors, _ = best
    if problem == "star" and algorithm.postprocessing:
        from ._decompression import postprocess_star

        colors = postprocess_star(struct, colors)
    return ColoringResult(
        struct, problem, colors, algorithm=algorithm, order=name,
        structure=structure, partition=partition,
    )

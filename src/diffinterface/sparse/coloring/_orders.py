"""Vertex orders for greedy coloring.

Degrees are those of the graph being colored: the column-intersection graph
(distance-2 in the bipartite graph) for column and row colorings, the
adjacency graph (diagonal excluded) for star and acyclic colorings, as in
ColPack.  Distinct neighbors are counted exactly unless that would cost more
than ``max(5e7, 32 * nnz)`` steps (sum of squared row lengths); then the
longest rows are treated as cliques of their length whose contribution to the
degrees is fixed (see ``_kernels.two_hop_degrees``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ORDERS = (
    "natural",
    "largest_first",
    "smallest_last",
    "incidence_degree",
    "dynamic_largest_first",
    "random",
)
_DYNAMIC = {"smallest_last": 0, "incidence_degree": 1, "dynamic_largest_first": 2}


def light_links(sizes: np.ndarray, nnz: int) -> np.ndarray:
    """Mask of the links (rows) whose members are scanned pairwise.

    All rows are, unless the sum of squared row lengths exceeds the budget;
    then every row at least as long as the first one that does not fit in it
    (rows sorted by length) is heavy.
    """
    sq = sizes.astype(np.float64) ** 2
    budget = max(5e7, 32.0 * nnz)
    if float(sq.sum()) <= budget:
        return np.ones(sizes.size, dtype=np.bool_)
    by_size = np.sort(sizes)
    fits = int(np.searchsorted(np.cumsum(by_size.astype(np.float64) ** 2), budget, side="right"))
    return sizes < by_size[fits]


@dataclass
class TwoHopGraph:
    """Neighbors of v: union over links i of v (ptr_a/idx_a) of ptr_b/idx_b[i], less v."""

    n: int
    ptr_a: np.ndarray
    idx_a: np.ndarray
    ptr_b: np.ndarray
    idx_b: np.ndarray
    light: np.ndarray
    distance1: bool = False
    _degrees: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def adjacency(cls, n: int, ptr: np.ndarray, idx: np.ndarray) -> TwoHopGraph:
        ident_ptr = np.arange(n + 1, dtype=ptr.dtype)
        ident = np.arange(n, dtype=idx.dtype)
        return cls(n, ptr, idx, ident_ptr, ident, np.ones(n, dtype=np.bool_), distance1=True)

    def degrees(self) -> np.ndarray:
        if self._degrees is None:
            from ._kernels import two_hop_degrees

            self._degrees = two_hop_degrees(
                self.n, self.ptr_a, self.idx_a, self.ptr_b, self.idx_b, self.light
            )
        return self._degrees


def vertex_order(name: str, graph: TwoHopGraph, seed: int) -> np.ndarray:
    """The vertices of ``graph`` in the order named ``name``."""
    n = graph.n
    if name == "natural":
        return np.arange(n, dtype=np.int64)
    if name == "random":
        return np.random.default_rng(seed).permutation(n).astype(np.int64)
    deg = graph.degrees()
    if name == "largest_first":
        return np.argsort(-deg, kind="stable").astype(np.int64)
    from ._kernels import dynamic_order

    # ColPack's distance-1 incidence-degree order starts at the first vertex of
    # largest degree; its distance-2 one at the last vertex
    first = int(np.argmax(deg)) if name == "incidence_degree" and graph.distance1 and n else -1
    return dynamic_order(
        n, graph.ptr_a, graph.idx_a, graph.ptr_b, graph.idx_b, graph.light, deg, _DYNAMIC[name],
        first,
    )

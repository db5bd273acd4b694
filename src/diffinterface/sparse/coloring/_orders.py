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


def light_links(sizes: np.ndarray, nnz: int) -> np.ndarray | None:
    """Mask of the links (rows) whose members are scanned pairwise; None: all of them.

    All rows are, unless the sum of squared row lengths exceeds the budget;
    then every row at least as long as the first one that does not fit in it
    (rows sorted by length) is heavy.
    """
    budget = max(5e7, 32.0 * nnz)
    if not sizes.size or float(sizes.max()) ** 2 * sizes.size <= budget:
        return None  # (cheap test first: no squares summed)
    sq = sizes.astype(np.float64) ** 2
    if float(sq.sum()) <= budget:
        return None
    by_size = np.sort(sizes)
    fits = int(np.searchsorted(np.cumsum(by_size.astype(np.float64) ** 2), budget, side="right"))
    return sizes < by_size[fits]


_NO_MASK = np.ones(1, dtype=np.bool_)


@dataclass
class TwoHopGraph:
    """Neighbors of v: union over links i of v (ptr_a/idx_a) of ptr_b/idx_b[i], less v."""

    n: int
    ptr_a: np.ndarray
    idx_a: np.ndarray
    ptr_b: np.ndarray
    idx_b: np.ndarray
    light: np.ndarray | None  # None: every link is light
    distance1: bool = False
    _degrees: np.ndarray | None = field(default=None, repr=False)
    _bound: int | None = field(default=None, repr=False)

    @classmethod
    def adjacency(cls, n: int, ptr: np.ndarray, idx: np.ndarray) -> TwoHopGraph:
        """The graph whose neighbors of v are idx[ptr[v]:ptr[v+1]] (distinct, v excluded)."""
        return cls(n, ptr, idx, ptr, idx, None, distance1=True)

    @property
    def all_light(self) -> bool:
        return self.light is None

    @property
    def light_mask(self) -> np.ndarray:
        """The mask for the kernels (a dummy, never read, when every link is light)."""
        return _NO_MASK if self.light is None else self.light

    def degrees(self) -> np.ndarray:
        if self._degrees is None:
            if self.distance1:
                self._degrees = np.diff(self.ptr_a).astype(np.int32)
            else:
                from ._kernels import two_hop_degrees

                self._degrees = two_hop_degrees(
                    self.n, self.ptr_a, self.idx_a, self.ptr_b, self.idx_b, self.light_mask,
                    self.all_light,
                )
        return self._degrees

    def neighbor_bound(self) -> int:
        """An upper bound on the number of neighbors of any vertex (0 if no vertex)."""
        if self._bound is None:
            if self._degrees is not None or self.distance1:
                deg = self.degrees()
                self._bound = int(deg.max()) if deg.size else 0
            elif self.n == 0:
                self._bound = 0
            else:
                sizes = np.diff(self.ptr_b)
                links = np.diff(self.ptr_a)
                # cheap: (most links of a vertex) x (largest link - 1), else exact
                cheap = int(links.max()) * max(int(sizes.max()) - 1, 0) if sizes.size else 0
                if cheap >= 64:
                    from ._kernels import neighbor_bound

                    cheap = int(neighbor_bound(self.n, self.ptr_a, self.idx_a, sizes))
                self._bound = min(cheap, self.n - 1)
        return self._bound


def vertex_order(name: str, graph: TwoHopGraph, seed: int) -> np.ndarray:
    """The vertices of ``graph`` in the order named ``name``."""
    n = graph.n
    if name == "natural":
        return np.arange(n, dtype=np.int64)
    if name == "random":
        return np.random.default_rng(seed).permutation(n).astype(np.int64)
    if name == "largest_first":
        return np.argsort(-graph.degrees(), kind="stable").astype(np.int64)
    from ._kernels import dynamic_order

    mode = _DYNAMIC[name]
    # the distance-2 incidence-degree order needs no degrees: keys start at 0
    need_deg = mode != 1 or graph.distance1
    deg = graph.degrees() if need_deg else np.zeros(1, dtype=np.int32)
    # ColPack's distance-1 incidence-degree order starts at the first vertex of
    # largest degree; its distance-2 one at the last vertex
    first = int(np.argmax(deg)) if name == "incidence_degree" and graph.distance1 and n else -1
    return dynamic_order(
        n, graph.ptr_a, graph.idx_a, graph.ptr_b, graph.idx_b, graph.light_mask, graph.all_light,
        graph.distance1, deg, mode, first, max(graph.neighbor_bound(), 0),
    )

"""Bidirectional partition: star bicoloring of a nonsymmetric pattern.

The columns and rows of A are the vertices of the bipartite graph whose
adjacency is the symmetric matrix H = [[0, A^T], [A, 0]] (columns first).  A
star coloring of H, post-processed so that the colors direct decompression
never reads are dropped, colors some columns and some rows (Coleman & Verma
1998; Gebremedhin, Manne & Pothen 2005, section 6).  Then A is recovered from
B_rows = S_r^T A (row products) and B_cols = A S_c (column products): entry
(i, j) is B_cols[i, color(j)] or B_rows[color(i), j].
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..._errors import InvalidInputError
from ._decompression import DecompressionPlan, postprocess_star, star_gather_or_raise
from ._result import ColoringResult, PatternStructure, color_groups, index_dtype, seed_of


def augmented(struct: PatternStructure) -> PatternStructure:
    """Structure of H = [[0, A^T], [A, 0]]: columns of A, then its rows."""
    m, n = struct.shape
    csc_ptr, csc_idx = struct.csc()
    dtype = index_dtype((m + n, m + n), 2 * struct.nnz)
    ptr = np.concatenate([csc_ptr, np.int64(csc_ptr[-1]) + struct.indptr[1:]]).astype(dtype)
    idx = np.concatenate([csc_idx.astype(dtype) + dtype(n), struct.indices]).astype(dtype)
    return PatternStructure((m + n, m + n), ptr, idx)


def split_colors(hcolors: np.ndarray, n: int) -> np.ndarray:
    """Renumber: column colors 0..kc-1, then row colors kc..kc+kr-1; -1 stays."""
    out = np.full(hcolors.size, -1, dtype=np.int64)
    k = 0
    for part in (slice(0, n), slice(n, None)):
        c = hcolors[part]
        used = np.unique(c[c >= 0])
        lookup = np.full(int(hcolors.max()) + 2 if hcolors.size else 1, -1, dtype=np.int64)
        lookup[used] = np.arange(k, k + used.size)
        out[part] = np.where(c >= 0, lookup[c], -1)
        k += used.size
    return out


def _split_candidates(a: sp.csr_array, color_rows, color_cols):
    """Dense rows by row products, the rest by column products, for a few cut-offs.

    Yields (column colors, row colors), -1 for a vertex in no product.
    ``color_rows(b)`` / ``color_cols(b)`` color the rows / columns of a submatrix b.
    """
    m, n = a.shape
    deg = np.diff(a.indptr)
    ranked = np.sort(deg)[::-1]
    cutoffs = {int(ranked[k]) for k in (0, 1, 3, 7, 15, 31, 63) if k < m and ranked[k] > 1}
    for cutoff in sorted(cutoffs, reverse=True) + [None]:
        dense = deg >= cutoff if cutoff is not None else np.zeros(m, dtype=bool)
        rest = a[~dense]
        cols = np.where(np.diff(rest.tocsc().indptr) > 0, color_cols(rest), -1)
        rows = np.full(m, -1, dtype=np.int64)
        if dense.any():
            rows[dense] = color_rows(a[dense])
        yield cols, rows


def bicolor(struct: PatternStructure, candidates, color_rows, color_cols) -> tuple[str, np.ndarray]:
    """The bidirectional coloring with the fewest products among the candidates.

    Candidates: post-processed star colorings of H in each order, and the
    splits "dense rows by row products, the rest by column products" and its
    transpose.  Returns the order (or split) name and the colors of H,
    numbered by ``split_colors``.
    """
    m, n = struct.shape
    hstruct = augmented(struct)
    found = []
    for name, colors in candidates(hstruct):
        found.append((name, split_colors(postprocess_star(hstruct, colors), n)))
    a = struct.to_scipy()
    for cols, rows in _split_candidates(a, color_rows, color_cols):
        found.append(("split_rows", split_colors(np.concatenate([cols, rows]), n)))
    for rows, cols in _split_candidates(sp.csr_array(a.T), color_rows, color_cols):
        found.append(("split_columns", split_colors(np.concatenate([cols, rows]), n)))
    totals = [int(c.max()) + 1 if c.size else 0 for _, c in found]
    return found[int(np.argmin(totals))]


class BicoloringResult(ColoringResult):
    """A bidirectional coloring: some columns and some rows are compressed.

    ``colors``: the column colors (-1: column in no column product);
    ``row_colors``: the row colors (-1: row in no row product).
    ``ncolors`` = ``ncolors_columns + ncolors_rows`` products in all;
    ``groups``: the column groups, then the row groups.
    ``seed_matrix()`` -> (S_r (m, ncolors_rows), S_c (n, ncolors_columns));
    ``decompress((B_rows, B_cols))`` with B_rows = S_r.T @ A, B_cols = A @ S_c.
    """

    def __init__(self, struct: PatternStructure, hcolors: np.ndarray, **kw) -> None:
        m, n = struct.shape
        cols = hcolors[:n]
        self.ncolors_columns = int(cols.max()) + 1 if cols.size else 0
        super().__init__(struct, "bidirectional", cols, **kw)
        rows = hcolors[n:]
        self.row_colors = np.where(rows >= 0, rows - self.ncolors_columns, -1)
        self.row_colors.setflags(write=False)
        self.ncolors_rows = int(self.row_colors.max()) + 1 if rows.size else 0
        self.ncolors = self.ncolors_columns + self.ncolors_rows
        self._hcolors = hcolors

    @property
    def compressed_shape(self):
        m, n = self.shape
        return ((self.ncolors_rows, n), (m, self.ncolors_columns))

    @property
    def groups(self) -> list[np.ndarray]:
        if self._groups is None:
            self._groups = color_groups(self.colors, self.ncolors_columns) + color_groups(
                self.row_colors, self.ncolors_rows
            )
        return self._groups

    def seed_matrix(self, sparse: bool = False):
        seeds = (seed_of(self.row_colors, self.ncolors_rows), seed_of(self.colors, self.ncolors_columns))
        return seeds if sparse else tuple(s.toarray() for s in seeds)

    def decompress(self, compressed):
        """A from (B_rows, B_cols) = (S_r.T @ A, A @ S_c)."""
        if not isinstance(compressed, (tuple, list)) or len(compressed) != 2:
            raise InvalidInputError(
                "decompress: a bidirectional coloring needs (B_rows, B_cols) = "
                "(S_r.T @ A, A @ S_c), with (S_r, S_c) = result.seed_matrix()."
            )
        return self._plan_for_gather().apply(tuple(compressed), self.compressed_shape)

    def _plan_for_gather(self):
        """The plan; its ``gather`` indexes concat(B_cols.ravel(), B_rows.ravel())."""
        if self._plan is None:
            self._plan = DecompressionPlan(self._struct, gather=self._gather())
        return self._plan

    def check(self) -> None:
        """Raise unless every entry can be read from the row or column products."""
        hstruct = augmented(self._struct)
        star_gather_or_raise(hstruct, self._hcolors, self.ncolors)

    def _gather(self) -> np.ndarray:
        """Flat index of each entry into concat(B_cols.ravel(), B_rows.ravel())."""
        m, n = self.shape
        hstruct = augmented(self._struct)
        g = star_gather_or_raise(hstruct, self._hcolors, self.ncolors)[self._struct.nnz:]
        vertex, color = np.divmod(g, max(self.ncolors, 1))
        kc = self.ncolors_columns
        from_cols = vertex >= n  # read at row vertex n + i: B_cols[i, color]
        return np.where(from_cols, (vertex - n) * kc + color, m * kc + (color - kc) * n + vertex)

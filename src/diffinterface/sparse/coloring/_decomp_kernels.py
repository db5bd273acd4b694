"""Compiled (numba) set-up kernels for decompression and for checking colorings."""

from __future__ import annotations

import numpy as np

from ._kernels import _jit, starts, twin_slots


@_jit
def first_repeated_color(n_rows, indptr, indices, colors, n_colors):
    """First slot whose column repeats a color already met in its row, or -1.

    Columns with a negative color (not compressed) are skipped.
    """
    stamp = np.full(n_colors + 1, -1, np.int64)
    for i in range(n_rows):
        for k in range(indptr[i], indptr[i + 1]):
            c = colors[indices[k]]
            if c < 0:
                continue
            if stamp[c] == i:
                return k
            stamp[c] = i
    return -1


@_jit
def unique_in_row(n_rows, indptr, indices, colors, n_colors):
    """For each slot (i, j): j is colored and the only column of its color in row i."""
    stamp = np.full(n_colors + 1, -1, np.int64)
    cnt = np.zeros(n_colors + 1, np.int64)
    uniq = np.zeros(indices.size, np.bool_)
    for i in range(n_rows):
        for k in range(indptr[i], indptr[i + 1]):
            c = colors[indices[k]]
            if c >= 0:
                if stamp[c] != i:
                    stamp[c] = i
                    cnt[c] = 0
                cnt[c] += 1
        for k in range(indptr[i], indptr[i + 1]):
            c = colors[indices[k]]
            uniq[k] = c >= 0 and cnt[c] == 1
    return uniq


@_jit
def star_gather(n, indptr, indices, colors, n_colors):
    """Flat index into the compressed matrix B (n x n_colors) of each pattern slot.

    Entry (i, j) is read as B[i, color[j]] when j is the only column of its
    color in row i, else as B[j, color[i]] when i is the only one of its color
    in row j; -1 marks an entry that neither recovers (an invalid coloring).
    """
    uniq = unique_in_row(n, indptr, indices, colors, n_colors)
    twin = twin_slots(n, indptr, indices)
    gather = np.full(indices.size, -1, np.int64)
    for i in range(n):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if uniq[k]:
                gather[k] = i * n_colors + colors[j]
            elif j != i and twin[k] >= 0 and uniq[twin[k]]:
                gather[k] = j * n_colors + colors[i]
    return gather


@_jit
def needed_star_colors(n, indptr, indices, colors, n_colors):
    """Colors that direct decompression must read (star post-processing).

    The diagonal forces its color; an edge readable from one side only forces
    that side's color; an edge readable from both sides then uses a color
    already needed if it can, else the color of its column.
    """
    uniq = unique_in_row(n, indptr, indices, colors, n_colors)
    twin = twin_slots(n, indptr, indices)
    used = np.zeros(n_colors + 1, np.bool_)
    for i in range(n):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j == i:
                used[colors[i]] = True
            elif j > i and twin[k] >= 0 and uniq[k] != uniq[twin[k]]:
                used[colors[j] if uniq[k] else colors[i]] = True
    for i in range(n):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j > i and twin[k] >= 0 and uniq[k] and uniq[twin[k]]:
                if not (used[colors[i]] or used[colors[j]]):
                    used[colors[j]] = True
    return used[:n_colors]


@_jit
def peel_trees(n, ptr, idx, colors, n_colors):
    """Substitution schedule of an acyclic coloring: peel the 2-colored trees.

    ``ptr, idx``: adjacency without diagonal, sorted rows.  The 2-colored tree
    node of vertex i in the tree of colors (color[i], b) is the pair (i, b):
    exactly the entry B[i, b] of the compressed matrix.  In each round every
    current leaf (i, b) reads its edge to its parent j as R[i, b] and
    subtracts it from R[j, color[i]].  Returns the round and adjacency slot of
    each step (in round order), the twin of each slot, and whether every edge
    was peeled (false when a 2-colored cycle exists).
    """
    nnz = idx.size
    twin = twin_slots(n, ptr, idx)
    inst = np.empty(nnz, np.int64)
    stamp = np.full(n_colors + 1, -1, np.int64)
    iid = np.empty(n_colors + 1, np.int64)
    ni = 0
    for i in range(n):
        for k in range(ptr[i], ptr[i + 1]):
            c = colors[idx[k]]
            if stamp[c] != i:
                stamp[c] = i
                iid[c] = ni
                ni += 1
            inst[k] = iid[c]
    iptr = np.zeros(ni + 1, np.int64)
    for k in range(nnz):
        iptr[inst[k] + 1] += 1
    for t in range(ni):
        iptr[t + 1] += iptr[t]
    islot = np.empty(nnz, np.int64)
    pos = starts(iptr)
    for k in range(nnz):
        islot[pos[inst[k]]] = k
        pos[inst[k]] += 1
    rdeg = np.empty(ni, np.int64)
    for t in range(ni):
        rdeg[t] = iptr[t + 1] - iptr[t]
    removed = np.zeros(nnz, np.bool_)
    st_level = np.empty(nnz // 2 + 1, np.int64)
    st_slot = np.empty(nnz // 2 + 1, np.int64)
    cur = np.empty(ni, np.int64)
    ncur = 0
    for t in range(ni):
        if rdeg[t] == 1:
            cur[ncur] = t
            ncur += 1
    nxt = np.empty(ni, np.int64)
    nsteps = 0
    level = 0
    while ncur > 0:
        nnxt = 0
        for q in range(ncur):
            leaf = cur[q]
            if rdeg[leaf] != 1:
                continue
            k = -1
            for t in range(iptr[leaf], iptr[leaf + 1]):
                if not removed[islot[t]]:
                    k = islot[t]
                    break
            if k < 0 or twin[k] < 0:
                break
            removed[k] = True
            removed[twin[k]] = True
            rdeg[leaf] = 0
            par = inst[twin[k]]
            rdeg[par] -= 1
            if rdeg[par] == 1:
                nxt[nnxt] = par
                nnxt += 1
            st_level[nsteps] = level
            st_slot[nsteps] = k
            nsteps += 1
        cur, nxt = nxt, cur
        ncur = nnxt
        level += 1
    ok = 2 * nsteps == nnz
    return st_level[:nsteps], st_slot[:nsteps], twin, ok

"""Compiled (numba) kernels for graph coloring.

Index arrays are int32 whenever the pattern allows it (``_api._structure``:
fewer than 2**31 - 1 rows, columns and nonzeros), int64 beyond, so in
practice each kernel compiles once and is cached on disk (``cache=True``)
across processes.  Work arrays indexed by vertex are int32 (vertex counts
beyond 2**31 do not fit in memory anyway): half the memory traffic.

Graphs are given in a "two-hop" form: the neighbors of vertex ``v`` are the
union, over the *links* ``i`` in ``idx_a[ptr_a[v]:ptr_a[v+1]]``, of
``idx_b[ptr_b[i]:ptr_b[i+1]]``, minus ``v`` itself.  With A = the pattern's
columns (CSC) and B = its rows (CSR) this is the column-intersection graph
(distance-2 in the bipartite graph) without ever building it; with B = the
identity it is the ordinary adjacency graph.

Algorithms: greedy distance-2 coloring (Gebremedhin, Manne & Pothen 2005) and
smallest-last / incidence-degree orders (Matula & Beck 1983, Coleman & Moré
1983).  Star and acyclic colorings are in ``_star_acyclic``.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

_jit = nb.njit(cache=True, nogil=True)
# helpers allocate nothing: without NRT, passing arrays to them costs no refcounting
_inline = nb.njit(cache=True, nogil=True, _nrt=False)

_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ONE = np.uint64(1)
# array[_u(i)]: an unsigned index skips numba's negative-index wraparound (the
# indices here are never negative); 15-25% off the tight loops
_u = np.uintp

# ----------------------------------------------------------------------------
# structure helpers


@_jit
def starts(ptr):
    """A copy of ptr[:-1] (a loop: numba compiles slicing slowly)."""
    out = np.empty(ptr.size - 1, ptr.dtype)
    for i in range(ptr.size - 1):
        out[i] = ptr[i]
    return out


@_jit
def transpose_structure(n_rows, n_cols, indptr, indices):
    """CSR structure -> CSC structure (row indices sorted within columns)."""
    ptr = np.zeros(n_cols + 1, indptr.dtype)
    for k in range(indices.size):
        ptr[_u(indices[k]) + _u(1)] += 1
    for j in range(n_cols):
        ptr[j + 1] += ptr[j]
    pos = starts(ptr)
    out = np.empty(indices.size, indices.dtype)
    for i in range(n_rows):
        for k in range(indptr[i], indptr[i + 1]):
            j = _u(indices[_u(k)])
            out[_u(pos[j])] = i
            pos[j] += 1
    return ptr, out


@_jit
def drop_diagonal(n, indptr, indices):
    """Adjacency structure of a square pattern: the pattern less its diagonal.

    With no diagonal entry, the pattern's own arrays are returned.
    """
    ptr = np.empty(n + 1, indptr.dtype)
    ptr[0] = 0
    for i in range(n):
        diag = 0
        for k in range(indptr[i], indptr[i + 1]):
            diag += indices[_u(k)] == i
        ptr[i + 1] = ptr[i] + (indptr[i + 1] - indptr[i]) - diag
    if ptr[n] == indptr[n]:
        return indptr, indices
    idx = np.empty(ptr[n], indices.dtype)
    t = 0
    for i in range(n):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[_u(k)]
            if j != i:
                idx[_u(t)] = j
                t += 1
    return ptr, idx


@_jit
def twin_slots(n, ptr, idx):
    """For a symmetric structure with sorted rows, the slot of (j, i) for each (i, j)."""
    twin = np.full(idx.size, -1, np.int64)
    cursor = starts(ptr)
    for i in range(n):
        for k in range(ptr[i], ptr[i + 1]):
            j = idx[k]
            if j > i:
                t = cursor[j]
                # entries of row j below j come in increasing i, as we visit them
                while t < ptr[j + 1] and idx[t] < i:
                    t += 1
                if t < ptr[j + 1] and idx[t] == i:
                    twin[k] = t
                    twin[t] = k
                    cursor[j] = t + 1
    return twin


@_jit
def is_symmetric(n, ptr, idx):
    """Whether a structure with sorted rows and no diagonal is structurally symmetric.

    Every entry (i, j) above the diagonal must find its (j, i), each a
    different one (a cursor per row), and there must be as many below as above.
    """
    cursor = starts(ptr)
    n_upper = 0
    n_lower = 0
    for i in range(n):
        for k in range(ptr[i], ptr[i + 1]):
            j = idx[_u(k)]
            if j > i:
                n_upper += 1
                uj = _u(j)
                t = cursor[uj]
                end = ptr[uj + _u(1)]
                while t < end and idx[_u(t)] < i:
                    t += 1
                if t < end and idx[_u(t)] == i:
                    cursor[uj] = t + 1
                else:
                    return False
            else:
                n_lower += 1
    return n_upper == n_lower


@_jit
def neighbor_bound(n, ptr_a, idx_a, link_sizes):
    """Largest number of neighbors of a vertex, counted with repetitions."""
    best = 0
    for v in range(n):
        d = 0
        for a in range(ptr_a[v], ptr_a[v + 1]):
            d += link_sizes[idx_a[a]] - 1
        best = max(best, d)
    return best


# ----------------------------------------------------------------------------
# degrees and orders


@_jit
def two_hop_degrees(n, ptr_a, idx_a, ptr_b, idx_b, light, all_light):
    """Number of distinct neighbors of each vertex (int32).

    Links that are not ``light`` (dense rows) count as cliques of their size,
    without checking for overlaps (an upper bound, capped at ``n - 1``).
    ``all_light``: every link is light (the mask is not read).
    """
    deg = np.empty(n, np.int32)
    stamp = np.full(n, -1, np.int32)
    for v in range(n):
        d = 0
        for a in range(ptr_a[v], ptr_a[v + 1]):
            i = _u(idx_a[_u(a)])
            if all_light or light[i]:
                for b in range(ptr_b[i], ptr_b[i + _u(1)]):
                    u = idx_b[_u(b)]
                    if u != v and stamp[_u(u)] != v:
                        stamp[_u(u)] = v
                        d += 1
            else:
                d += ptr_b[i + _u(1)] - ptr_b[i] - 1
        deg[v] = min(d, n - 1)
    return deg


# Bucket queues: one doubly linked list per key; per vertex one record of four
# int32 in ``rec``: next, previous, key (-1 once picked), stamp, so that a visit
# and a move touch one cache line of the vertex.
_NXT, _PRV, _KEY, _STAMP = 0, 1, 2, 3


@_inline
def _unlink(u, k, head, tail, rec):
    p = rec[_u(u), _PRV]
    q = rec[_u(u), _NXT]
    if p >= 0:
        rec[_u(p), _NXT] = q
    else:
        head[_u(k)] = q
    if q >= 0:
        rec[_u(q), _PRV] = p
    else:
        tail[_u(k)] = p


@_inline
def _push_back(u, k, head, tail, rec):
    t = tail[_u(k)]
    rec[_u(u), _PRV] = t
    rec[_u(u), _NXT] = -1
    if t >= 0:
        rec[_u(t), _NXT] = u
    else:
        head[_u(k)] = u
    tail[_u(k)] = u


@_inline
def _swap_remove(u, k, head, tail, rec):
    """Remove u from bucket k the way a vector does it: the last element takes its place."""
    last = tail[_u(k)]
    if last == u:
        _unlink(u, k, head, tail, rec)
        return
    _unlink(last, k, head, tail, rec)
    p = rec[_u(u), _PRV]
    q = rec[_u(u), _NXT]
    rec[_u(last), _PRV] = p
    rec[_u(last), _NXT] = q
    if p >= 0:
        rec[_u(p), _NXT] = last
    else:
        head[_u(k)] = last
    if q >= 0:
        rec[_u(q), _PRV] = last
    else:
        tail[_u(k)] = last


@_inline
def _move(u, k, nk, head, tail, rec):
    _swap_remove(u, k, head, tail, rec)
    rec[_u(u), _KEY] = nk
    _push_back(u, nk, head, tail, rec)


@_jit
def dynamic_order(n, ptr_a, idx_a, ptr_b, idx_b, light, all_light, distance1, deg, mode, first,
                  maxkey):
    """Orders that update vertex keys as vertices are picked, with bucket queues.

    mode 0: smallest-last (pick the smallest current degree, place it last);
    mode 1: incidence-degree (pick the most already-ordered neighbors; ``deg``
    is not read then);
    mode 2: dynamic-largest-first (pick the largest current degree).
    Buckets behave like ColPack's vectors (filled in natural order, the last
    element picked, removal by moving the last element into the hole), so
    ties are broken as ColPack breaks them.  ``first``: a vertex swapped
    with the last one before starting (ColPack starts its distance-1
    incidence-degree order at the first vertex of largest degree).  Dense
    links (not ``light``) keep their initial contribution to the keys.
    ``distance1``: the graph is an adjacency structure (``idx_a`` lists the
    distinct neighbors, ``ptr_b``/``idx_b`` are not read).  ``maxkey``: no
    key exceeds it (the largest degree).
    """
    head = np.full(maxkey + 1, -1, np.int32)
    tail = np.full(maxkey + 1, -1, np.int32)
    rec = np.empty((n, 4), np.int32)
    for v in range(n):
        rec[_u(v), _KEY] = 0 if mode == 1 else deg[v]
        rec[_u(v), _STAMP] = -1
    for v in range(n):
        # ``first`` (if >= 0) trades places with the last vertex, to be picked first
        u = n - 1 if v == first else (first if v == n - 1 and first >= 0 else v)
        _push_back(u, rec[_u(u), _KEY], head, tail, rec)
    order = np.empty(n, np.int64)
    delta = 1 if mode == 1 else -1
    p = 0 if mode == 0 else maxkey
    for t in range(n):
        if mode == 0:
            while tail[_u(p)] < 0:
                p += 1
        else:
            while tail[_u(p)] < 0:
                p -= 1
        v = tail[_u(p)]
        _unlink(v, p, head, tail, rec)
        rec[_u(v), _KEY] = -1
        if mode == 0:
            order[n - 1 - t] = v
        else:
            order[t] = v
        if distance1:
            for a in range(ptr_a[_u(v)], ptr_a[_u(v) + _u(1)]):
                u = idx_a[_u(a)]
                k = rec[_u(u), _KEY]
                if k < 0:
                    continue
                nk = k + delta
                if nk < 0 or nk > maxkey:
                    continue
                _move(u, k, nk, head, tail, rec)
                if mode == 0:
                    if nk < p:
                        p = nk
                elif nk > p:
                    p = nk
            continue
        # the key update below repeats the distance-1 one above on purpose: factored into
        # a helper returning the new bucket pointer, the loops ran 20-75% slower (numba did
        # not keep ``p`` in a register; measured on randsym_1e5 and bruss2d_N512)
        for a in range(ptr_a[_u(v)], ptr_a[_u(v) + _u(1)]):
            i = _u(idx_a[_u(a)])
            if not all_light and not light[i]:
                continue
            for b in range(ptr_b[i], ptr_b[i + _u(1)]):
                u = idx_b[_u(b)]
                k = rec[_u(u), _KEY]
                if k < 0 or rec[_u(u), _STAMP] == v:
                    continue
                rec[_u(u), _STAMP] = v
                nk = k + delta
                if nk < 0 or nk > maxkey:
                    continue
                _move(u, k, nk, head, tail, rec)
                if mode == 0:
                    if nk < p:
                        p = nk
                elif nk > p:
                    p = nk
    return order


# ----------------------------------------------------------------------------
# distance-2 (column / row) coloring


@_jit
def greedy_distance2(n, ptr_a, idx_a, ptr_b, idx_b, order, heavy_slot, n_heavy, n_words):
    """First-fit coloring of the two-hop graph in the given order.

    Light links are scanned (their colored members' colors are stamped as
    forbidden); each heavy link (dense row) instead keeps a bitmap of the
    colors used in it and the index of its first non-full word, so a column
    in a dense row costs O(1) words, not O(row length).
    """
    color = np.full(n, -1, np.int64)
    size = max(n + 1, 64 * n_words + 64)
    forbid = np.full(size, -1, np.int64)
    bm = np.zeros((max(n_heavy, 1), max(n_words, 1)), np.uint64)
    first_free = np.zeros(max(n_heavy, 1), np.int64)
    max_links = 1
    for v in range(n):
        max_links = max(max_links, ptr_a[v + 1] - ptr_a[v])
    hl = np.empty(max_links, np.int64)
    for t in range(n):
        v = order[t]
        nh = 0
        for a in range(ptr_a[v], ptr_a[v + 1]):
            i = idx_a[a]
            s = heavy_slot[i]
            if s >= 0:
                hl[nh] = s
                nh += 1
            else:
                for b in range(ptr_b[i], ptr_b[i + 1]):
                    cu = color[idx_b[b]]
                    if cu >= 0:
                        forbid[cu] = v
        c = -1
        if nh == 0:
            c = 0
            while forbid[c] == v:
                c += 1
        else:
            w = 0
            for h in range(nh):
                w = max(w, first_free[hl[h]])
            while c < 0:
                word = np.uint64(0)
                for h in range(nh):
                    word |= bm[hl[h], w]
                if word != _ALL:
                    for bit in range(64):
                        if (word >> np.uint64(bit)) & _ONE == 0:
                            cc = 64 * w + bit
                            if forbid[cc] != v:
                                c = cc
                                break
                w += 1
            for h in range(nh):
                s = hl[h]
                bm[s, c >> 6] |= _ONE << np.uint64(c & 63)
                f = first_free[s]
                while f < n_words and bm[s, f] == _ALL:
                    f += 1
                first_free[s] = f
        color[v] = c
    return color


@_jit
def greedy_distance2_words(n, n_links, ptr_a, idx_a, order, natural, n_words):
    """First-fit coloring of the two-hop graph when every color is below 64 * n_words.

    Each link (row) keeps a bitmap of the colors used in it, word w of link i
    at ``used[w * n_links + i]`` (a word no color reaches is never touched);
    a vertex's color is the first zero bit of the OR of its links' bitmaps.
    ``natural``: color the vertices 0, 1, ... (``order`` is not read).
    Returns (colors, number of colors).
    """
    color = np.empty(n, np.int64)
    used = np.zeros(n_words * n_links, np.uint64)
    ncolors = 0
    for t in range(n):
        v = t if natural else order[t]
        lo = ptr_a[_u(v)]
        hi = ptr_a[_u(v) + _u(1)]
        w = 0
        base = 0
        while True:
            word = np.uint64(0)
            for a in range(lo, hi):
                word |= used[_u(base + idx_a[_u(a)])]
            if word != _ALL:
                break
            w += 1
            base += n_links
        bit = ~word & (word + _ONE)  # the lowest zero bit
        for a in range(lo, hi):
            used[_u(base + idx_a[_u(a)])] |= bit
        c = 64 * w + np.int64(trailing_zeros(bit))
        color[v] = c
        if c >= ncolors:
            ncolors = c + 1
    return color, ncolors


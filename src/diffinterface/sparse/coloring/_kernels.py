"""Compiled (numba) kernels for graph coloring.

Every kernel takes int64 index arrays, so each compiles once and is cached on
disk (``cache=True``) across processes.

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

_jit = nb.njit(cache=True, nogil=True)
# helpers allocate nothing: without NRT, passing arrays to them costs no refcounting
_inline = nb.njit(cache=True, nogil=True, _nrt=False)

_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ONE = np.uint64(1)

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
        ptr[indices[k] + 1] += 1
    for j in range(n_cols):
        ptr[j + 1] += ptr[j]
    pos = starts(ptr)
    out = np.empty(indices.size, indices.dtype)
    for i in range(n_rows):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            out[pos[j]] = i
            pos[j] += 1
    return ptr, out


@_jit
def drop_diagonal(n, indptr, indices):
    """Adjacency structure of a square pattern: the pattern less its diagonal.

    Also returns, for each adjacency slot, the slot it came from in the pattern.
    """
    ptr = np.zeros(n + 1, indptr.dtype)
    for i in range(n):
        d = 0
        for k in range(indptr[i], indptr[i + 1]):
            if indices[k] != i:
                d += 1
        ptr[i + 1] = ptr[i] + d
    idx = np.empty(ptr[n], indices.dtype)
    src = np.empty(ptr[n], np.int64)
    t = 0
    for i in range(n):
        for k in range(indptr[i], indptr[i + 1]):
            if indices[k] != i:
                idx[t] = indices[k]
                src[t] = k
                t += 1
    return ptr, idx, src


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
def two_hop_degrees(n, ptr_a, idx_a, ptr_b, idx_b, light):
    """Number of distinct neighbors of each vertex.

    Links that are not ``light`` (dense rows) count as cliques of their size,
    without checking for overlaps (an upper bound, capped at ``n - 1``).
    """
    deg = np.zeros(n, np.int64)
    stamp = np.full(n, -1, np.int64)
    for v in range(n):
        d = 0
        for a in range(ptr_a[v], ptr_a[v + 1]):
            i = idx_a[a]
            if light[i]:
                for b in range(ptr_b[i], ptr_b[i + 1]):
                    u = idx_b[b]
                    if u != v and stamp[u] != v:
                        stamp[u] = v
                        d += 1
            else:
                d += ptr_b[i + 1] - ptr_b[i] - 1
        deg[v] = min(d, n - 1)
    return deg


@_inline
def _unlink(u, k, head, tail, nxt, prv):
    if prv[u] >= 0:
        nxt[prv[u]] = nxt[u]
    else:
        head[k] = nxt[u]
    if nxt[u] >= 0:
        prv[nxt[u]] = prv[u]
    else:
        tail[k] = prv[u]


@_inline
def _push_back(u, k, head, tail, nxt, prv):
    prv[u] = tail[k]
    nxt[u] = -1
    if tail[k] >= 0:
        nxt[tail[k]] = u
    else:
        head[k] = u
    tail[k] = u


@_inline
def _swap_remove(u, k, head, tail, nxt, prv):
    """Remove u from bucket k the way a vector does it: the last element takes its place."""
    last = tail[k]
    if last == u:
        _unlink(u, k, head, tail, nxt, prv)
        return
    _unlink(last, k, head, tail, nxt, prv)
    prv[last] = prv[u]
    nxt[last] = nxt[u]
    if prv[u] >= 0:
        nxt[prv[u]] = last
    else:
        head[k] = last
    if nxt[u] >= 0:
        prv[nxt[u]] = last
    else:
        tail[k] = last


@_jit
def dynamic_order(n, ptr_a, idx_a, ptr_b, idx_b, light, deg, mode, first):
    """Orders that update vertex keys as vertices are picked, with bucket queues.

    mode 0: smallest-last (pick the smallest current degree, place it last);
    mode 1: incidence-degree (pick the most already-ordered neighbors);
    mode 2: dynamic-largest-first (pick the largest current degree).
    Buckets behave like ColPack's vectors (filled in natural order, the last
    element picked, removal by moving the last element into the hole), so
    ties are broken as ColPack breaks them.  ``first``: a vertex swapped
    with the last one before starting (ColPack starts its distance-1
    incidence-degree order at the first vertex of largest degree).  Dense links (not ``light``) keep
    their initial contribution to the keys.
    """
    key = np.zeros(n, np.int64)  # -1 once picked
    if mode != 1:
        for v in range(n):  # (a loop: slice assignment costs seconds of compile)
            key[v] = deg[v]
    maxkey = n
    head = np.full(maxkey + 1, -1, np.int64)
    tail = np.full(maxkey + 1, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    prv = np.full(n, -1, np.int64)
    for v in range(n):
        # ``first`` (if >= 0) trades places with the last vertex, to be picked first
        u = n - 1 if v == first else (first if v == n - 1 and first >= 0 else v)
        _push_back(u, key[u], head, tail, nxt, prv)
    stamp = np.full(n, -1, np.int64)
    order = np.empty(n, np.int64)
    delta = 1 if mode == 1 else -1
    p = 0 if mode == 0 else maxkey
    for t in range(n):
        if mode == 0:
            while tail[p] < 0:
                p += 1
        else:
            while tail[p] < 0:
                p -= 1
        v = tail[p]
        _unlink(v, p, head, tail, nxt, prv)
        key[v] = -1
        if mode == 0:
            order[n - 1 - t] = v
        else:
            order[t] = v
        for a in range(ptr_a[v], ptr_a[v + 1]):
            i = idx_a[a]
            if not light[i]:
                continue
            for b in range(ptr_b[i], ptr_b[i + 1]):
                u = idx_b[b]
                k = key[u]
                if k < 0 or stamp[u] == v:
                    continue
                stamp[u] = v
                nk = k + delta
                if nk < 0 or nk > maxkey:
                    continue
                _swap_remove(u, k, head, tail, nxt, prv)
                key[u] = nk
                _push_back(u, nk, head, tail, nxt, prv)
                if mode == 0 and nk < p:
                    p = nk
                elif mode != 0 and nk > p:
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

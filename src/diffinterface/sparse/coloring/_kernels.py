"""Compiled (numba) kernels for graph coloring.

Every kernel takes int64 index arrays, so each compiles once and is cached on
disk (``cache=True``) across processes.

Graphs are given in a "two-hop" form: the neighbors of vertex ``v`` are the
union, over the *links* ``i`` in ``idx_a[ptr_a[v]:ptr_a[v+1]]``, of
``idx_b[ptr_b[i]:ptr_b[i+1]]``, minus ``v`` itself.  With A = the pattern's
columns (CSC) and B = its rows (CSR) this is the column-intersection graph
(distance-2 in the bipartite graph) without ever building it; with B = the
identity it is the ordinary adjacency graph.

Algorithms: greedy distance-2 coloring (Gebremedhin, Manne & Pothen 2005),
smallest-last / incidence-degree orders (Matula & Beck 1983, Coleman & Moré
1983), star coloring with 2-colored stars (Gebremedhin, Tarafdar, Manne &
Pothen 2007, Alg. 4.1) and acyclic coloring with 2-colored trees held in a
disjoint-set forest (Gebremedhin, Tarafdar, Pothen & Walther 2009, Alg. 3.1).
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
def transpose_structure(n_rows, n_cols, indptr, indices):
    """CSR structure -> CSC structure (row indices sorted within columns)."""
    ptr = np.zeros(n_cols + 1, np.int64)
    for k in range(indices.size):
        ptr[indices[k] + 1] += 1
    for j in range(n_cols):
        ptr[j + 1] += ptr[j]
    pos = ptr[:-1].copy()
    out = np.empty(indices.size, np.int64)
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
    ptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        d = 0
        for k in range(indptr[i], indptr[i + 1]):
            if indices[k] != i:
                d += 1
        ptr[i + 1] = ptr[i] + d
    idx = np.empty(ptr[n], np.int64)
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
    cursor = ptr[:-1].copy()
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
def dynamic_order(n, ptr_a, idx_a, ptr_b, idx_b, light, deg, mode):
    """Orders that update vertex keys as vertices are picked, with bucket queues.

    mode 0: smallest-last (pick the smallest current degree, place it last);
    mode 1: incidence-degree (pick the most already-ordered neighbors);
    mode 2: dynamic-largest-first (pick the largest current degree).
    Buckets behave like ColPack's vectors (filled in natural order, the last
    element picked, removal by moving the last element into the hole), so
    ties are broken as ColPack breaks them.  Dense links (not ``light``) keep
    their initial contribution to the keys.
    """
    key = np.zeros(n, np.int64)
    if mode != 1:
        key[:] = deg
    maxkey = n
    head = np.full(maxkey + 1, -1, np.int64)
    tail = np.full(maxkey + 1, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    prv = np.full(n, -1, np.int64)
    for v in range(n):
        _push_back(v, key[v], head, tail, nxt, prv)
    done = np.zeros(n, np.bool_)
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
        done[v] = True
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
                if done[u] or stamp[u] == v:
                    continue
                stamp[u] = v
                k = key[u]
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


# ----------------------------------------------------------------------------
# per-vertex tables: for vertex w and color b, one value (a star, or an edge of
# the 2-colored tree) shared by all edges between w and its neighbors of color
# b.  Entries of w live in slots ent_ptr[w] ... ent_ptr[w] + ent_cnt[w] (a
# vertex has at most deg(w) of them); vertices with more than _SMALL entries
# are also indexed in an open-addressing hash table keyed by w * n_keys + b.

_SMALL = 16


@_inline
def _hash(key, mask):
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64(h >> np.uint64(20)) & mask


@_inline
def _ent_find(w, b, ent_ptr, ent_cnt, ent_col, hkeys, hvals, n_keys):
    cnt = ent_cnt[w]
    if cnt <= _SMALL:
        base = ent_ptr[w]
        for s in range(base, base + cnt):
            if ent_col[s] == b:
                return s
        return -1
    key = w * n_keys + b
    mask = hkeys.size - 1
    h = _hash(key, mask)
    while hkeys[h] != -1:
        if hkeys[h] == key:
            return hvals[h]
        h = (h + 1) & mask
    return -1


@_inline
def _hash_put(key, val, hkeys, hvals):
    mask = hkeys.size - 1
    h = _hash(key, mask)
    while hkeys[h] != -1:
        h = (h + 1) & mask
    hkeys[h] = key
    hvals[h] = val


@_inline
def _ent_add(w, b, val, ent_ptr, ent_cnt, ent_col, ent_val, hkeys, hvals, n_keys):
    s = ent_ptr[w] + ent_cnt[w]
    ent_col[s] = b
    ent_val[s] = val
    ent_cnt[w] += 1
    cnt = ent_cnt[w]
    if cnt == _SMALL + 1:
        for t in range(ent_ptr[w], s + 1):
            _hash_put(w * n_keys + ent_col[t], t, hkeys, hvals)
    elif cnt > _SMALL + 1:
        _hash_put(w * n_keys + b, s, hkeys, hvals)


@_jit
def _new_tables(n, n_slots, hash_cap):
    """Empty per-vertex tables: counts, colors, values, hash keys, hash values."""
    return (
        np.zeros(n, np.int64),
        np.empty(n_slots, np.int64),
        np.empty(n_slots, np.int64),
        np.full(hash_cap, -1, np.int64),
        np.empty(hash_cap, np.int64),
    )


def hash_capacity(ptr):
    """Size of the hash table (a power of two) for the vertices that may need it."""
    deg = np.diff(ptr)
    need = int(deg[deg > _SMALL].sum())
    cap = 1
    while cap < 2 * need + 2:
        cap *= 2
    return cap


# ----------------------------------------------------------------------------
# star coloring


@_inline
def _forbid(b, v, forbid, nforb):
    """Forbid color b for vertex v; returns the updated count of forbidden colors."""
    if forbid[b] != v:
        forbid[b] = v
        nforb += 1
    return nforb


@_inline
def _forbid_entries(q, v, ent_ptr, ent_cnt, ent_col, forbid, nforb):
    base = ent_ptr[q]
    for s in range(base, base + ent_cnt[q]):
        nforb = _forbid(ent_col[s], v, forbid, nforb)
    return nforb


@_inline
def _stamp_neighbor_colors(v, ptr, idx, color, forbid):
    nforb = 0
    for k in range(ptr[v], ptr[v + 1]):
        cw = color[idx[k]]
        if cw >= 0:
            nforb = _forbid(cw, v, forbid, nforb)
    return nforb


@_inline
def _assign_first_free(v, forbid, color):
    """Give v the smallest color not forbidden for it; return that color."""
    c = 0
    while forbid[c] == v:
        c += 1
    color[v] = c
    return c


@_jit
def star_coloring(n, ptr, idx, order, hash_cap):
    """Star coloring (distance-1 coloring with no 2-colored path on 4 vertices).

    ``ptr, idx``: adjacency without diagonal.  Cost O(|E| * colors) in the worst
    case; a hub costs O(1) per neighbor, since its neighbors are reached
    through its table of distinct neighbor colors, not its adjacency list.
    """
    color = np.full(n, -1, np.int64)
    forbid = np.full(n + 1, -1, np.int64)
    treated = np.full(n, -1, np.int64)
    fn_v = np.full(n + 1, -1, np.int64)
    fn_w = np.full(n + 1, -1, np.int64)
    nstars = 0
    hub = np.empty(idx.size // 2 + 1, np.int64)  # hub of each star, -1 while it is one edge
    ent_cnt, ent_col, ent_val, hkeys, hvals = _new_tables(n, idx.size, hash_cap)
    n_keys = n + 1
    ncolors = 0
    for t in range(n):
        v = order[t]
        nforb = _stamp_neighbor_colors(v, ptr, idx, color, forbid)
        if nforb < ncolors:
            for k in range(ptr[v], ptr[v + 1]):
                w = idx[k]
                a = color[w]
                if a < 0:
                    continue
                if fn_v[a] == v:
                    # v has two neighbors w, q of color a: v is the hub of their star
                    q = fn_w[a]
                    if treated[q] != v:
                        nforb = _forbid_entries(q, v, ptr, ent_cnt, ent_col, forbid, nforb)
                        treated[q] = v
                    nforb = _forbid_entries(w, v, ptr, ent_cnt, ent_col, forbid, nforb)
                    treated[w] = v
                else:
                    fn_v[a] = v
                    fn_w[a] = w
                    # w is a spoke of stars whose hubs x have colors to forbid
                    base = ptr[w]
                    for s in range(base, base + ent_cnt[w]):
                        h = hub[ent_val[s]]
                        if h >= 0 and h != w:
                            nforb = _forbid(ent_col[s], v, forbid, nforb)
                if nforb >= ncolors:
                    break
        c = _assign_first_free(v, forbid, color)
        ncolors = max(ncolors, c + 1)
        # update the 2-colored stars around v
        for k in range(ptr[v], ptr[v + 1]):
            w = idx[k]
            a = color[w]
            if a < 0:
                continue
            s = _ent_find(w, c, ptr, ent_cnt, ent_col, hkeys, hvals, n_keys)
            if s >= 0:
                st = ent_val[s]
                hub[st] = w
                _ent_add(v, a, st, ptr, ent_cnt, ent_col, ent_val, hkeys, hvals, n_keys)
                continue
            s = _ent_find(v, a, ptr, ent_cnt, ent_col, hkeys, hvals, n_keys)
            if s >= 0:
                st = ent_val[s]
                hub[st] = v
            else:
                st = nstars
                nstars += 1
                hub[st] = -1
                _ent_add(v, a, st, ptr, ent_cnt, ent_col, ent_val, hkeys, hvals, n_keys)
            _ent_add(w, c, st, ptr, ent_cnt, ent_col, ent_val, hkeys, hvals, n_keys)
    return color


# ----------------------------------------------------------------------------
# acyclic coloring


@_inline
def _find(parent, e):
    while parent[e] != e:
        parent[e] = parent[parent[e]]
        e = parent[e]
    return e


@_inline
def _union(parent, e1, e2):
    r1 = _find(parent, e1)
    r2 = _find(parent, e2)
    if r1 != r2:
        parent[r1] = r2


@_jit
def acyclic_coloring(n, ptr, idx, order, hash_cap):
    """Acyclic coloring (distance-1 coloring with no 2-colored cycle).

    The 2-colored trees are sets of edges in a disjoint-set forest.  All edges
    between w and its neighbors of one color lie in one tree, so each vertex
    keeps one representative edge per neighbor color: visiting a hub costs
    O(distinct colors around it), not O(its degree).
    """
    color = np.full(n, -1, np.int64)
    forbid = np.full(n + 1, -1, np.int64)
    n_edges = idx.size // 2 + 1
    parent = np.empty(n_edges, np.int64)
    visit_v = np.full(n_edges, -1, np.int64)
    visit_w = np.full(n_edges, -1, np.int64)
    ne = 0  # edges so far, one disjoint set each
    ent_cnt, ent_col, ent_val, hkeys, hvals = _new_tables(n, idx.size, hash_cap)
    n_keys = n + 1
    ncolors = 0
    for v in order:
        nforb = _stamp_neighbor_colors(v, ptr, idx, color, forbid)
        if nforb < ncolors:
            for k in range(ptr[v], ptr[v + 1]):
                w = idx[k]
                if color[w] < 0:
                    continue
                base = ptr[w]
                for s in range(base, base + ent_cnt[w]):
                    b = ent_col[s]
                    if forbid[b] == v:
                        continue
                    r = _find(parent, ent_val[s])
                    if visit_v[r] != v:
                        visit_v[r] = v
                        visit_w[r] = w
                    elif visit_w[r] != w:
                        # the tree is reached from v through two edges: a cycle
                        nforb = _forbid(b, v, forbid, nforb)
                if nforb >= ncolors:
                    break
        c = _assign_first_free(v, forbid, color)
        ncolors = max(ncolors, c + 1)
        # grow the 2-colored trees with the edges v-w, merging those they join
        for k in range(ptr[v], ptr[v + 1]):
            a = color[idx[k]]
            if a < 0:
                continue
            w = idx[k]
            e = ne
            ne += 1
            parent[e] = e
            s = _ent_find(v, a, ptr, ent_cnt, ent_col, hkeys, hvals, n_keys)
            if s >= 0:
                _union(parent, e, ent_val[s])
            else:
                _ent_add(v, a, e, ptr, ent_cnt, ent_col, ent_val, hkeys, hvals, n_keys)
            s = _ent_find(w, c, ptr, ent_cnt, ent_col, hkeys, hvals, n_keys)
            if s >= 0:
                _union(parent, e, ent_val[s])
            else:
                _ent_add(w, c, e, ptr, ent_cnt, ent_col, ent_val, hkeys, hvals, n_keys)
    return color

"""Compiled (numba) star and acyclic colorings of a symmetric pattern.

Star coloring keeps the 2-colored stars (Gebremedhin, Tarafdar, Manne &
Pothen 2007, Alg. 4.1); acyclic coloring keeps the 2-colored trees as sets of
edges in a disjoint-set forest (Gebremedhin, Tarafdar, Pothen & Walther 2009,
Alg. 3.1).  Both walk, from a neighbor w of the vertex being colored, w's
table of distinct neighbor colors rather than w's adjacency list, so a hub of
degree d costs O(distinct colors around it) per visit, not O(d): the
arrowhead, quadratic in ColPack, is linear here.

Per-vertex tables: for vertex w and color b, one value (a star, or an edge of
the 2-colored tree) shared by all the edges between w and its neighbors of
color b (they all lie in one star, or one tree).  w's entries live in the
slots ptr[w] ... ptr[w] + cnt[w] of ``tab`` (a vertex has at most deg(w) of
them): tab[0] is the color, tab[1] the value, and tab[2] a direct index, the
slot of color b at ptr[w] + b for colors b < deg(w).  A color b >= deg(w) is
found by a scan of w's entries, or, past _SMALL entries, in an open-addressing
hash table keyed by w * n_keys + b.
"""

from __future__ import annotations

import numpy as np

from ._kernels import _inline, _jit

_SMALL = 16


@_inline
def _hash(key, mask):
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64(h >> np.uint64(20)) & mask


@_inline
def _ent_find(w, b, ptr, cnt, tab, ht, n_keys):
    """Slot of (w, b), or -1."""
    base = ptr[w]
    if b < ptr[w + 1] - base:
        return tab[2, base + b]
    if cnt[w] <= _SMALL:
        for s in range(base, base + cnt[w]):
            if tab[0, s] == b:
                return s
        return -1
    key = w * n_keys + b
    mask = ht.shape[1] - 1
    h = _hash(key, mask)
    while ht[0, h] != -1:
        if ht[0, h] == key:
            return ht[1, h]
        h = (h + 1) & mask
    return -1


@_inline
def _hash_put(key, val, ht):
    mask = ht.shape[1] - 1
    h = _hash(key, mask)
    while ht[0, h] != -1:
        h = (h + 1) & mask
    ht[0, h] = key
    ht[1, h] = val


@_inline
def _append(w, b, val, ptr, cnt, tab):
    """Add (b, val) to w's list; returns its slot."""
    s = ptr[w] + cnt[w]
    tab[0, s] = b
    tab[1, s] = val
    cnt[w] += 1
    return s


@_inline
def _ent_add(w, b, val, ptr, cnt, tab, ht, n_keys):
    base = ptr[w]
    deg = ptr[w + 1] - base
    s = _append(w, b, val, ptr, cnt, tab)
    if b < deg:
        tab[2, base + b] = s
    elif cnt[w] > _SMALL + 1:
        _hash_put(w * n_keys + b, s, ht)
    if cnt[w] == _SMALL + 1:
        for t in range(base, s + 1):
            if tab[0, t] >= deg:
                _hash_put(w * n_keys + tab[0, t], t, ht)


@_jit
def _new_tables(n, n_slots, hash_cap):
    """Empty per-vertex tables: counts, (color, value, direct index) slots, hash table."""
    tab = np.empty((3, n_slots), np.int64)
    for s in range(n_slots):
        tab[2, s] = -1
    return np.zeros(n, np.int64), tab, np.full((2, hash_cap), -1, np.int64)


def hash_capacity(ptr):
    """Size of the hash table (a power of two) for the vertices that may need it."""
    deg = np.diff(ptr)
    need = int(deg[deg > _SMALL].sum())
    cap = 1
    while cap < 2 * need + 2:
        cap *= 2
    return cap


@_inline
def _forbid(b, v, forbid, nforb):
    """Forbid color b for vertex v; returns the updated count of forbidden colors."""
    if forbid[b] != v:
        forbid[b] = v
        nforb += 1
    return nforb


@_inline
def _open_colors(v, forbid, ncolors, buf):
    """The colors below ncolors not forbidden for v, into buf; returns their count."""
    k = 0
    for c in range(ncolors):
        if forbid[c] != v:
            buf[k] = c
            k += 1
    return k


@_inline
def _forbid_entries(q, v, ptr, cnt, tab, ht, n_keys, forbid, nforb, buf, nopen):
    """Forbid for v the colors of all the colored neighbors of q.

    Walks q's entries, or, when fewer colors are still open for v (``nopen``
    >= 0, the open colors in ``buf``), looks each open color up in q's table.
    """
    if 0 <= nopen < cnt[q]:
        for t in range(nopen):
            b = buf[t]
            if forbid[b] != v and _ent_find(q, b, ptr, cnt, tab, ht, n_keys) >= 0:
                forbid[b] = v
                nforb += 1
        return nforb
    for s in range(ptr[q], ptr[q] + cnt[q]):
        nforb = _forbid(tab[0, s], v, forbid, nforb)
    return nforb


@_inline
def _few_open(v, deg, nforb, ncolors, forbid, buf):
    """Open colors of v in buf when they are few next to v's degree, else -1.

    Listing them costs O(ncolors) = O(deg) then; near-dense rows need it.
    """
    if 4 * (ncolors - nforb) < deg:
        return _open_colors(v, forbid, ncolors, buf)
    return -1


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

    ``ptr, idx``: adjacency without diagonal.  Each vertex also lists the
    stars in which it is a spoke (with the hub's color): those are the only
    colors a neighbor w makes v avoid when w is met once.  Once every color
    in use is forbidden for v (dense rows), the checks stop.
    """
    color = np.full(n, -1, np.int64)
    forbid = np.full(n + 1, -1, np.int64)
    treated = np.full(n, -1, np.int64)
    buf = np.empty(n + 1, np.int64)
    fn_v = np.full(n + 1, -1, np.int64)  # first neighbor of each color met from v
    fn_w = np.full(n + 1, -1, np.int64)
    own_v = np.full(n + 1, -1, np.int64)  # star of (v, color) made while updating v
    own_s = np.full(n + 1, -1, np.int64)
    n_max = idx.size // 2 + 1
    nstars = 0
    hub = np.empty(n_max, np.int64)  # hub of each star, -1 while it is one edge
    ends = np.empty((2, n_max), np.int64)  # the two vertices of a one-edge star
    cnt, tab, ht = _new_tables(n, idx.size, hash_cap)
    spk_cnt = np.zeros(n, np.int64)  # per vertex: (hub color, star) where it is a spoke
    spk = np.empty((2, idx.size), np.int64)
    n_keys = n + 1
    ncolors = 0
    for t in range(n):
        v = order[t]
        nforb = _stamp_neighbor_colors(v, ptr, idx, color, forbid)
        if nforb < ncolors:
            nopen = _few_open(v, ptr[v + 1] - ptr[v], nforb, ncolors, forbid, buf)
            for k in range(ptr[v], ptr[v + 1]):
                w = idx[k]
                a = color[w]
                if a < 0:
                    continue
                if fn_v[a] == v:
                    # v has two neighbors w, q of color a: v is the hub of their star
                    q = fn_w[a]
                    if treated[q] != v:
                        nforb = _forbid_entries(q, v, ptr, cnt, tab, ht, n_keys, forbid, nforb,
                                                buf, nopen)
                        treated[q] = v
                    nforb = _forbid_entries(w, v, ptr, cnt, tab, ht, n_keys, forbid, nforb,
                                            buf, nopen)
                    treated[w] = v
                else:
                    fn_v[a] = v
                    fn_w[a] = w
                    # w is a spoke of stars whose hubs have colors to forbid
                    for s in range(ptr[w], ptr[w] + spk_cnt[w]):
                        nforb = _forbid(spk[0, s], v, forbid, nforb)
                if nforb >= ncolors:
                    break
        c = _assign_first_free(v, forbid, color)
        fresh = c == ncolors  # no vertex had this color: no table holds it
        ncolors = max(ncolors, c + 1)
        # update the 2-colored stars around v
        for k in range(ptr[v], ptr[v + 1]):
            w = idx[k]
            a = color[w]
            if a < 0:
                continue
            s = -1 if fresh else _ent_find(w, c, ptr, cnt, tab, ht, n_keys)
            if s >= 0:
                # w already has a neighbor of color c: w is the hub, v a spoke
                st = tab[1, s]
                if hub[st] < 0:
                    x = ends[0, st] if ends[1, st] == w else ends[1, st]
                    _append(x, a, st, ptr, spk_cnt, spk)
                hub[st] = w
                _append(v, a, st, ptr, spk_cnt, spk)
                _ent_add(v, a, st, ptr, cnt, tab, ht, n_keys)
                own_v[a] = v
                own_s[a] = st
                continue
            if own_v[a] == v:
                # v already has a neighbor q of color a: v is the hub, w a spoke
                st = own_s[a]
                if hub[st] < 0:
                    q = ends[0, st] if ends[1, st] == v else ends[1, st]
                    _append(q, c, st, ptr, spk_cnt, spk)
                hub[st] = v
                _append(w, c, st, ptr, spk_cnt, spk)
            else:
                st = nstars
                nstars += 1
                hub[st] = -1
                ends[0, st] = v
                ends[1, st] = w
                _ent_add(v, a, st, ptr, cnt, tab, ht, n_keys)
                own_v[a] = v
                own_s[a] = st
            _ent_add(w, c, st, ptr, cnt, tab, ht, n_keys)
    return color


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

    A 2-colored tree reached from v through two different neighbors would
    close a cycle: its other color is forbidden for v.
    """
    color = np.full(n, -1, np.int64)
    forbid = np.full(n + 1, -1, np.int64)
    buf = np.empty(n + 1, np.int64)
    mult = np.zeros(n + 1, np.int64)  # how many neighbors of v have each color
    n_edges = idx.size // 2 + 1
    parent = np.empty(n_edges, np.int64)
    visit_v = np.full(n_edges, -1, np.int64)
    visit_w = np.full(n_edges, -1, np.int64)
    own_v = np.full(n + 1, -1, np.int64)  # an edge of (v, color) made while updating v
    own_e = np.full(n + 1, -1, np.int64)
    ne = 0  # edges so far, one disjoint set each
    cnt, tab, ht = _new_tables(n, idx.size, hash_cap)
    n_keys = n + 1
    ncolors = 0
    for v in order:
        nforb = 0
        for k in range(ptr[v], ptr[v + 1]):
            cw = color[idx[k]]
            if cw >= 0:
                if forbid[cw] != v:
                    forbid[cw] = v
                    nforb += 1
                    mult[cw] = 0
                mult[cw] += 1
        if nforb < ncolors:
            nopen = _few_open(v, ptr[v + 1] - ptr[v], nforb, ncolors, forbid, buf)
            for k in range(ptr[v], ptr[v + 1]):
                w = idx[k]
                # a tree reached twice from v holds two neighbors of v of one color:
                # a neighbor alone in its color cannot close a cycle
                if color[w] < 0 or mult[color[w]] < 2:
                    continue
                # the trees holding w's edges to open colors: look the open colors
                # up when they are fewer than w's entries, else walk the entries
                by_lookup = 0 <= nopen < cnt[w]
                for t in range(nopen if by_lookup else cnt[w]):
                    if by_lookup:
                        b = buf[t]
                        s = _ent_find(w, b, ptr, cnt, tab, ht, n_keys) if forbid[b] != v else -1
                    else:
                        s = ptr[w] + t
                        b = tab[0, s]
                    if s < 0 or forbid[b] == v:
                        continue
                    r = _find(parent, tab[1, s])
                    if visit_v[r] != v:
                        visit_v[r] = v
                        visit_w[r] = w
                    elif visit_w[r] != w:
                        nforb = _forbid(b, v, forbid, nforb)
                if nforb >= ncolors:
                    break
        c = _assign_first_free(v, forbid, color)
        fresh = c == ncolors
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
            if own_v[a] == v:
                _union(parent, e, own_e[a])
            else:
                own_v[a] = v
                own_e[a] = e
                _ent_add(v, a, e, ptr, cnt, tab, ht, n_keys)
            s = -1 if fresh else _ent_find(w, c, ptr, cnt, tab, ht, n_keys)
            if s >= 0:
                _union(parent, e, tab[1, s])
            else:
                _ent_add(w, c, e, ptr, cnt, tab, ht, n_keys)
    return color

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

from ._kernels import _inline, _jit, _u

_SMALL = 16


@_inline
def _hash(key, mask):
    h = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64(h >> np.uint64(20)) & mask


@_inline
def _ent_find(w, b, ptr, cnt, tab, ht, n_keys):
    """Slot of (w, b), or -1."""
    base = ptr[_u(w)]
    if b < ptr[_u(w + 1)] - base:
        return tab[2, _u(base + b)]
    if cnt[_u(w)] <= _SMALL:
        for s in range(base, base + cnt[_u(w)]):
            if tab[0, _u(s)] == b:
                return s
        return -1
    key = w * n_keys + b
    mask = ht.shape[1] - 1
    h = _hash(key, mask)
    while ht[0, _u(h)] != -1:
        if ht[0, _u(h)] == key:
            return ht[1, _u(h)]
        h = (h + 1) & mask
    return -1


@_inline
def _hash_put(key, val, ht):
    mask = ht.shape[1] - 1
    h = _hash(key, mask)
    while ht[0, _u(h)] != -1:
        h = (h + 1) & mask
    ht[0, _u(h)] = key
    ht[1, _u(h)] = val


@_inline
def _append(w, b, val, ptr, cnt, tab):
    """Add (b, val) to w's list; returns its slot."""
    s = ptr[_u(w)] + cnt[_u(w)]
    tab[0, _u(s)] = b
    tab[1, _u(s)] = val
    cnt[_u(w)] += 1
    return s


@_inline
def _ent_add(w, b, val, ptr, cnt, tab, ht, n_keys):
    base = ptr[_u(w)]
    deg = ptr[_u(w + 1)] - base
    s = _append(w, b, val, ptr, cnt, tab)
    if b < deg:
        tab[2, _u(base + b)] = s
    elif cnt[_u(w)] > _SMALL + 1:
        _hash_put(w * n_keys + b, s, ht)
    if cnt[_u(w)] == _SMALL + 1:
        for t in range(base, s + 1):
            if tab[0, _u(t)] >= deg:
                _hash_put(w * n_keys + tab[0, _u(t)], t, ht)


@_jit
def _new_tables(n, idx, hash_cap):
    """Empty per-vertex tables: counts, (color, value, direct index) slots, hash table.

    One slot per adjacency entry; values (colors, stars, edges, slots) fit
    the index type of ``idx``; hash keys (vertex * n_keys + color) need int64.
    """
    n_slots = idx.size
    tab = np.empty((3, n_slots), idx.dtype)
    for s in range(n_slots):
        tab[2, _u(s)] = -1
    return np.zeros(n, np.int32), tab, np.full((2, hash_cap), -1, np.int64)


@_jit
def _color_cap(n, ptr):
    """Room for every color: greedy star and acyclic colorings forbid only colors
    within distance 2, so colors <= 1 + d**2 (d: the largest degree) and <= n."""
    d = 0
    for v in range(n):
        d = max(d, ptr[v + 1] - ptr[v])
    return min(n, d * d + 1) + 1


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
    if forbid[_u(b)] != v:
        forbid[_u(b)] = v
        nforb += 1
    return nforb


@_inline
def _open_colors(v, forbid, ncolors, buf):
    """The colors below ncolors not forbidden for v, into buf; returns their count."""
    k = 0
    for c in range(ncolors):
        if forbid[_u(c)] != v:
            buf[_u(k)] = c
            k += 1
    return k


@_inline
def _forbid_entries(q, v, ptr, cnt, tab, ht, n_keys, forbid, nforb, buf, nopen):
    """Forbid for v the colors of all the colored neighbors of q.

    Walks q's entries, or, when fewer colors are still open for v (``nopen``
    >= 0, the open colors in ``buf``), looks each open color up in q's table.
    """
    if 0 <= nopen < cnt[_u(q)]:
        for t in range(nopen):
            b = buf[_u(t)]
            if forbid[_u(b)] != v and _ent_find(q, b, ptr, cnt, tab, ht, n_keys) >= 0:
                forbid[_u(b)] = v
                nforb += 1
        return nforb
    for s in range(ptr[_u(q)], ptr[_u(q)] + cnt[_u(q)]):
        nforb = _forbid(tab[0, _u(s)], v, forbid, nforb)
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
    for k in range(ptr[_u(v)], ptr[_u(v + 1)]):
        cw = color[idx[_u(k)]]
        if cw >= 0:
            nforb = _forbid(cw, v, forbid, nforb)
    return nforb


@_inline
def _assign_first_free(v, forbid, color):
    """Give v the smallest color not forbidden for it; return that color."""
    c = 0
    while forbid[_u(c)] == v:
        c += 1
    color[_u(v)] = c
    return c


@_jit
def star_coloring(n, ptr, idx, order, hash_cap):
    """Star coloring (distance-1 coloring with no 2-colored path on 4 vertices).

    ``ptr, idx``: adjacency without diagonal.  Each vertex also lists the
    stars in which it is a spoke (with the hub's color): those are the only
    colors a neighbor w makes v avoid when w is met once.  Once every color
    in use is forbidden for v (dense rows), the checks stop.
    """
    it = idx.dtype  # vertices, stars, colors
    nc = _color_cap(n, ptr)
    color = np.full(n, -1, np.int64)
    forbid = np.full(nc, -1, it)
    treated = np.full(n, -1, it)
    buf = np.empty(nc, it)
    fn_v = np.full(nc, -1, it)  # first neighbor of each color met from v
    fn_w = np.full(nc, -1, it)
    own_v = np.full(nc, -1, it)  # star of (v, color) made while updating v
    own_s = np.full(nc, -1, it)
    n_max = idx.size // 2 + 1
    nstars = 0
    hub = np.empty(n_max, it)  # hub of each star, -1 while it is one edge
    ends = np.empty((2, n_max), it)  # the two vertices of a one-edge star
    cnt, tab, ht = _new_tables(n, idx, hash_cap)
    spk_cnt = np.zeros(n, np.int32)  # per vertex: (hub color, star) where it is a spoke
    spk = np.empty((2, idx.size), it)
    n_keys = n + 1
    ncolors = 0
    for t in range(n):
        v = order[t]
        nforb = _stamp_neighbor_colors(v, ptr, idx, color, forbid)
        if nforb < ncolors:
            nopen = _few_open(v, ptr[_u(v + 1)] - ptr[_u(v)], nforb, ncolors, forbid, buf)
            for k in range(ptr[_u(v)], ptr[_u(v + 1)]):
                w = idx[_u(k)]
                a = color[_u(w)]
                if a < 0:
                    continue
                if fn_v[_u(a)] == v:
                    # v has two neighbors w, q of color a: v is the hub of their star
                    q = fn_w[_u(a)]
                    if treated[_u(q)] != v:
                        nforb = _forbid_entries(q, v, ptr, cnt, tab, ht, n_keys, forbid, nforb,
                                                buf, nopen)
                        treated[_u(q)] = v
                    nforb = _forbid_entries(w, v, ptr, cnt, tab, ht, n_keys, forbid, nforb,
                                            buf, nopen)
                    treated[_u(w)] = v
                else:
                    fn_v[_u(a)] = v
                    fn_w[_u(a)] = w
                    # w is a spoke of stars whose hubs have colors to forbid
                    for s in range(ptr[_u(w)], ptr[_u(w)] + spk_cnt[_u(w)]):
                        nforb = _forbid(spk[0, _u(s)], v, forbid, nforb)
                if nforb >= ncolors:
                    break
        c = _assign_first_free(v, forbid, color)
        fresh = c == ncolors  # no vertex had this color: no table holds it
        ncolors = max(ncolors, c + 1)
        # update the 2-colored stars around v
        for k in range(ptr[_u(v)], ptr[_u(v + 1)]):
            w = idx[_u(k)]
            a = color[_u(w)]
            if a < 0:
                continue
            s = -1 if fresh else _ent_find(w, c, ptr, cnt, tab, ht, n_keys)
            if s >= 0:
                # w already has a neighbor of color c: w is the hub, v a spoke
                st = tab[1, _u(s)]
                if hub[_u(st)] < 0:
                    x = ends[0, _u(st)] if ends[1, _u(st)] == w else ends[1, _u(st)]
                    _append(x, a, st, ptr, spk_cnt, spk)
                hub[_u(st)] = w
                _append(v, a, st, ptr, spk_cnt, spk)
                _ent_add(v, a, st, ptr, cnt, tab, ht, n_keys)
                own_v[_u(a)] = v
                own_s[_u(a)] = st
                continue
            if own_v[_u(a)] == v:
                # v already has a neighbor q of color a: v is the hub, w a spoke
                st = own_s[_u(a)]
                if hub[_u(st)] < 0:
                    q = ends[0, _u(st)] if ends[1, _u(st)] == v else ends[1, _u(st)]
                    _append(q, c, st, ptr, spk_cnt, spk)
                hub[_u(st)] = v
                _append(w, c, st, ptr, spk_cnt, spk)
            else:
                st = nstars
                nstars += 1
                hub[_u(st)] = -1
                ends[0, _u(st)] = v
                ends[1, _u(st)] = w
                _ent_add(v, a, st, ptr, cnt, tab, ht, n_keys)
                own_v[_u(a)] = v
                own_s[_u(a)] = st
            _ent_add(w, c, st, ptr, cnt, tab, ht, n_keys)
    return color


@_inline
def _find(parent, e):
    while parent[_u(e)] != e:
        parent[_u(e)] = parent[parent[_u(e)]]
        e = parent[_u(e)]
    return e


@_inline
def _union(parent, e1, e2):
    r1 = _find(parent, e1)
    r2 = _find(parent, e2)
    if r1 != r2:
        parent[_u(r1)] = r2


@_jit
def acyclic_coloring(n, ptr, idx, order, hash_cap):
    """Acyclic coloring (distance-1 coloring with no 2-colored cycle).

    A 2-colored tree reached from v through two different neighbors would
    close a cycle: its other color is forbidden for v.
    """
    it = idx.dtype  # vertices, edges, colors
    nc = _color_cap(n, ptr)
    color = np.full(n, -1, np.int64)
    forbid = np.full(nc, -1, it)
    buf = np.empty(nc, it)
    mult = np.zeros(nc, np.int32)  # how many neighbors of v have each color
    n_edges = idx.size // 2 + 1
    parent = np.empty(n_edges, it)
    visit_v = np.full(n_edges, -1, it)
    visit_w = np.full(n_edges, -1, it)
    own_v = np.full(nc, -1, it)  # an edge of (v, color) made while updating v
    own_e = np.full(nc, -1, it)
    ne = 0  # edges so far, one disjoint set each
    cnt, tab, ht = _new_tables(n, idx, hash_cap)
    n_keys = n + 1
    ncolors = 0
    for v in order:
        nforb = 0
        for k in range(ptr[_u(v)], ptr[_u(v + 1)]):
            cw = color[idx[_u(k)]]
            if cw >= 0:
                if forbid[_u(cw)] != v:
                    forbid[_u(cw)] = v
                    nforb += 1
                    mult[_u(cw)] = 0
                mult[_u(cw)] += 1
        if nforb < ncolors:
            nopen = _few_open(v, ptr[_u(v + 1)] - ptr[_u(v)], nforb, ncolors, forbid, buf)
            for k in range(ptr[_u(v)], ptr[_u(v + 1)]):
                w = idx[_u(k)]
                # a tree reached twice from v holds two neighbors of v of one color:
                # a neighbor alone in its color cannot close a cycle
                if color[_u(w)] < 0 or mult[color[_u(w)]] < 2:
                    continue
                # the trees holding w's edges to open colors: look the open colors
                # up when they are fewer than w's entries, else walk the entries
                by_lookup = 0 <= nopen < cnt[_u(w)]
                for t in range(nopen if by_lookup else cnt[_u(w)]):
                    if by_lookup:
                        b = buf[_u(t)]
                        s = _ent_find(w, b, ptr, cnt, tab, ht, n_keys) if forbid[_u(b)] != v else -1
                    else:
                        s = ptr[_u(w)] + t
                        b = tab[0, _u(s)]
                    if s < 0 or forbid[_u(b)] == v:
                        continue
                    r = _find(parent, tab[1, _u(s)])
                    if visit_v[_u(r)] != v:
                        visit_v[_u(r)] = v
                        visit_w[_u(r)] = w
                    elif visit_w[_u(r)] != w:
                        nforb = _forbid(b, v, forbid, nforb)
                if nforb >= ncolors:
                    break
        c = _assign_first_free(v, forbid, color)
        fresh = c == ncolors
        ncolors = max(ncolors, c + 1)
        # grow the 2-colored trees with the edges v-w, merging those they join
        for k in range(ptr[_u(v)], ptr[_u(v + 1)]):
            a = color[idx[_u(k)]]
            if a < 0:
                continue
            w = idx[_u(k)]
            e = ne
            ne += 1
            parent[_u(e)] = e
            if own_v[_u(a)] == v:
                _union(parent, e, own_e[_u(a)])
            else:
                own_v[_u(a)] = v
                own_e[_u(a)] = e
                _ent_add(v, a, e, ptr, cnt, tab, ht, n_keys)
            s = -1 if fresh else _ent_find(w, c, ptr, cnt, tab, ht, n_keys)
            if s >= 0:
                _union(parent, e, tab[1, _u(s)])
            else:
                _ent_add(w, c, e, ptr, cnt, tab, ht, n_keys)
    return color

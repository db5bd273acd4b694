"""The one pattern algebra shared by every detection front end.

A traced array of ``m`` elements carries a :class:`Pattern`: the dependency
set of each element on the ``n`` inputs, stored as the rows of a boolean
``scipy.sparse`` matrix (m x n) plus a symbolic "depends on every input" flag
per row, so dense rows cost O(1) instead of O(n).  Every operation is a
vectorized sparse operation over whole arrays:

* an operation that only moves elements (reshape, transpose, indexing,
  gather, concatenate, pad, ...) is a gather of rows, described by an integer
  *index array* ``idx`` (``idx[k] = r + 1`` means output element ``k`` is
  row ``r`` of the stacked operands, ``0`` means no dependency); front ends
  obtain it by running the very same operation on an array of row numbers;
* an elementwise operation is a broadcast gather followed by a sparse OR;
* a reduction is a sparse product with a (m_out x m_in) group matrix;
* a contraction (matmul, dot_general, einsum) reduces each operand over the
  contracted indices and ORs the broadcast results.

Hessian patterns (for scalar ``f``) are not the Jacobian of the gradient.  A
:class:`Trace` records, in Hessian mode, the linear maps between arrays (the
first-order edges) and *events*: places where an operation is nonlinear, each
event coupling the inputs of one dependency set ``L`` with those of ``R``.
After the forward pass a reverse sweep marks the elements the output depends
on through nonzero first derivatives ("live" elements); the Hessian pattern is
the union over live events of ``L x R`` and ``R x L``.  Linear operations add
no events, ``x[i] * x[j]`` couples only ``i`` and ``j``, and a product used
only through a zero-derivative operation (round, a comparison, an integer
cast) is never live, so it adds nothing.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

__all__ = ["Pattern", "Node", "Trace", "UnknownOperationWarning"]


class UnknownOperationWarning(UserWarning):
    """An operation had no pattern rule; every output depends on every input."""


def _csr(data_rows, m, n):
    return sp.csr_matrix(data_rows, shape=(m, n), dtype=bool)


def gather_matrix(idx, m_in):
    """(len(idx) x m_in) selection matrix; ``idx[k] = r + 1`` selects row r."""
    idx = np.asarray(idx, dtype=np.int64).ravel()
    valid = idx > 0
    cols = idx[valid] - 1
    indptr = np.concatenate(([0], np.cumsum(valid, dtype=np.int64)))
    return sp.csr_matrix(
        (np.ones(cols.size, dtype=bool), cols, indptr), shape=(idx.size, m_in)
    )


def group_matrix(groups, m_out):
    """(m_out x m_in) matrix with a one at (groups[j], j): a union by group."""
    groups = np.asarray(groups, dtype=np.int64).ravel()
    return sp.csr_matrix(
        (np.ones(groups.size, dtype=bool), (groups, np.arange(groups.size))),
        shape=(m_out, groups.size),
    )


class Pattern:
    """Dependency sets of ``m`` elements on ``n`` inputs (rows of ``sp``)."""

    __slots__ = ("sp", "full", "n")

    def __init__(self, spm, full=None, n=None):
        self.n = spm.shape[1] if n is None else n
        spm = spm.tocsr() if not sp.isspmatrix_csr(spm) else spm
        counts = np.diff(spm.indptr)
        if self.n > 0 and counts.size and counts.max() >= self.n:
            sat = counts >= self.n
            full = sat if full is None else (full | sat)
        if full is not None and not full.any():
            full = None
        if full is not None and spm.nnz:
            keep = np.repeat(~full, counts)
            if not keep.all():
                newcounts = np.where(full, 0, counts)
                indptr = np.concatenate(([0], np.cumsum(newcounts)))
                spm = sp.csr_matrix(
                    (spm.data[keep], spm.indices[keep], indptr), shape=spm.shape
                )
        self.sp = spm
        self.full = full

    # construction -----------------------------------------------------
    @classmethod
    def identity(cls, n):
        return cls(sp.identity(n, dtype=bool, format="csr"), None, n)

    @classmethod
    def empty(cls, m, n):
        return cls(sp.csr_matrix((m, n), dtype=bool), None, n)

    @classmethod
    def dense(cls, m, n):
        return cls(sp.csr_matrix((m, n), dtype=bool), np.ones(m, dtype=bool), n)

    @property
    def m(self):
        return self.sp.shape[0]

    def is_empty(self):
        return self.sp.nnz == 0 and self.full is None

    # algebra ------------------------------------------------------------
    def apply(self, S):
        """Rows of the result are unions of the rows selected by S (m_out x m)."""
        spm = S @ self.sp
        full = None
        if self.full is not None:
            full = (S @ self.full.astype(np.int32)) > 0
        return Pattern(spm, full, self.n)

    def union(self, other):
        full = self.full
        if other.full is not None:
            full = other.full if full is None else (full | other.full)
        return Pattern(self.sp + other.sp, full, self.n)

    def rows(self, sel):
        """Sub-pattern of the rows where the boolean mask ``sel`` holds."""
        full = None if self.full is None else self.full[sel]
        return Pattern(self.sp[sel], full, self.n)

    def any_rows(self):
        """The union of all rows as a boolean vector of length n."""
        if self.full is not None:
            return np.ones(self.n, dtype=bool)
        out = np.zeros(self.n, dtype=bool)
        out[self.sp.indices] = True
        return out

    def to_csr(self):
        """Materialise as a canonical boolean ``scipy.sparse.csr_array``."""
        spm = self.sp.copy()
        spm.sum_duplicates()
        if self.full is None:
            return sp.csr_array(spm)
        return sp.csr_array(spm + _full_rows(self.full, self.n))


def _full_rows(mask, n):
    """csr with rows ``mask`` entirely True, built without per-entry work."""
    m = mask.size
    counts = np.where(mask, n, 0).astype(np.int64)
    indptr = np.concatenate(([0], np.cumsum(counts)))
    itype = np.int32 if max(indptr[-1], n) < 2**31 else np.int64
    indices = np.tile(np.arange(n, dtype=itype), int(mask.sum()))
    data = np.ones(indices.size, dtype=bool)
    return sp.csr_matrix((data, indices, indptr.astype(itype)), shape=(m, n))


class Node:
    """A traced array's dependency information inside a :class:`Trace`."""

    __slots__ = ("pat", "id", "shape")

    def __init__(self, pat, nid, shape):
        self.pat = pat
        self.id = nid
        self.shape = tuple(shape)

    @property
    def size(self):
        return self.pat.m


def _shape_size(shape):
    return int(np.prod(shape, dtype=np.int64))


def broadcast_index(shape, out_shape):
    """Index array (1-based) broadcasting an array of ``shape`` to ``out_shape``."""
    idx = np.arange(1, _shape_size(shape) + 1, dtype=np.int64).reshape(shape)
    return np.broadcast_to(idx, out_shape)


def reduce_groups(shape, axes):
    """Output position of each input element when reducing ``axes``; and m_out."""
    kshape = tuple(1 if ax in axes else s for ax, s in enumerate(shape))
    m_out = _shape_size(kshape)
    groups = np.broadcast_to(np.arange(m_out, dtype=np.int64).reshape(kshape), shape)
    return groups.ravel(), m_out


class Trace:
    """Shared state of one detection: input count, mode and (Hessian) tape."""

    # expanded element count above which a bilinear contraction's Hessian
    # events are recorded on the (conservative) reduced operands instead
    EXPAND_LIMIT = 20_000_000

    def __init__(self, n, hessian=False):
        self.n = n
        self.hessian = hessian
        self._next = 0
        self.edges = []  # (out_id, in_id, S or None)
        self.events = []  # (owner_id, owner_rows or None, L, R)

    # nodes ------------------------------------------------------------
    def node(self, pat, shape):
        self._next += 1
        return Node(pat, self._next, shape)

    def input(self, shape):
        return self.node(Pattern.identity(self.n), shape)

    def _event(self, owner, L, R, owner_rows=None):
        if self.hessian and not L.is_empty() and not R.is_empty():
            self.events.append((owner.id, owner_rows, L, R))

    def _finish(self, shape, parts):
        """Node from first-order parts [(node, S or None)]; records the edges."""
        parts = [(nd, S) for nd, S in parts if nd is not None]
        if not parts:
            return None
        pat = None
        for nd, S in parts:
            p = nd.pat if S is None else nd.pat.apply(S)
            pat = p if pat is None else pat.union(p)
        if pat.is_empty():
            return None
        out = self.node(pat, shape)
        if self.hessian:
            for nd, S in parts:
                self.edges.append((out.id, nd.id, S))
        return out

    # operations ---------------------------------------------------------
    def broadcast_parts(self, operands, out_shape):
        """Per operand (node or None, shape): (node, S) broadcasting it to out."""
        out_shape = tuple(out_shape)
        parts = []
        for nd, shape in operands:
            if nd is None:
                parts.append((None, None))
            elif tuple(shape) == out_shape:
                parts.append((nd, None))
            else:
                parts.append((nd, gather_matrix(broadcast_index(shape, out_shape), nd.size)))
        return parts

    def elementwise(self, operands, out_shape, first, second=()):
        """Elementwise op on broadcast operands.

        ``first[i]``: the derivative in operand i is not identically zero;
        ``second``: pairs (i, j) whose second derivative is not identically
        zero (i == j for the curvature of one operand).
        """
        parts = self.broadcast_parts(operands, out_shape)
        use = [(nd, S) if first[i] else (None, None) for i, (nd, S) in enumerate(parts)]
        out = self._finish(out_shape, use)
        if out is None or not self.hessian or not second:
            return out
        cache = {}

        def pat(i):
            if i not in cache:
                nd, S = parts[i]
                cache[i] = None if nd is None else (nd.pat if S is None else nd.pat.apply(S))
            return cache[i]

        for i, j in second:
            pi, pj = pat(i), pat(j)
            if pi is not None and pj is not None:
                self._event(out, pi, pj)
        return out

    def move(self, idx, operands, out_shape):
        """Elements moved from the stacked operands by a 1-based index array."""
        idx = np.asarray(idx, dtype=np.int64).ravel()
        parts, off = [], 0
        for nd, size in operands:
            if nd is not None:
                local = idx - off
                local = np.where((local > 0) & (local <= size), local, 0)
                if local.any():
                    parts.append((nd, gather_matrix(local, size)))
            off += size
        return self._finish(out_shape, parts)

    def linear_map(self, nd, S, out_shape):
        """First-order map by an arbitrary boolean (m_out x m_in) matrix."""
        return self._finish(out_shape, [(nd, S)])

    def reduce(self, nd, shape, axes, out_shape, nonlinear=False):
        """Union over ``axes``; ``nonlinear`` (prod, norm, var...) couples all."""
        if nd is None:
            return None
        axes = tuple(sorted(a % len(shape) for a in axes)) if shape else ()
        groups, m_out = reduce_groups(shape, axes)
        out = self._finish(out_shape, [(nd, group_matrix(groups, m_out))])
        if nonlinear and out is not None:
            self._event(out, out.pat, out.pat)
        return out

    def select(self, operands, masks, out_shape):
        """Elementwise choice: operand i counts where ``masks[i]`` (or None: all)."""
        parts = []
        for (nd, shape), mask in zip(operands, masks):
            if nd is None:
                continue
            idx = broadcast_index(shape, out_shape)
            if mask is not None:
                idx = np.where(np.broadcast_to(mask, out_shape), idx, 0)
            parts.append((nd, gather_matrix(idx, nd.size)))
        return self._finish(out_shape, parts)

    def join(self, nodes, out_shape):
        """Union of same-shaped nodes (both branches of a data-dependent choice)."""
        return self._finish(out_shape, [(nd, None) for nd in nodes])

    def dense_op(self, name, nodes, out_shape, warn=True, nonlinear=True):
        """Conservative rule: every output depends on every input of ``nodes``."""
        if warn:
            warnings.warn(
                f"no sparsity rule for operation {name!r}: every output is assumed "
                "to depend on every input (the pattern may be denser than needed)",
                UnknownOperationWarning,
                stacklevel=4,
            )
        m_out = _shape_size(out_shape)
        parts = [(nd, _all_map(m_out, nd.size)) for nd in nodes if nd is not None]
        out = self._finish(out_shape, parts)
        if nonlinear and out is not None:
            self._event(out, out.pat, out.pat)
        return out

    def contract(self, a, a_shape, a_sub, b, b_shape, b_sub, out_sub, out_shape):
        """Bilinear contraction ``einsum(a_sub,b_sub->out_sub)``; a or b may be None."""
        sizes = dict(zip(a_sub, a_shape))
        sizes.update(zip(b_sub, b_shape))
        if len(set(a_sub)) < len(a_sub) or len(set(b_sub)) < len(b_sub):
            return self.dense_op("einsum with repeated indices", [a, b], out_shape, warn=False)
        parts = []
        for nd, sub, shape in ((a, a_sub, a_shape), (b, b_sub, b_shape)):
            if nd is None:
                parts.append(None)
                continue
            parts.append(self._reduce_to(nd, sub, shape, out_sub, sizes, out_shape))
        pats = [p for p in parts if p is not None]
        if not pats:
            return None
        pat = pats[0] if len(pats) == 1 else pats[0].union(pats[1])
        out = self.node(pat, out_shape)
        if self.hessian:
            for nd, sub, shape in ((a, a_sub, a_shape), (b, b_sub, b_shape)):
                if nd is not None:
                    self.edges.append((out.id, nd.id, self._contract_map(sub, shape, out_sub, sizes, out_shape)))
            if a is not None and b is not None:
                self._bilinear_events(out, a, a_sub, b, b_sub, out_sub, sizes, parts)
        return out

    def _reduce_to(self, nd, sub, shape, out_sub, sizes, out_shape):
        return nd.pat.apply(self._contract_map(sub, shape, out_sub, sizes, out_shape))

    @staticmethod
    def _contract_map(sub, shape, out_sub, sizes, out_shape):
        """(m_out x m_in) matrix: output element <- operand elements it sums."""
        # output position of every operand element, per kept index; the
        # operand is reduced over its letters missing from the output, then
        # broadcast along the output letters it lacks.
        kept = [c for c in sub if c in out_sub]
        red_axes = tuple(i for i, c in enumerate(sub) if c not in out_sub)
        groups, m_red = reduce_groups(tuple(shape), red_axes)
        R = group_matrix(groups, m_red)
        red_shape = tuple(sizes[c] for c in kept)
        idx = np.arange(1, m_red + 1, dtype=np.int64).reshape(red_shape)
        perm = sorted(range(len(kept)), key=lambda i: out_sub.index(kept[i]))
        idx = idx.transpose(perm)
        expand = tuple(sizes[c] if c in kept else 1 for c in out_sub)
        idx = np.broadcast_to(idx.reshape(expand), tuple(out_shape))
        B = gather_matrix(idx, m_red)
        if B.nnz * (R.shape[1] / max(R.shape[0], 1)) <= 2e7:
            return (B @ R).tocsr()
        return _Composite(B, R)

    def _bilinear_events(self, out, a, a_sub, b, b_sub, out_sub, sizes, parts):
        letters = list(out_sub) + [c for c in dict.fromkeys(a_sub + b_sub) if c not in out_sub]
        eshape = tuple(sizes[c] for c in letters)
        esize = _shape_size(eshape)
        if esize > self.EXPAND_LIMIT:  # conservative: reduced operands
            self._event(out, parts[0], parts[1])
            return
        pats = []
        for nd, sub in ((a, a_sub), (b, b_sub)):
            idx = np.arange(1, nd.size + 1, dtype=np.int64).reshape(nd.shape)
            perm = sorted(range(len(sub)), key=lambda i: letters.index(sub[i]))
            idx = idx.transpose(perm).reshape(tuple(sizes[c] if c in sub else 1 for c in letters))
            pats.append(nd.pat.apply(gather_matrix(np.broadcast_to(idx, eshape), nd.size)))
        owner, _ = reduce_groups(eshape, tuple(range(len(out_sub), len(letters))))
        self._event(out, pats[0], pats[1], owner_rows=owner)

    # Hessian --------------------------------------------------------------
    def hessian_pattern(self, out):
        """Symmetric (n x n) csr_array of the scalar output node ``out``."""
        n = self.n
        if out is None:
            return sp.csr_array((n, n), dtype=bool)
        live = {out.id: np.ones(out.size, dtype=bool)}
        for oid, iid, S in sorted(self.edges, key=lambda e: -e[0]):
            lo = live.get(oid)
            if lo is None or not lo.any():
                continue
            if S is None:
                li = lo
            else:
                li = (S.T @ lo.astype(np.int32)) > 0
            prev = live.get(iid)
            live[iid] = li if prev is None else (prev | li)
        Ls, Rs = [], []
        for oid, rows, L, R in self.events:
            lo = live.get(oid)
            if lo is None:
                continue
            sel = lo if rows is None else lo[rows]
            if sel.all():
                Ls.append(L)
                Rs.append(R)
            elif sel.any():
                Ls.append(L.rows(sel))
                Rs.append(R.rows(sel))
        return _pairs_to_csr(Ls, Rs, n)


class _Composite:
    """A product B @ R kept factored (the dense product would be too large)."""

    def __init__(self, B, R):
        self.B, self.R = B, R
        self.shape = (B.shape[0], R.shape[1])

    def __matmul__(self, other):
        return self.B @ (self.R @ other)

    @property
    def T(self):
        return _Composite(self.R.T.tocsr(), self.B.T.tocsr())


def _all_map(m_out, m_in):
    """Every output from every input, kept factored (O(m_out + m_in))."""
    return _Composite(
        sp.csr_matrix(np.ones((m_out, 1), dtype=bool)),
        sp.csr_matrix(np.ones((1, m_in), dtype=bool)),
    )


def _pairs_to_csr(Ls, Rs, n):
    """Union over events of L x R and R x L, with symbolic full rows."""
    if not Ls:
        return sp.csr_array((n, n), dtype=bool)
    full_set = np.zeros(n, dtype=bool)
    sparse_L, sparse_R = [], []
    for L, R in zip(Ls, Rs):
        fl = L.full if L.full is not None else np.zeros(L.m, dtype=bool)
        fr = R.full if R.full is not None else np.zeros(R.m, dtype=bool)
        both = fl & fr
        if both.any():
            return sp.csr_array(_full_rows(np.ones(n, dtype=bool), n))
        if fl.any():
            full_set |= R.rows(fl).any_rows()
        if fr.any():
            full_set |= L.rows(fr).any_rows()
        keep = ~(fl | fr)
        sparse_L.append(L.sp[keep] if not keep.all() else L.sp)
        sparse_R.append(R.sp[keep] if not keep.all() else R.sp)
    if full_set.all():
        return sp.csr_array(_full_rows(full_set, n))
    Lm = sp.vstack(sparse_L, format="csr")
    Rm = sp.vstack(sparse_R, format="csr")
    H = (Lm.T.tocsr() @ Rm).tocsr()
    H = H + H.T
    if full_set.any():
        F = _full_rows(full_set, n)
        H = H + F + F.T
    H = H.tocsr()
    H.sum_duplicates()
    return sp.csr_array(H)

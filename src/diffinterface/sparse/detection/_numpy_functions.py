"""NumPy front end, part 2: the handlers of NumPy functions on tracers.

``Tracer.__array_function__`` looks functions up in ``_FUNCTIONS`` (reductions,
contractions, ``where``/``clip``/``sort``, linear algebra, shape queries) and
``_STRUCTURAL`` (functions that only move entries: reshapes, concatenation,
indexing, ...); anything else goes to ``_fallback``, which makes every output
depend on every traced input and warns.
"""

from __future__ import annotations

import numpy as np

from ._numpy_tracer import Tracer, _cumulative, _dep, _minmax, _node, _reduction, _val

def _contract_matmul(ctx, inputs, value):
    a, b = inputs
    va, vb = np.asarray(_val(a)), np.asarray(_val(b))
    letters = "abcdefghijklmnopqrstuvwxyz"
    batch = np.broadcast_shapes(va.shape[:-2], vb.shape[:-2])
    nb = len(batch)
    B = letters[:nb]
    if va.ndim == 1:
        a_sub, ash = "y", va.shape
    else:
        a = np.broadcast_to(a, batch + va.shape[-2:]) if va.shape[:-2] != batch else a
        a_sub, ash = B + "xy", batch + va.shape[-2:]
    if vb.ndim == 1:
        b_sub, bsh = "y", vb.shape
    else:
        b = np.broadcast_to(b, batch + vb.shape[-2:]) if vb.shape[:-2] != batch else b
        b_sub, bsh = B + "yz", batch + vb.shape[-2:]
    out_sub = (B if (va.ndim > 1 or vb.ndim > 1) else "") + ("x" if va.ndim > 1 else "") + ("z" if vb.ndim > 1 else "")
    return _einsum_nodes(ctx, value, [(a, a_sub, ash), (b, b_sub, bsh)], out_sub)


def _einsum_nodes(ctx, value, operands, out_sub):
    (a, a_sub, ash), (b, b_sub, bsh) = operands
    dep = _dep(a) or _dep(b)
    out = ctx.trace.contract(_node(a), ash, a_sub, _node(b), bsh, b_sub, out_sub, np.shape(value))
    return ctx.wrap(value, out, dep)


def _einsum(ctx, func, args, kwargs):
    value = np.einsum(*[_val(a) for a in args], **kwargs)
    if not isinstance(args[0], str) or "..." in args[0] or "->" not in args[0]:
        return _fallback(ctx, "np.einsum (implicit output or ellipsis)", np.einsum, args, kwargs)
    ins, out_sub = args[0].replace(" ", "").split("->")
    subs = ins.split(",")
    ops = list(args[1:])
    if len(ops) == 1:
        ops.append(np.ones(()))
        subs.append("")
    while len(ops) > 2:  # fold left: contract the first two, keep the letters still needed
        rest = "".join(subs[2:]) + out_sub
        mid = "".join(dict.fromkeys(c for c in subs[0] + subs[1] if c in rest))
        v = np.einsum(f"{subs[0]},{subs[1]}->{mid}", _val(ops[0]), _val(ops[1]))
        t = _einsum_nodes(ctx, v, [(ops[0], subs[0], np.shape(_val(ops[0]))),
                                   (ops[1], subs[1], np.shape(_val(ops[1])))], mid)
        ops, subs = [t] + ops[2:], [mid] + subs[2:]
    return _einsum_nodes(ctx, value, [(ops[0], subs[0], np.shape(_val(ops[0]))),
                                      (ops[1], subs[1], np.shape(_val(ops[1])))], out_sub)


def _dot(ctx, func, args, kwargs):
    a, b = args[:2]
    va, vb = np.asarray(_val(a)), np.asarray(_val(b))
    if va.ndim == 0 or vb.ndim == 0:
        return np.multiply(a, b)
    if func is np.vdot:
        return np.sum(np.multiply(np.ravel(a), np.ravel(b)))
    if func is np.inner or (func is np.dot and vb.ndim == 1) or va.ndim <= 2 and vb.ndim <= 2:
        if func is np.inner and vb.ndim > 1:
            b = np.swapaxes(b, -1, -2)
        return np.matmul(a, b)
    return _fallback(ctx, f"np.{func.__name__}", func, args, kwargs, warn=False)


def _tensordot(ctx, func, args, kwargs):
    a, b = args[:2]
    axes = args[2] if len(args) > 2 else kwargs.get("axes", 2)
    na, nb = np.ndim(_val(a)), np.ndim(_val(b))
    if isinstance(axes, (int, np.integer)):
        axes = (list(range(na - axes, na)), list(range(axes)))
    ax_a, ax_b = ([axes[0]] if np.ndim(axes[0]) == 0 else list(axes[0]),
                  [axes[1]] if np.ndim(axes[1]) == 0 else list(axes[1]))
    L = "abcdefghijklmnopqrstuvwxyz"
    a_sub = L[:na]
    b_sub = list(L[na:na + nb])
    for i, j in zip(ax_a, ax_b):
        b_sub[j] = a_sub[i]
    b_sub = "".join(b_sub)
    out_sub = "".join(c for c in a_sub if c not in b_sub) + "".join(c for c in b_sub if c not in a_sub)
    return _einsum(ctx, np.einsum, (f"{a_sub},{b_sub}->{out_sub}", a, b), {})


def _outer(ctx, func, args, kwargs):
    return np.multiply.outer(np.ravel(args[0]), np.ravel(args[1]))


# structural operations: run the same function on arrays of row numbers --------
def _getitem(a, key):
    return a[key]


def _setitem(a, key, value):
    a = np.array(a, copy=True)
    a[key] = value
    return a


def _walk(obj, fn):
    if isinstance(obj, Tracer):
        return fn(obj)
    if isinstance(obj, list):
        return [_walk(o, fn) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_walk(o, fn) for o in obj)
    return obj


def _index_tracers(obj):
    """Tracers used as indices (in a key or an indices argument)."""
    found = []
    _walk(obj, found.append)
    return found


def _structural(ctx, func, args, kwargs):
    """Functions that only move elements of their data argument(s)."""
    data, params = args[0], args[1:]
    value = func(_walk(data, _val), *_walk(params, _val), **kwargs)
    keys = params[:1] if func is _setitem else params
    idx_tracers = [t for t in _index_tracers(keys) if t._dep]
    tracers = _index_tracers(data)
    offs, operands = {}, []
    off = 0
    for t in tracers:
        offs[id(t)] = off
        operands.append((t._nd, t.size))
        off += t.size

    def index(t):
        return np.arange(offs[id(t)] + 1, offs[id(t)] + t.size + 1, dtype=np.int64).reshape(t.shape)

    if isinstance(data, (list, tuple)):
        idx_data = type(data)(index(o) if isinstance(o, Tracer) else np.zeros(np.shape(o), np.int64)
                              for o in data)
    elif isinstance(data, Tracer):
        idx_data = index(data)
    else:
        idx_data = np.zeros(np.shape(data), dtype=np.int64)
    kw = {k: v for k, v in kwargs.items() if k not in ("dtype", "constant_values", "out")}
    pvals = list(_walk(params, _val))
    if func is _setitem:  # the value assigned is data too
        v = params[1]
        if isinstance(v, Tracer):
            offs[id(v)] = off
            operands.append((v._nd, v.size))
            pvals[1] = np.arange(off + 1, off + v.size + 1, dtype=np.int64).reshape(v.shape)
        else:
            pvals[1] = 0
    index_out = func(idx_data, *pvals, **kw)
    dep = any(t._dep for t in tracers) or bool(idx_tracers)
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(ctx, v, i, operands, dep, idx_tracers, tracers)
                           for v, i in zip(value, index_out))
    return _moved(ctx, value, index_out, operands, dep, idx_tracers, tracers)


def _moved(ctx, value, index_out, operands, dep, idx_tracers, tracers):
    value = np.asarray(value)
    if idx_tracers and not ctx.local:  # data-dependent positions: all elements
        nodes = [t._nd for t in tracers]
        out = ctx.trace.dense_op("indexing", nodes, value.shape, warn=False, nonlinear=False)
        return ctx.wrap(value, out, dep)
    return ctx.wrap(value, ctx.trace.move(index_out, operands, value.shape), dep)


_STRUCTURAL = {
    np.reshape, np.ravel, np.transpose, np.swapaxes, np.moveaxis, np.squeeze,
    np.expand_dims, np.concatenate, np.stack, np.hstack, np.vstack, np.dstack,
    np.column_stack, np.flip, np.fliplr, np.flipud, np.roll, np.rot90, np.tile,
    np.repeat, np.broadcast_to, np.broadcast_arrays, np.pad, np.take,
    np.take_along_axis, np.diag, np.diagonal, np.triu, np.tril, np.atleast_1d,
    np.atleast_2d, np.atleast_3d, np.split, np.array_split, np.hsplit, np.vsplit,
    np.copy, np.delete, np.resize, np.real,
}


# other functions ------------------------------------------------------------------
def _arg(args, kwargs, i, name, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _sum_like(ctx, func, args, kwargs):
    a = args[0]
    value = func(_val(a), *args[1:], **kwargs)
    nonlin = func in (np.prod, np.var, np.std, np.nanprod, np.nanvar, np.nanstd)
    return _reduction(ctx, a, value, _arg(args, kwargs, 1, "axis"), nonlinear=nonlin)


def _max_like(ctx, func, args, kwargs):
    a = args[0]
    value = func(_val(a), *args[1:], **kwargs)
    return _minmax(ctx, a, value, _arg(args, kwargs, 1, "axis"), kwargs.get("keepdims", False))


def _cum(ctx, func, args, kwargs):
    a = args[0]
    axis = _arg(args, kwargs, 1, "axis")
    if axis is None:
        a, axis = np.ravel(a), 0
    uf = np.add if func is np.cumsum else np.multiply
    return _cumulative(ctx, uf, a, axis)


def _where(ctx, func, args, kwargs):
    if len(args) == 1:
        return np.nonzero(args[0])
    cond, a, b = args
    value = np.where(_val(cond), _val(a), _val(b))
    ops = [(_node(a), np.shape(_val(a))), (_node(b), np.shape(_val(b)))]
    dep = _dep(cond) or _dep(a) or _dep(b)
    if _dep(cond) and not ctx.local:
        masks = [None, None]  # both branches joined
    else:
        c = np.asarray(_val(cond), dtype=bool)
        masks = [c, ~c]
    return ctx.wrap(value, ctx.trace.select(ops, masks, value.shape), dep)


def _clip(ctx, func, args, kwargs):
    a = args[0]
    lo, hi = _arg(args, kwargs, 1, "a_min", kwargs.get("min")), _arg(args, kwargs, 2, "a_max", kwargs.get("max"))
    out = a
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    return out


def _sort(ctx, func, args, kwargs):
    a = args[0]
    axis = _arg(args, kwargs, 1, "axis", -1)
    if axis is None:
        a, axis = np.ravel(a), -1
    if ctx.local:
        perm = np.argsort(_val(a), axis=axis, kind="stable")
        return np.take_along_axis(a, perm, axis=axis)
    value = np.sort(_val(a), axis=axis)
    red = _reduction(ctx, a, np.max(_val(a), axis=axis, keepdims=True), (axis,))
    return ctx.wrap(value, np.broadcast_to(red, value.shape)._nd, _dep(a))


def _int_result(ctx, func, args, kwargs):
    value = func(*_walk(list(args), _val), **kwargs)
    dep = any(t._dep for t in _index_tracers(list(args)))
    if isinstance(value, tuple):
        return tuple(ctx.wrap(v, None, dep) for v in value)
    return ctx.wrap(value, None, dep)


def _like(ctx, func, args, kwargs):
    value = func(_val(args[0]), *args[1:], **kwargs)
    return ctx.wrap(value, None, False)


def _astype(ctx, func, args, kwargs):
    a, dtype = args[0], args[1]
    value = np.asarray(_val(a)).astype(dtype)
    return ctx.wrap(value, a._nd if np.issubdtype(value.dtype, np.inexact) else None, a._dep)


def _asarray(ctx, func, args, kwargs):
    a = args[0]
    if isinstance(a, Tracer):
        dtype = kwargs.get("dtype", args[1] if len(args) > 1 else None)
        return a if dtype is None else _astype(ctx, None, (a, dtype), {})
    return func(*args, **kwargs)


def _linalg(ctx, func, args, kwargs):
    """Solves and factorizations: conservative, every output on every input."""
    tracers = _index_tracers(list(args))
    value = func(*_walk(list(args), _val), **kwargs)
    nodes = [t._nd for t in tracers]
    solve_const = func in (np.linalg.solve, np.linalg.lstsq) and not isinstance(args[0], Tracer)
    outs = value if isinstance(value, tuple) else (value,)
    res = [ctx.wrap(v, ctx.trace.dense_op(func.__name__, nodes, np.shape(v), warn=False,
                                          nonlinear=not solve_const), True) for v in outs]
    return tuple(res) if isinstance(value, tuple) else res[0]


def _norm(ctx, func, args, kwargs):
    x = args[0]
    ord_ = _arg(args, kwargs, 1, "ord")
    axis = _arg(args, kwargs, 2, "axis")
    if ord_ is None and (axis is None or np.ndim(axis) == 0):
        value = func(_val(x), *args[1:], **kwargs)
        return _reduction(ctx, x, value, axis, nonlinear=True)
    return _fallback(ctx, "np.linalg.norm", func, args, kwargs, warn=False)


def _trace_fn(ctx, func, args, kwargs):
    return np.sum(np.diagonal(*args, **kwargs), axis=-1)


def _diff(ctx, func, args, kwargs):
    a = args[0]
    n = _arg(args, kwargs, 1, "n", 1)
    axis = _arg(args, kwargs, 2, "axis", -1)
    for _ in range(n):
        L = np.shape(_val(a))[axis]
        a = np.subtract(np.take(a, np.arange(1, L), axis=axis), np.take(a, np.arange(L - 1), axis=axis))
    return a


def _fallback(ctx, name, func, args, kwargs, warn=True):
    """Unknown operation: every output depends on every traced input (warned)."""
    tracers = _index_tracers(list(args) + list(kwargs.values()))
    value = func(*_walk(list(args), _val), **{k: _walk(v, _val) for k, v in kwargs.items()})
    nodes = [t._nd for t in tracers]
    dep = any(t._dep for t in tracers)
    outs = value if isinstance(value, (tuple, list)) else (value,)
    res = []
    for i, v in enumerate(outs):
        v = np.asarray(v)
        nd = ctx.trace.dense_op(name, nodes, v.shape, warn=warn and i == 0) if np.issubdtype(
            v.dtype, np.inexact) else None
        res.append(ctx.wrap(v, nd, dep))
    return type(value)(res) if isinstance(value, (tuple, list)) else res[0]


_FUNCTIONS = {
    **{f: _sum_like for f in (np.sum, np.mean, np.nansum, np.nanmean, np.prod, np.nanprod,
                              np.var, np.std, np.nanvar, np.nanstd)},
    **{f: _max_like for f in (np.max, np.min, np.amax, np.amin, np.nanmax, np.nanmin)},
    np.cumsum: _cum, np.cumprod: _cum, np.where: _where, np.clip: _clip,
    np.sort: _sort, np.einsum: _einsum, np.tensordot: _tensordot, np.outer: _outer,
    np.dot: _dot, np.inner: _dot, np.vdot: _dot, np.matmul: lambda c, f, a, k: np.matmul(*a),
    np.linalg.norm: _norm, np.trace: _trace_fn, np.diff: _diff,
    np.asarray: _asarray, np.asanyarray: _asarray, np.astype: _astype,
    **{f: _int_result for f in (np.argsort, np.argmax, np.argmin, np.nonzero,
                                np.argwhere, np.searchsorted,
                                np.any, np.all, np.isclose, np.allclose, np.array_equal,
                                np.count_nonzero, np.round, np.around, np.floor_divide)},
    **{f: (lambda c, f, a, k: f(*_walk(list(a), _val), **k)) for f in (np.shape, np.ndim, np.size)},
    **{f: _like for f in (np.zeros_like, np.ones_like, np.empty_like, np.full_like)},
    **{f: _linalg for f in (np.linalg.solve, np.linalg.inv, np.linalg.det, np.linalg.slogdet,
                            np.linalg.cholesky, np.linalg.qr, np.linalg.eigh, np.linalg.eigvalsh,
                            np.linalg.svd, np.linalg.lstsq, np.linalg.pinv, np.linalg.eig)},
}

"""NumPy / array-API front end: a tracer array that runs plain NumPy code.

:class:`Tracer` carries the primal value (computed with NumPy itself, so
shapes, dtypes and local branches are exact) and a :class:`~._algebra.Node`
with its dependency pattern.  NumPy dispatches ufuncs to ``__array_ufunc__``
and most functions to ``__array_function__``; ``np.asarray``/``np.array`` go
through ``__array__``, which returns an object array of scalar tracers (slow
but exact), so code that starts with ``x = np.asarray(x)`` and loops over
elements still traces.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..._errors import UnsupportedOperationError
from ._algebra import Trace, broadcast_index

__all__ = ["Tracer", "DetectionContext", "trace_numpy"]

_LINEAR1 = {"negative", "positive", "conjugate", "conj", "deg2rad", "rad2deg",
            "radians", "degrees", "absolute", "fabs", "real"}
_ZERO1 = {"sign", "floor", "ceil", "rint", "trunc", "isnan", "isinf", "isfinite",
          "signbit", "logical_not", "invert", "spacing", "isnat", "bitwise_not"}
# binary: (first-order flags, second-order pairs)
_BINARY = {
    "add": ((1, 1), ()), "subtract": ((1, 1), ()),
    "multiply": ((1, 1), ((0, 1),)),
    "divide": ((1, 1), ((0, 1), (1, 1))), "true_divide": ((1, 1), ((0, 1), (1, 1))),
    "remainder": ((1, 1), ()), "fmod": ((1, 1), ()), "mod": ((1, 1), ()),
    "copysign": ((1, 0), ()), "ldexp": ((1, 0), ()),
    "maximum": ((1, 1), ()), "minimum": ((1, 1), ()), "fmax": ((1, 1), ()), "fmin": ((1, 1), ()),
}
_FULL2 = ((1, 1), ((0, 0), (0, 1), (1, 1)))
_SELECT = {"maximum": np.greater, "fmax": np.greater, "minimum": np.less, "fmin": np.less}


class DetectionContext:
    """One detection run: the shared trace plus global/local mode."""

    def __init__(self, n, hessian, local):
        self.trace = Trace(n, hessian)
        self.local = local

    def wrap(self, value, node, dep=True):
        value = np.asarray(value)
        if not np.issubdtype(value.dtype, np.inexact):
            node = None
        return Tracer(value, node, self, dep)

    def refuse(self, what):
        raise UnsupportedOperationError(
            f"{what} on a traced value: the global TracerSparsityDetector cannot follow "
            "Python control flow or conversions that depend on x; use "
            "TracerLocalSparsityDetector() for a pattern valid at this x, or rewrite "
            "the branch with np.where"
        )


def _ctx_of(objs):
    for o in objs:
        if isinstance(o, Tracer):
            return o._ctx
        if isinstance(o, (list, tuple)):
            c = _ctx_of(o)
            if c is not None:
                return c
    return None


def _val(o):
    return o._v if isinstance(o, Tracer) else o


def _node(o):
    return o._nd if isinstance(o, Tracer) else None


def _dep(o):
    return isinstance(o, Tracer) and o._dep


def _shape(o):
    return np.shape(_val(o))


class Tracer(np.lib.mixins.NDArrayOperatorsMixin):
    """An ndarray-like value whose elements carry dependency sets."""

    __array_priority__ = 1000

    def __init__(self, value, node, ctx, dep=True):
        self._v = value
        self._nd = node
        self._ctx = ctx
        self._dep = dep

    # array protocol -------------------------------------------------------
    shape = property(lambda self: self._v.shape)
    ndim = property(lambda self: self._v.ndim)
    size = property(lambda self: self._v.size)
    dtype = property(lambda self: self._v.dtype)
    T = property(lambda self: np.transpose(self))
    mT = property(lambda self: np.swapaxes(self, -1, -2))
    real = property(lambda self: self)
    device = property(lambda self: "cpu")

    def __repr__(self):
        kind = "constant" if self._nd is None else f"{self._nd.pat.sp.nnz} deps"
        return f"Tracer(shape={self.shape}, dtype={self.dtype}, {kind})"

    def __array_namespace__(self, api_version=None):
        return np

    def __len__(self):
        return len(self._v)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        """Object array of scalar tracers: the exact (slow) path of np.asarray."""
        out = np.empty(self.shape, dtype=object)
        flat = out.reshape(-1)
        rav = np.ravel(self)
        for i in range(self.size):
            flat[i] = rav[i]
        return out

    def _scalar(self, what):
        if self._dep and not self._ctx.local:
            self._ctx.refuse(what)
        if self._nd is not None and what.startswith("float"):
            warnings.warn(
                "float() of a traced value under the local detector: the result is a "
                "plain number and dependencies flowing through it are dropped",
                stacklevel=3,
            )
        return self._v

    def __bool__(self):
        return bool(self._scalar("bool()"))

    def __float__(self):
        return float(self._scalar("float()"))

    def __int__(self):
        return int(self._scalar("int()"))

    def __index__(self):
        return int(self._scalar("int()"))

    def __complex__(self):
        return complex(self._scalar("complex()"))

    def item(self):
        return self._scalar("float() / .item()").item()

    def tolist(self):
        return np.asarray(self).tolist()

    # ufuncs -----------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        ctx = _ctx_of(inputs)
        if kwargs.get("out") is not None:
            raise UnsupportedOperationError(
                f"np.{ufunc.__name__}(..., out=...) on traced values is not supported; "
                "assign the result instead"
            )
        if method == "__call__":
            return _ufunc_call(ctx, ufunc, inputs, kwargs)
        if method == "reduce":
            return _ufunc_reduce(ctx, ufunc, inputs[0], kwargs)
        if method == "accumulate":
            return _cumulative(ctx, ufunc, inputs[0], kwargs.get("axis", 0))
        if method == "outer" and len(inputs) == 2:
            a, b = inputs
            ea = np.reshape(a, np.shape(_val(a)) + (1,) * np.ndim(_val(b)))
            return _ufunc_call(ctx, ufunc, (ea, b), kwargs)
        return _fallback(ctx, f"np.{ufunc.__name__}.{method}",
                         getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        ctx = _ctx_of(args) or _ctx_of(list(kwargs.values()))
        handler = _FUNCTIONS.get(func)
        if handler is not None:
            return handler(ctx, func, args, kwargs)
        if func in _STRUCTURAL:
            return _structural(ctx, func, args, kwargs)
        return _fallback(ctx, f"np.{func.__name__}", func, args, kwargs)

    # indexing -----------------------------------------------------------------
    def __getitem__(self, key):
        return _structural(self._ctx, _getitem, (self, key), {})

    def __setitem__(self, key, value):
        res = _structural(self._ctx, _setitem, (self, key, value), {})
        self._v, self._nd, self._dep = res._v, res._nd, res._dep or self._dep

    # methods ------------------------------------------------------------------
    def reshape(self, *shape, order="C"):
        shape = shape[0] if len(shape) == 1 else shape
        return np.reshape(self, shape, order=order)

    def transpose(self, *axes):
        return np.transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    def astype(self, dtype, copy=True):
        return _astype(self._ctx, None, (self, dtype), {})

    def view(self, *args, **kwargs):
        # autograd.numpy wraps results with .view(ndarray); a tracer stays itself
        return self

    def copy(self):
        return np.copy(self)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()


def _add_methods():
    for name in ("sum", "mean", "prod", "max", "min", "cumsum", "cumprod", "ravel",
                 "flatten", "squeeze", "swapaxes", "clip", "dot", "var", "std", "any",
                 "all", "argmax", "argmin", "argsort", "sort", "diagonal", "trace",
                 "repeat", "take", "conj", "round", "nonzero"):
        np_name = {"flatten": "ravel"}.get(name, name)
        fn = getattr(np, np_name)
        setattr(Tracer, name, (lambda fn: lambda self, *a, **k: fn(self, *a, **k))(fn))
    # object arrays call these methods elementwise (np.exp(obj_array) -> x.exp())
    for name in ("exp", "log", "sin", "cos", "tan", "sqrt", "tanh", "sinh", "cosh",
                 "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "expm1",
                 "log1p", "log2", "log10", "exp2", "cbrt", "square", "reciprocal",
                 "absolute", "fabs", "sign", "floor", "ceil", "rint", "trunc",
                 "conjugate", "deg2rad", "rad2deg", "isnan", "isfinite", "isinf"):
        uf = getattr(np, name)
        if not hasattr(Tracer, name):
            setattr(Tracer, name, (lambda uf: lambda self: uf(self))(uf))


# rules -------------------------------------------------------------------------
def _ufunc_call(ctx, ufunc, inputs, kwargs):
    vals = [_val(i) for i in inputs]
    value = ufunc(*vals, **kwargs)
    dep = any(_dep(i) for i in inputs)
    if ufunc.nout > 1:
        return tuple(_fallback(ctx, f"np.{ufunc.__name__}", lambda *a: v, inputs, {}, warn=False)
                     for v in value)
    value = np.asarray(value)
    name = ufunc.__name__
    tr = ctx.trace
    ops = [(_node(i), np.shape(v)) for i, v in zip(inputs, vals)]
    if not np.issubdtype(value.dtype, np.inexact) or name in _ZERO1:
        return ctx.wrap(value, None, dep)
    if name == "matmul":
        return _contract_matmul(ctx, inputs, value)
    if ufunc.nin == 1:
        nonlin = name not in _LINEAR1
        return ctx.wrap(value, tr.elementwise(ops, value.shape, (1,), ((0, 0),) if nonlin else ()), dep)
    first, second = _BINARY.get(name, _FULL2)
    if name in ("power", "float_power"):
        first, second = _power_rule(vals, inputs)
    if name in _SELECT and ctx.local:
        va, vb = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in vals])
        wins = _SELECT[name](va, vb)
        loses = _SELECT[name](vb, va)
        return ctx.wrap(value, tr.select(ops, [~loses, ~wins], value.shape), dep)
    return ctx.wrap(value, tr.elementwise(ops, value.shape, first, second), dep)


def _power_rule(vals, inputs):
    if not isinstance(inputs[1], Tracer):
        e = np.asarray(vals[1])
        if np.all(e == 0):
            return (0, 0), ()
        if np.all(e == 1):
            return (1, 0), ()
        return (1, 0), ((0, 0),)
    return _FULL2


def _axes(ndim, axis):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        return (int(axis) % ndim,) if ndim else ()
    return tuple(int(a) % ndim for a in axis)


def _reduction(ctx, a, value, axis, nonlinear=False, select=None):
    """Reduce a tracer over axis; ``select`` (bool mask, a's shape) keeps elements."""
    a = a if isinstance(a, Tracer) else None
    value = np.asarray(value)
    if a is None or a._nd is None:
        return ctx.wrap(value, None, _dep(a))
    shape = a.shape
    axes = _axes(len(shape), axis)
    nd = a._nd
    if select is not None:
        nd = ctx.trace.select([(nd, shape)], [select], shape)
    out = ctx.trace.reduce(nd, shape, axes, value.shape, nonlinear=nonlinear)
    return ctx.wrap(value, out, a._dep)


def _ufunc_reduce(ctx, ufunc, a, kwargs):
    value = ufunc.reduce(_val(a), **kwargs)
    axis = kwargs.get("axis", 0)
    name = ufunc.__name__
    if name in ("add", "subtract"):
        return _reduction(ctx, a, value, axis)
    if name in _SELECT:
        return _minmax(ctx, a, value, axis, kwargs.get("keepdims", False))
    if name == "multiply":
        return _reduction(ctx, a, value, axis, nonlinear=True)
    return _reduction(ctx, a, value, axis, nonlinear=True)


def _minmax(ctx, a, value, axis, keepdims):
    sel = None
    if ctx.local and isinstance(a, Tracer) and a.size:
        axes = _axes(a.ndim, axis)
        kv = np.asarray(value)
        if not keepdims:
            kv = np.expand_dims(kv, axes) if axes else kv
        sel = np.broadcast_to(kv, a.shape) == a._v
    return _reduction(ctx, a, value, axis, select=sel)


def _cumulative(ctx, ufunc, a, axis):
    value = ufunc.accumulate(_val(a), axis=axis)
    if not isinstance(a, Tracer) or a._nd is None:
        return ctx.wrap(value, None, _dep(a))
    shape = a.shape
    ax = axis % len(shape)
    L = shape[ax]
    # out[..., k, ...] = union of in[..., j, ...] for j <= k: a move per j
    base = np.arange(1, a.size + 1).reshape(shape)
    moved = np.moveaxis(base, ax, -1)
    k = np.arange(L)
    tri = k[:, None] >= k[None, :]  # (k, j)
    cols = np.where(tri, moved[..., None, :], 0)  # (..., k, j)
    out_index = np.moveaxis(cols, -2, ax)  # (shape..., j)
    rows = np.repeat(np.arange(a.size), L)
    flat = out_index.reshape(-1)
    keep = flat > 0
    import scipy.sparse as sp

    S = sp.csr_matrix((np.ones(keep.sum(), bool), (rows[keep], flat[keep] - 1)),
                      shape=(a.size, a.size))
    out = ctx.trace.linear_map(a._nd, S, shape)
    if ufunc.__name__ not in ("add", "subtract") and out is not None:
        ctx.trace._event(out, out.pat, out.pat)
    return ctx.wrap(value, out, a._dep)


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
_add_methods()


def trace_numpy(f, x, contexts, hessian, local):
    """Run ``f`` on a tracer for ``x``; return (output pattern node(s), ctx)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.inexact):
        x = x.astype(float)
    ctx = DetectionContext(x.size, hessian, local)
    tx = Tracer(x, ctx.trace.input(x.shape), ctx, True)
    y = f(tx, *contexts)
    return ctx, _collect(ctx, y)


def _collect(ctx, y):
    """The output as one Node (or None): object arrays/lists of tracers are stacked."""
    if isinstance(y, Tracer):
        return y._nd, y.size
    arr = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if arr.dtype != object:
        return None, arr.size
    flat = arr.reshape(-1)
    parts = [np.reshape(e, (1,)) if isinstance(e, Tracer) else np.zeros(1) for e in flat]
    if not any(isinstance(e, Tracer) for e in flat):
        return None, flat.size
    stacked = np.concatenate(parts)
    return stacked._nd, flat.size

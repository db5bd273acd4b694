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
from ._algebra import Trace

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


# the array-function handlers live in their own module; they need Tracer, so they are
# imported here, after everything they use is defined
from ._numpy_functions import (  # noqa: E402
    _FUNCTIONS, _STRUCTURAL, _astype, _contract_matmul, _fallback, _getitem, _setitem, _structural,
)

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

"""PyTorch front end: trace ``f`` to an ATen graph with ``make_fx`` and interpret it.

Each ATen operation is mapped onto the NumPy tracer (:mod:`._numpy_tracer`),
so the pattern rules are the single shared algebra.  The global detector
traces with fake tensors: Python control flow on values of ``x`` fails there
and is reported with a pointer to the local detector; the local detector
traces with the real ``x`` and follows the branches taken.  Operations with
no tensor input that depends on ``x`` run in PyTorch itself.
"""

from __future__ import annotations

import numpy as np

from ..._errors import UnsupportedOperationError
from ._numpy_tracer import DetectionContext, Tracer, _collect, _fallback

__all__ = ["trace_torch"]


def _dims(d, ndim):
    if d is None or (isinstance(d, (list, tuple)) and len(d) == 0):
        return None
    return tuple(d) if isinstance(d, (list, tuple)) else d


def _slice(x, dim=0, start=None, end=None, step=1):
    key = [slice(None)] * np.ndim(x)
    n = np.shape(x)[dim]
    start = None if start is None else max(min(start, n), -n)
    end = None if end is None else max(min(end, n), -n - 1)
    key[dim] = slice(start, end, step)
    return x[tuple(key)]


def _select(x, dim, index):
    key = [slice(None)] * np.ndim(x)
    key[dim] = index
    return x[tuple(key)]


def _index(x, indices):
    return x[tuple(slice(None) if i is None else i for i in indices)]


def _sum(x, dim=None, keepdim=False, dtype=None):
    return np.sum(x, axis=_dims(dim, np.ndim(x)), keepdims=keepdim)


def _mean(x, dim=None, keepdim=False, dtype=None):
    return np.mean(x, axis=_dims(dim, np.ndim(x)), keepdims=keepdim)


def _expand(x, size, implicit=False):
    shape = np.shape(x)
    size = tuple(s if s != -1 else shape[i - len(size) + len(shape)] for i, s in enumerate(size))
    return np.broadcast_to(x, size)


def _view(x, shape):
    return np.reshape(x, tuple(shape))


def _squeeze(x, dim=None):
    if dim is None:
        return np.squeeze(x)
    dims = [dim] if isinstance(dim, int) else list(dim)
    dims = tuple(d % np.ndim(x) for d in dims if np.shape(x)[d] == 1) if np.ndim(x) else ()
    return np.squeeze(x, axis=dims) if dims else x


def _cat(tensors, dim=0):
    return np.concatenate([t for t in tensors if np.size(t) or np.ndim(t) > 1], axis=dim)


def _maxdim(x, dim, keepdim=False):
    return np.max(x, axis=dim, keepdims=keepdim), np.argmax(x, axis=dim, keepdims=keepdim)


def _ops():
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    return {
        "add.Tensor": lambda a, b, alpha=1: np.add(a, b if alpha == 1 else np.multiply(b, alpha)),
        "add.Scalar": lambda a, b, alpha=1: np.add(a, b * alpha),
        "sub.Tensor": lambda a, b, alpha=1: np.subtract(a, b if alpha == 1 else np.multiply(b, alpha)),
        "sub.Scalar": lambda a, b, alpha=1: np.subtract(a, b * alpha),
        "rsub.Scalar": lambda a, b, alpha=1: np.subtract(b, np.multiply(a, alpha)),
        "rsub.Tensor": lambda a, b, alpha=1: np.subtract(b, np.multiply(a, alpha)),
        "mul.Tensor": np.multiply, "mul.Scalar": np.multiply,
        "div.Tensor": np.divide, "div.Scalar": np.divide,
        "pow.Tensor_Scalar": np.power, "pow.Tensor_Tensor": np.power, "pow.Scalar": np.power,
        "neg.default": np.negative, "exp.default": np.exp, "log.default": np.log,
        "sin.default": np.sin, "cos.default": np.cos, "tan.default": np.tan,
        "tanh.default": np.tanh, "sqrt.default": np.sqrt, "abs.default": np.abs,
        "rsqrt.default": lambda x: 1.0 / np.sqrt(x), "reciprocal.default": np.reciprocal,
        "sigmoid.default": sig, "log1p.default": np.log1p, "expm1.default": np.expm1,
        "sinh.default": np.sinh, "cosh.default": np.cosh, "atan.default": np.arctan,
        "asin.default": np.arcsin, "acos.default": np.arccos, "atan2.default": np.arctan2,
        "square.default": np.square, "sign.default": np.sign, "floor.default": np.floor,
        "ceil.default": np.ceil, "round.default": np.round, "trunc.default": np.trunc,
        "relu.default": lambda x: np.maximum(x, 0.0),
        "maximum.default": np.maximum, "minimum.default": np.minimum,
        "clamp.default": lambda x, lo=None, hi=None: np.clip(x, lo, hi),
        "clamp_min.default": lambda x, lo: np.maximum(x, lo),
        "clamp_max.default": lambda x, hi: np.minimum(x, hi),
        "where.self": np.where,
        **{f"{c}.{k}": getattr(np, u) for c, u in (("gt", "greater"), ("lt", "less"),
                                                  ("ge", "greater_equal"), ("le", "less_equal"),
                                                  ("eq", "equal"), ("ne", "not_equal"))
           for k in ("Tensor", "Scalar")},
        "logical_not.default": np.logical_not, "logical_and.default": np.logical_and,
        "logical_or.default": np.logical_or,
        "sum.dim_IntList": _sum, "sum.default": _sum, "mean.dim": _mean, "mean.default": _mean,
        "prod.default": lambda x, dtype=None: np.prod(x),
        "prod.dim_int": lambda x, dim, keepdim=False, dtype=None: np.prod(x, axis=dim, keepdims=keepdim),
        "amax.default": lambda x, dim=(), keepdim=False: np.max(x, axis=_dims(dim, 0), keepdims=keepdim),
        "amin.default": lambda x, dim=(), keepdim=False: np.min(x, axis=_dims(dim, 0), keepdims=keepdim),
        "max.default": np.max, "min.default": np.min, "max.dim": _maxdim,
        "cumsum.default": lambda x, dim, dtype=None: np.cumsum(x, axis=dim),
        "cumprod.default": lambda x, dim, dtype=None: np.cumprod(x, axis=dim),
        "mm.default": np.matmul, "bmm.default": np.matmul, "mv.default": np.matmul,
        "matmul.default": np.matmul, "dot.default": np.matmul,
        "view.default": _view, "reshape.default": _view, "_unsafe_view.default": _view,
        "permute.default": lambda x, dims: np.transpose(x, dims), "t.default": np.transpose,
        "transpose.int": lambda x, a, b: np.swapaxes(x, a, b),
        "unsqueeze.default": np.expand_dims, "squeeze.dim": _squeeze, "squeeze_.dim": _squeeze,
        "squeeze.dims": _squeeze, "squeeze.default": _squeeze,
        "expand.default": _expand, "cat.default": _cat,
        "stack.default": lambda ts, dim=0: np.stack(ts, axis=dim),
        "roll.default": lambda x, shifts, dims=(): np.roll(x, tuple(shifts), axis=_dims(dims, 0)),
        "flip.default": lambda x, dims: np.flip(x, axis=tuple(dims)),
        "slice.Tensor": _slice, "select.int": _select, "index.Tensor": _index,
        "clone.default": np.copy, "alias.default": np.copy, "lift_fresh_copy.default": np.copy,
        "_to_copy.default": lambda x, **kw: x, "detach.default": np.copy,
        "constant_pad_nd.default": lambda x, pad, value=0.0: _pad(x, pad, value),
        "sort.default": lambda x, dim=-1, descending=False: (np.sort(x, axis=dim), np.argsort(x, axis=dim)),
        "diagonal.default": lambda x, offset=0, dim1=0, dim2=1: np.diagonal(x, offset, dim1, dim2),
        "tril.default": np.tril, "triu.default": np.triu,
    }


def _pad(x, pad, value):
    nd = np.ndim(x)
    widths = [(0, 0)] * nd
    for k in range(len(pad) // 2):
        widths[nd - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    if value != 0:
        raise UnsupportedOperationError("constant_pad_nd with a nonzero fill value")
    return np.pad(x, widths)


def trace_torch(f, x, contexts, hessian, local):
    import torch
    from torch.fx.experimental.proxy_tensor import make_fx

    xt = torch.as_tensor(x).detach()
    mode = "real" if local else "fake"
    try:
        gm = make_fx(lambda x: f(x, *contexts), tracing_mode=mode,
                     _allow_non_fake_inputs=True)(xt)
    except Exception as err:  # data-dependent control flow
        msg = str(err).lower()
        if "data-dependent" not in msg and "guardondatadependent" not in msg:
            raise
        if local:
            raise UnsupportedOperationError(
                "f uses Python control flow on tensor values, which the torch front end "
                "cannot trace (make_fx): rewrite the branch with torch.where, or write f "
                "with NumPy / jax.numpy and use their front ends"
            ) from err
        raise UnsupportedOperationError(
            f"f uses Python control flow on values of x ({type(err).__name__}); the global "
            "TracerSparsityDetector cannot follow it: use TracerLocalSparsityDetector() for "
            "a pattern valid at this x, or rewrite the branch with torch.where"
        ) from err
    xv = xt.detach().cpu().numpy()  # detection runs on the host: one explicit copy of x
    xv = xv.astype(np.float64) if not xt.is_floating_point() else xv
    ctx = DetectionContext(xv.size, hessian, local)
    tx = Tracer(xv, ctx.trace.input(xv.shape), ctx, True)
    out = _interpret(ctx, gm, tx)
    return ctx, _collect(ctx, out)


def _to_np(v):
    import torch

    if isinstance(v, torch.Tensor):
        return v.detach().cpu().numpy()
    if isinstance(v, (list, tuple)):
        return type(v)(_to_np(a) for a in v)
    return v


def _has_tracer(v):
    if isinstance(v, Tracer):
        return True
    return isinstance(v, (list, tuple)) and any(_has_tracer(a) for a in v)


def _interpret(ctx, gm, tx):
    import torch

    ops = _ops()
    env = {}

    def load(a):
        if hasattr(a, "name") and hasattr(a, "op"):
            return env[a.name]
        if isinstance(a, (list, tuple)):
            return type(a)(load(b) for b in a)
        return a

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            env[node.name] = tx
        elif node.op == "get_attr":
            env[node.name] = _to_np(getattr(gm, node.target))
        elif node.op == "output":
            out = load(node.args[0])
            return out[0] if isinstance(out, (list, tuple)) else out
        elif node.op == "call_function":
            args = load(list(node.args))
            kwargs = {k: load(v) for k, v in node.kwargs.items()}
            key = str(node.target).removeprefix("aten.")
            if node.target is getattr(__import__("operator"), "getitem"):
                env[node.name] = args[0][args[1]]
                continue
            if key == "diffinterface.custom_rule.default":  # a diffinterface.custom_rule
                from diffinterface.rules import rule_from_id

                env[node.name] = rule_from_id(args[1])(*args[0])
                continue
            if not _has_tracer(args) and not _has_tracer(list(kwargs.values())):
                targs = [torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in args]
                env[node.name] = _to_np(node.target(*targs, **kwargs))
                continue
            kwargs = {k: v for k, v in kwargs.items() if k not in ("device", "layout", "pin_memory", "memory_format", "dtype", "non_blocking")}
            fn = ops.get(key)
            if fn is None:
                env[node.name] = _fallback(ctx, f"torch {key}", lambda *a, **k: _to_np(
                    node.target(*[torch.as_tensor(np.asarray(v)) if isinstance(v, np.ndarray) else v
                                  for v in a], **k)), args, kwargs)
            else:
                env[node.name] = fn(*args, **kwargs)
        else:
            raise UnsupportedOperationError(f"unexpected graph node {node.op} in the torch trace")
    raise UnsupportedOperationError("the torch trace has no output")

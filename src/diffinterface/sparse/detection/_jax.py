"""JAX front end: interpret the jaxpr of ``f`` with the shared pattern algebra.

Every variable carries ``(node, value, dep)``: its dependency :class:`Node`
(None for no dependency), its concrete value where known (constants always;
everything under the local detector) and whether it depends on ``x`` at all
(integer results of comparisons carry no derivative but are data-dependent).
Operations that only move elements run on arrays of row numbers, with NumPy
for the common ones and with the primitive itself (on int32) otherwise.
"""

from __future__ import annotations

import numpy as np

from ..._errors import UnsupportedOperationError
from ._algebra import Trace

__all__ = ["trace_jax"]

_UNARY_NONLINEAR = {
    "exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "logistic",
    "erf", "erfc", "erf_inv", "lgamma", "digamma", "square", "igamma", "bessel_i0e",
    "bessel_i1e", "polygamma", "zeta", "logaddexp",
}
_UNARY_LINEAR = {"neg", "copy", "copy_p", "real", "conj", "reduce_precision", "abs",
                 "convert_element_type", "imag", "optimization_barrier"}
_ZERO = {"sign", "floor", "ceil", "round", "is_finite", "not", "eq", "ne", "lt", "le", "gt",
         "ge", "and", "or", "xor", "population_count", "shift_left", "shift_right_logical",
         "shift_right_arithmetic", "argmax", "argmin", "reduce_and", "reduce_or",
         "nextafter", "clz", "iota", "stop_gradient", "random_bits", "random_seed",
         "random_wrap", "random_unwrap", "threefry2x32", "reduce_xor", "eq_to", "le_to", "lt_to"}
_BINARY = {
    "add": ((1, 1), ()), "sub": ((1, 1), ()), "add_any": ((1, 1), ()),
    "mul": ((1, 1), ((0, 1),)), "div": ((1, 1), ((0, 1), (1, 1))),
    "rem": ((1, 1), ()), "max": ((1, 1), ()), "min": ((1, 1), ()),
    "pow": ((1, 1), ((0, 0), (0, 1), (1, 1))), "atan2": ((1, 1), ((0, 0), (0, 1), (1, 1))),
    "complex": ((1, 1), ()),
}
_DENSE_KNOWN = {"cholesky", "lu", "qr", "eigh", "svd", "triangular_solve",
                "custom_linear_solve", "eig", "schur", "householder_product", "lu_pivots_to_permutation",
                "conv_general_dilated", "fft", "tridiagonal_solve"}
_CALLS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


class _Ctx:
    def __init__(self, n, hessian, local):
        self.trace = Trace(n, hessian)
        self.local = local


def trace_jax(f, x, contexts, hessian, local):
    import jax

    # device_put, not jnp.asarray: the latter compiles a small program per new shape
    x = x if isinstance(x, jax.Array) else jax.device_put(np.asarray(x))
    closed = jax.make_jaxpr(lambda x: f(x, *contexts))(x)
    ctx = _Ctx(x.size, hessian, local)
    xval = (ctx.trace.input(x.shape), np.asarray(x) if local else None, True)
    consts = [(None, np.asarray(c) if hasattr(c, "shape") else c, False) for c in closed.consts]
    outs = _eval(ctx, closed.jaxpr, consts, [xval])
    if len(outs) != 1:
        raise UnsupportedOperationError(
            f"f returned {len(outs)} arrays; sparsity detection needs one output array"
        )
    node = outs[0][0]
    m = int(np.prod(closed.jaxpr.outvars[0].aval.shape, dtype=np.int64))
    return ctx, (node, m)


def _is_float(aval):
    return np.issubdtype(np.dtype(aval.dtype), np.inexact)


def _eval(ctx, jaxpr, consts, args):
    env = {}

    def read(v):
        if type(v).__name__ == "Literal" or not hasattr(v, "count") and hasattr(v, "val"):
            return (None, np.asarray(v.val), False)
        return env[v]

    for v, a in zip(jaxpr.constvars, consts):
        env[v] = a
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        outs = _eval_eqn(ctx, eqn, ins)
        for v, o in zip(eqn.outvars, outs):
            if type(v).__name__ != "DropVar":
                env[v] = o
    return [read(v) for v in jaxpr.outvars]


def _bind(eqn, vals):
    outs = eqn.primitive.bind(*vals, **eqn.params)
    outs = outs if eqn.primitive.multiple_results else [outs]
    return [np.asarray(o) for o in outs]


def _eval_eqn(ctx, eqn, ins):
    name = eqn.primitive.name
    known = all(v is not None for _, v, _ in ins)
    if not any(d for _, _, d in ins):  # constant: compute it
        return [(None, v, False) for v in _bind(eqn, [v for _, v, _ in ins])]
    if name in _CALL_RULES:
        return _CALL_RULES[name](ctx, eqn, ins)
    dep = True
    values = _bind(eqn, [v for _, v, _ in ins]) if known else [None] * len(eqn.outvars)
    nodes = _rule(ctx, name, eqn, ins)
    return [(nd if _is_float(v.aval) else None, val, dep)
            for nd, val, v in zip(nodes, values, eqn.outvars)]


def _oshape(eqn, i=0):
    return tuple(eqn.outvars[i].aval.shape)


def _ishape(eqn, i):
    return tuple(eqn.invars[i].aval.shape)


def _rule(ctx, name, eqn, ins):
    tr = ctx.trace
    out_shape = _oshape(eqn)
    ops = [(nd, _ishape(eqn, i)) for i, (nd, _, _) in enumerate(ins)]
    if name in _ZERO or all(nd is None for nd, _, _ in ins):
        return [None] * len(eqn.outvars)
    if name in _UNARY_LINEAR:
        return [tr.elementwise(ops[:1], out_shape, (1,))]
    if name in _UNARY_NONLINEAR:
        return [tr.elementwise(ops[:1], out_shape, (1,), ((0, 0),))]
    if name == "integer_pow":
        y = eqn.params["y"]
        return [tr.elementwise(ops, out_shape, (y != 0,), ((0, 0),) if y not in (0, 1) else ())]
    if name in _BINARY:
        first, second = _BINARY[name]
        if name in ("max", "min") and ctx.local:
            return [_select_minmax(tr, name, ins, ops, out_shape)]
        return [tr.elementwise(ops, out_shape, first, second)]
    if name == "select_n":
        pred = ins[0]
        if pred[2] and not ctx.local and pred[1] is None:
            return [tr.select(ops[1:], [None] * (len(ops) - 1), out_shape)]
        p = np.asarray(pred[1])
        return [tr.select(ops[1:], [p == k for k in range(len(ops) - 1)], out_shape)]
    if name == "clamp":
        lo, xx, hi = ins
        if ctx.local:
            xv, lv, hv = (np.broadcast_to(np.asarray(v[1]), out_shape) for v in (xx, lo, hi))
            masks = [xv <= lv, (xv >= lv) & (xv <= hv), xv >= hv]
            return [tr.select([ops[0], ops[1], ops[2]], masks, out_shape)]
        return [tr.elementwise(ops, out_shape, (1, 1, 1))]
    if name in _REDUCE:
        return [_REDUCE[name](ctx, eqn, ins, ops)]
    if name in ("cumsum", "cumprod", "cumlogsumexp", "cummax", "cummin"):
        return [_cumulative(ctx, eqn, ins, name)]
    if name == "dot_general":
        return [_dot_general(ctx, eqn, ins)]
    if name in _MOVES or name in _MOVE_BIND:
        return _move(ctx, name, eqn, ins)
    if name == "sort":
        return _sort(ctx, eqn, ins)
    if name == "pure_callback":  # a diffinterface.custom_rule: its declared pattern
        rule = getattr(getattr(eqn.params.get("callback"), "callback_func", None), "diffinterface_rule", None)
        if rule is not None and len(eqn.outvars) == 1:
            return [rule.pattern_node(tr, [nd for nd, _, _ in ins],
                                      [_ishape(eqn, i) for i in range(len(ins))], out_shape)]
    if name in _DENSE_KNOWN:
        return [tr.dense_op(name, [nd for nd, _, _ in ins], _oshape(eqn, i), warn=False)
                for i in range(len(eqn.outvars))]
    return [tr.dense_op(f"jax primitive {name}", [nd for nd, _, _ in ins], _oshape(eqn, i),
                        warn=(i == 0)) for i in range(len(eqn.outvars))]


def _select_minmax(tr, name, ins, ops, out_shape):
    a, b = (np.broadcast_to(np.asarray(v[1], dtype=float), out_shape) for v in ins)
    wins = a > b if name == "max" else a < b
    loses = b > a if name == "max" else b < a
    return tr.select(ops, [~loses, ~wins], out_shape)


def _red_sum(ctx, eqn, ins, ops):
    return ctx.trace.reduce(ins[0][0], ops[0][1], eqn.params["axes"], _oshape(eqn))


def _red_prod(ctx, eqn, ins, ops):
    return ctx.trace.reduce(ins[0][0], ops[0][1], eqn.params["axes"], _oshape(eqn), nonlinear=True)


def _red_max(ctx, eqn, ins, ops):
    nd, val, _ = ins[0]
    shape = ops[0][1]
    axes = eqn.params["axes"]
    if ctx.local and val is not None:
        red = (np.max if eqn.primitive.name == "reduce_max" else np.min)(val, axis=axes, keepdims=True)
        nd = ctx.trace.select([(nd, shape)], [np.asarray(val) == red], shape)
    return ctx.trace.reduce(nd, shape, axes, _oshape(eqn))


_REDUCE = {"reduce_sum": _red_sum, "reduce_prod": _red_prod, "reduce_max": _red_max,
           "reduce_min": _red_max, "argmax": None}
del _REDUCE["argmax"]


def _cumulative(ctx, eqn, ins, name):
    nd, _, _ = ins[0]
    shape = _ishape(eqn, 0)
    axis, reverse = eqn.params["axis"], eqn.params.get("reverse", False)
    base = np.arange(1, int(np.prod(shape)) + 1).reshape(shape)
    moved = np.moveaxis(base, axis, -1)
    L = shape[axis]
    k = np.arange(L)
    tri = (k[:, None] <= k[None, :]) if reverse else (k[:, None] >= k[None, :])
    cols = np.where(tri, moved[..., None, :], 0)
    out_index = np.moveaxis(cols, -2, axis).reshape(-1, L)
    import scipy.sparse as sp

    rows = np.repeat(np.arange(out_index.shape[0]), L)
    flat = out_index.reshape(-1)
    keep = flat > 0
    S = sp.csr_matrix((np.ones(int(keep.sum()), bool), (rows[keep], flat[keep] - 1)),
                      shape=(out_index.shape[0], out_index.shape[0]))
    out = ctx.trace.linear_map(nd, S, shape)
    if name in ("cumprod", "cumlogsumexp") and out is not None:
        ctx.trace._event(out, out.pat, out.pat)
    return out


def _dot_general(ctx, eqn, ins):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    ls, rs = _ishape(eqn, 0), _ishape(eqn, 1)
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    a_sub = [None] * len(ls)
    b_sub = [None] * len(rs)
    out = []
    for i, j in zip(lb, rb):
        a_sub[i] = b_sub[j] = c = next(letters)
        out.append(c)
    for i, j in zip(lc, rc):
        a_sub[i] = b_sub[j] = next(letters)
    for sub in (a_sub, b_sub):
        for i in range(len(sub)):
            if sub[i] is None:
                sub[i] = c = next(letters)
                out.append(c)
    return ctx.trace.contract(ins[0][0], ls, "".join(a_sub), ins[1][0], rs, "".join(b_sub),
                              "".join(out), _oshape(eqn))


def _sort(ctx, eqn, ins):
    """Global: each output depends on its whole line; local: the permutation."""
    axis = eqn.params["dimension"]
    shape = _ishape(eqn, 0)
    if ctx.local and all(v is not None for _, v, _ in ins):
        keys = np.asarray(ins[0][1])
        perm = np.argsort(keys, axis=axis, kind="stable")
        base = np.arange(1, keys.size + 1).reshape(shape)
        idx = np.take_along_axis(base, perm, axis=axis)
        return [ctx.trace.move(idx, [(nd, int(np.prod(shape)))], shape) for nd, _, _ in ins]
    outs = []
    for nd, _, _ in ins:
        kshape = tuple(1 if d == axis else s for d, s in enumerate(shape))
        red = ctx.trace.reduce(nd, shape, (axis,), kshape)
        bidx = np.broadcast_to(np.arange(1, int(np.prod(kshape)) + 1).reshape(kshape), shape)
        outs.append(None if red is None else ctx.trace.move(bidx, [(red, red.size)], shape))
    return outs


# element moves ------------------------------------------------------------------
def _np_move(name, p, arrs, out_shape):
    a = arrs[0]
    if name == "reshape":
        return a.reshape(out_shape)
    if name == "broadcast_in_dim":
        shape = [1] * len(out_shape)
        for i, d in enumerate(p["broadcast_dimensions"]):
            shape[d] = a.shape[i]
        return np.broadcast_to(a.reshape(shape), out_shape)
    if name == "transpose":
        return a.transpose(p["permutation"])
    if name == "squeeze":
        return a.reshape(out_shape)
    if name == "expand_dims":
        return a.reshape(out_shape)
    if name == "slice":
        strides = p.get("strides") or (1,) * a.ndim
        return a[tuple(slice(s, e, st) for s, e, st in zip(p["start_indices"], p["limit_indices"], strides))]
    if name == "rev":
        return np.flip(a, p["dimensions"]) if p["dimensions"] else a
    if name == "concatenate":
        return np.concatenate(arrs, axis=p["dimension"])
    if name in ("copy", "copy_p", "convert_element_type"):
        return a
    return None


_MOVES = {"reshape", "broadcast_in_dim", "transpose", "squeeze", "expand_dims", "slice",
          "rev", "concatenate"}
# primitives run on int32 row numbers; value: positions of the data operands
_MOVE_BIND = {"pad": (0,), "dynamic_slice": (0,), "dynamic_update_slice": (0, 1),
              "gather": (0,), "scatter": (0, 2), "select_and_gather_add": None}
del _MOVE_BIND["select_and_gather_add"]


def _move(ctx, name, eqn, ins):
    import jax.numpy as jnp

    data_pos = (_MOVE_BIND.get(name) or tuple(range(len(ins)))) if name in _MOVE_BIND else tuple(range(len(ins)))
    if name == "reshape":
        data_pos = (0,)
    out_shape = _oshape(eqn)
    # data-dependent positions (indices computed from x) under the global detector
    others = [i for i in range(len(ins)) if i not in data_pos]
    if name == "pad":
        others = []
    if any(ins[i][1] is None for i in others):
        return [ctx.trace.dense_op(name, [ins[i][0] for i in data_pos], out_shape, warn=False,
                                   nonlinear=False)]
    arrs, operands, off = {}, [], 0
    for i in data_pos:
        nd = ins[i][0]
        shape = _ishape(eqn, i)
        size = int(np.prod(shape, dtype=np.int64))
        if nd is None:
            arrs[i] = np.zeros(shape, dtype=np.int64)
        else:
            arrs[i] = np.arange(off + 1, off + size + 1, dtype=np.int64).reshape(shape)
        operands.append((nd, size))
        off += size
    idx = _np_move(name, eqn.params, [arrs[i] for i in data_pos], out_shape) if name in _MOVES else None
    if idx is None:
        args = []
        for i in range(len(ins)):
            if i in arrs:
                args.append(jnp.asarray(arrs[i], dtype=jnp.int32))
            elif name == "pad" and i == 1:
                args.append(jnp.zeros((), jnp.int32))
            else:
                args.append(ins[i][1])
        params = dict(eqn.params)
        idx = np.asarray(eqn.primitive.bind(*args, **params))
    return [ctx.trace.move(idx, operands, out_shape)]


# control flow and calls ------------------------------------------------------------
def _closed(j):
    return (j.jaxpr, [(None, np.asarray(c) if hasattr(c, "shape") else c, False) for c in j.consts]) \
        if hasattr(j, "consts") else (j, [])


def _call(ctx, eqn, ins):
    for key in _CALLS:
        if key in eqn.params:
            jaxpr, consts = _closed(eqn.params[key])
            return _eval(ctx, jaxpr, consts, ins[len(ins) - len(jaxpr.invars):])
    raise UnsupportedOperationError(f"cannot find the inner jaxpr of {eqn.primitive.name}")


def _join_vals(ctx, eqn, branches):
    outs = []
    for k, v in enumerate(eqn.outvars):
        nodes = [b[k][0] for b in branches]
        nd = ctx.trace.join(nodes, tuple(v.aval.shape))
        outs.append((nd if _is_float(v.aval) else None, None, any(b[k][2] for b in branches)))
    return outs


def _cond(ctx, eqn, ins):
    idx, ops = ins[0], ins[1:]
    branches = eqn.params["branches"]
    if idx[1] is not None:
        k = int(np.clip(np.asarray(idx[1]), 0, len(branches) - 1))
        jaxpr, consts = _closed(branches[k])
        return _eval(ctx, jaxpr, consts, ops)
    results = []
    for br in branches:
        jaxpr, consts = _closed(br)
        results.append(_eval(ctx, jaxpr, consts, ops))
    return _join_vals(ctx, eqn, results)


def _same(a, b):
    if (a[0] is None) != (b[0] is None):
        return False
    if a[0] is None:
        return True
    pa, pb = a[0].pat, b[0].pat
    fa = 0 if pa.full is None else int(pa.full.sum())
    fb = 0 if pb.full is None else int(pb.full.sum())
    return pa.sp.nnz == pb.sp.nnz and fa == fb


def _while(ctx, eqn, ins):
    p = eqn.params
    cj, cc = _closed(p["cond_jaxpr"])
    bj, bc = _closed(p["body_jaxpr"])
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    cconsts, bconsts, carry = ins[:nc], ins[nc:nc + nb], list(ins[nc + nb:])
    while True:
        pred = _eval(ctx, cj, cc, cconsts + carry)[0]
        if pred[1] is None:  # data-dependent trip count: fixed point of the join
            return _while_fixed_point(ctx, eqn, bj, bc, bconsts, carry)
        if not bool(np.asarray(pred[1])):
            return carry
        carry = _eval(ctx, bj, bc, bconsts + carry)


def _while_fixed_point(ctx, eqn, bj, bc, bconsts, carry):
    for _ in range(10_000):
        new = _eval(ctx, bj, bc, bconsts + carry)
        joined = [(ctx.trace.join([a[0], b[0]], tuple(v.aval.shape)) if _is_float(v.aval) else None,
                   None, a[2] or b[2]) for a, b, v in zip(carry, new, eqn.outvars)]
        if all(_same(a, b) for a, b in zip(joined, carry)):
            return joined
        carry = joined
    raise UnsupportedOperationError("while_loop pattern did not reach a fixed point")


def _scan(ctx, eqn, ins):
    p = eqn.params
    jaxpr, consts = _closed(p["jaxpr"])
    if "num_consts" in p:
        nconst, ncarry = p["num_consts"], p["num_carry"]
    else:  # JAX >= 0.11: a FlatTree of (consts, carry, xs), one leaf per operand
        consts_tree, carry_tree, _ = p["ft_in"].unpack()
        nconst, ncarry = len(consts_tree), len(carry_tree)
    length = p["length"]
    cs, carry, xs = ins[:nconst], list(ins[nconst:nconst + ncarry]), ins[nconst + ncarry:]
    ys_steps = []
    order = range(length - 1, -1, -1) if p.get("reverse") else range(length)
    xs_shapes = [tuple(v.aval.shape) for v in eqn.invars[nconst + ncarry:]]
    for t in order:
        xt = [_index0(ctx, x, s, t) for x, s in zip(xs, xs_shapes)]
        outs = _eval(ctx, jaxpr, consts, cs + carry + xt)
        carry, ys = outs[:ncarry], outs[ncarry:]
        ys_steps.append((t, ys))
    ys_steps.sort(key=lambda e: e[0])
    ys_out = []
    for k, v in enumerate(eqn.outvars[ncarry:]):
        shape = tuple(v.aval.shape)
        parts = [s[1][k] for s in ys_steps]
        ys_out.append(_stack0(ctx, parts, shape))
    return list(carry) + ys_out


def _index0(ctx, x, shape, t):
    nd, val, dep = x
    sub = shape[1:]
    size = int(np.prod(sub, dtype=np.int64))
    nval = None if val is None else np.asarray(val)[t]
    if nd is None:
        return (None, nval, dep)
    idx = np.arange(t * size + 1, (t + 1) * size + 1)
    return (ctx.trace.move(idx, [(nd, nd.size)], sub), nval, dep)


def _stack0(ctx, parts, shape):
    dep = any(p[2] for p in parts)
    val = None if any(p[1] is None for p in parts) else np.stack([np.asarray(p[1]) for p in parts])
    operands = [(p[0], int(np.prod(shape[1:], dtype=np.int64))) for p in parts]
    total = sum(s for _, s in operands)
    nd = ctx.trace.move(np.arange(1, total + 1), operands, shape) if any(o[0] is not None for o in operands) else None
    return (nd, val, dep)


_CALL_RULES = {"pjit": _call, "closed_call": _call, "core_call": _call, "remat": _call,
               "checkpoint": _call, "custom_jvp_call": _call, "custom_vjp_call": _call,
               "custom_vjp_call_jaxpr": _call, "jit": _call, "cond": _cond,
               "while": _while, "scan": _scan}

"""The JAX path of a custom rule.

* the primal is ``jax.custom_jvp`` around ``jax.pure_callback`` (with
  ``vmap_method="sequential"``); the callback object carries the rule, so the
  jaxpr sparsity detector can map the ``pure_callback`` equation to the
  declared pattern;
* its tangent is ``rule_jvp`` (a JAX primitive, linear in the tangents) whose
  transpose is ``rule_vjp`` (linear in the cotangent) and vice versa, so
  ``jax.jvp`` *and* ``jax.grad`` work on the same function;
* each primitive has a JVP in its nonlinear (primal) arguments: the bilinear
  primitives ``rule_hvp`` (the ``def_hvp`` rule or central differences of the
  VJP rule) and ``rule_jj`` (differences of the JVP rule), transposes of each
  other, so forward-over-reverse, reverse-over-reverse and ``jax.hessian``
  work; a third derivative raises ``UnsupportedOperationError``;
* batching: a ``lax.map`` over the batch (sequential), keeping the primitives
  visible to later transforms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from diffinterface.rules import CustomRule

__all__ = ["call_jax"]


class _Callback:
    """A ``pure_callback`` target that knows its rule (read by the jaxpr detector)."""

    def __init__(self, rule: CustomRule, kind: str, fn, avals):
        self.diffinterface_rule = rule
        self.kind = kind
        self.fn = fn
        self.avals = avals

    def __call__(self, *args):
        outs = self.fn(*[np.array(a, copy=True) for a in args])
        single = not isinstance(self.avals, (tuple, list))
        outs = (outs,) if single else tuple(outs)
        avals = (self.avals,) if single else self.avals
        res = tuple(np.asarray(o, dtype=a.dtype).reshape(a.shape) for o, a in zip(outs, avals))
        return res[0] if single else res


def _struct(shape, dtype):
    return jax.ShapeDtypeStruct(tuple(shape), np.dtype(dtype))


def _float_dtype(*arrays):
    dtype = jnp.result_type(*[a.dtype for a in arrays])
    return dtype if jnp.issubdtype(dtype, jnp.inexact) else jnp.result_type(float)


def _out_aval(rule, xs):
    shape, _ = rule.out_struct([tuple(np.shape(x)) for x in xs], [np.dtype(x.dtype) for x in xs])
    return _struct(shape, _float_dtype(*xs))


def _callback(rule, kind, fn, avals, *args):
    return jax.pure_callback(_Callback(rule, kind, fn, avals), avals, *args, vmap_method="sequential")


# --- the linear primitives --------------------------------------------------
# rule_jvp(*xs, y, *ts)  -> J ts             linear in ts
# rule_vjp(*xs, y, ct)   -> (J^T ct)_i       linear in ct (one output per x)
rule_jvp_p = Primitive("custom_rule_jvp")
rule_vjp_p = Primitive("custom_rule_vjp")
rule_vjp_p.multiple_results = True


def _jvp_impl(*args, rule, n):
    xs, y, ts = args[:n], args[n], args[n + 1:]
    rule.require("jvp", int(np.prod(y.shape)))  # a missing rule fails here, not in the callback
    aval = _struct(y.shape, y.dtype)
    return _callback(rule, "jvp", lambda *a: rule.jvp(a[:n], a[n:]), aval, *xs, *ts)


def _vjp_impl(*args, rule, n):
    xs, y, ct = args[:n], args[n], args[n + 1]
    rule.require("vjp", sum(int(np.prod(x.shape)) for x in xs))
    avals = tuple(_struct(x.shape, _float_dtype(x, y)) for x in xs)
    return list(_callback(rule, "vjp", lambda *a: rule.vjp(a[:n], a[n], a[n + 1]), avals, *xs, y, ct))


rule_jvp_p.def_impl(_jvp_impl)
rule_vjp_p.def_impl(_vjp_impl)


def _jvp_abstract(*args, rule, n):
    rule.require("jvp", int(np.prod(args[n].shape)))  # a missing rule fails at trace time
    return jax.core.ShapedArray(args[n].shape, args[n].dtype)


def _vjp_abstract(*args, rule, n):
    rule.require("vjp", sum(int(np.prod(x.shape)) for x in args[:n]))
    return [jax.core.ShapedArray(x.shape, jnp.result_type(x.dtype, args[n].dtype)) for x in args[:n]]


rule_jvp_p.def_abstract_eval(_jvp_abstract)
rule_vjp_p.def_abstract_eval(_vjp_abstract)
mlir.register_lowering(rule_jvp_p, mlir.lower_fun(_jvp_impl, multiple_results=False))
mlir.register_lowering(rule_vjp_p, mlir.lower_fun(_vjp_impl, multiple_results=True))


def _instantiate(t, like):
    return jnp.zeros(like.shape, like.dtype) if type(t) is ad.Zero else t


def _jvp_transpose(ct, *args, rule, n):
    xs, y = args[:n], args[n]
    ct = _instantiate(ct, y)
    cts = rule_vjp_p.bind(*xs, y, ct, rule=rule, n=n)
    return [None] * (n + 1) + [c.astype(t.aval.dtype) if ad.is_undefined_primal(t) else None
                               for c, t in zip(cts, args[n + 1:])]


def _vjp_transpose(cts, *args, rule, n):
    xs, y = args[:n], args[n]
    cts = [_instantiate(c, x) for c, x in zip(cts, xs)]
    ct_y = rule_jvp_p.bind(*xs, y, *cts, rule=rule, n=n)
    return [None] * (n + 1) + [ct_y]


ad.primitive_transposes[rule_jvp_p] = _jvp_transpose
ad.primitive_transposes[rule_vjp_p] = _vjp_transpose


# --- second-order terms: bilinear primitives -----------------------------------
# rule_hvp(*xs, *ts, ct) -> d/de vjp(xs + e ts, ct)   (x-shaped; M_ct ts, M_ct symmetric)
# rule_jj(*xs, *ts, *dxs) -> d/de J(xs + e dxs) ts    (y-shaped; symmetric in ts, dxs)
# Each is linear in each of its two tangent groups, with the other as transpose,
# so reverse-over-reverse works; their derivative in xs (third order) is refused.
rule_hvp_p = Primitive("custom_rule_hvp")
rule_hvp_p.multiple_results = True
rule_jj_p = Primitive("custom_rule_jvp_of_jvp")


def _hvp_impl(*args, rule, n):
    xs, ts, ct = args[:n], args[n:2 * n], args[2 * n]
    avals = tuple(_struct(x.shape, _float_dtype(x, ct)) for x in xs)
    fn = lambda *a: rule.hvp(a[:n], a[n:2 * n], a[2 * n])  # noqa: E731
    return list(_callback(rule, "hvp", fn, avals, *xs, *ts, ct))


def _jj_impl(*args, rule, n, shape, dtype):
    fn = lambda *a: rule.jvp_of_jvp(a[:n], a[n:2 * n], a[2 * n:])  # noqa: E731
    return _callback(rule, "jvp_of_jvp", fn, _struct(shape, dtype), *args)


rule_hvp_p.def_impl(_hvp_impl)
rule_jj_p.def_impl(_jj_impl)
rule_hvp_p.def_abstract_eval(
    lambda *args, rule, n: [jax.core.ShapedArray(x.shape, jnp.result_type(x.dtype, args[2 * n].dtype))
                            for x in args[:n]])
rule_jj_p.def_abstract_eval(lambda *args, rule, n, shape, dtype: jax.core.ShapedArray(shape, dtype))
mlir.register_lowering(rule_hvp_p, mlir.lower_fun(_hvp_impl, multiple_results=True))
mlir.register_lowering(rule_jj_p, mlir.lower_fun(_jj_impl, multiple_results=False))


def _undefined(a):
    return ad.is_undefined_primal(a)


def _aval_of(a):
    return a.aval if _undefined(a) else a


def _hvp_transpose(cts, *args, rule, n):
    xs, ts, ct = args[:n], args[n:2 * n], args[2 * n]
    cts = [_instantiate(c, _aval_of(x)) for c, x in zip(cts, xs)]
    out = [None] * (2 * n + 1)
    if any(_undefined(t) for t in ts):  # transpose in ts: M_ct is symmetric
        res = rule_hvp_p.bind(*xs, *cts, ct, rule=rule, n=n)
        out[n:2 * n] = [r if _undefined(t) else None for r, t in zip(res, ts)]
    if _undefined(ct):  # transpose in ct: <cts, M_ct ts> = D2f[ts, cts] . ct
        a = ct.aval
        out[2 * n] = rule_jj_p.bind(*xs, *ts, *cts, rule=rule, n=n, shape=a.shape, dtype=a.dtype)
    return out


def _jj_transpose(ct, *args, rule, n, shape, dtype):
    xs, ts, dxs = args[:n], args[n:2 * n], args[2 * n:]
    ct = _instantiate(ct, jax.core.ShapedArray(shape, dtype))
    out = [None] * (3 * n)
    for first, (own, other) in enumerate(((ts, dxs), (dxs, ts))):
        if any(_undefined(a) for a in own):
            res = rule_hvp_p.bind(*xs, *other, ct, rule=rule, n=n)
            base = n * (first + 1)
            for k, (r, a) in enumerate(zip(res, own)):
                out[base + k] = r if _undefined(a) else None
    return out


ad.primitive_transposes[rule_hvp_p] = _hvp_transpose
ad.primitive_transposes[rule_jj_p] = _jj_transpose


def _third_order(rule):
    from diffinterface._errors import UnsupportedOperationError

    return UnsupportedOperationError(
        f"third-order derivatives through custom_rule {rule.name} are not supported: its "
        "second-order terms (def_hvp or finite differences of the rules) are not differentiated again"
    )


def _hvp_jvp(primals, tangents, *, rule, n):
    xs, ts, ct = primals[:n], primals[n:2 * n], primals[2 * n]
    if any(type(d) is not ad.Zero for d in tangents[:n]):
        raise _third_order(rule)
    outs = rule_hvp_p.bind(*primals, rule=rule, n=n)
    dts, dct = tangents[n:2 * n], tangents[2 * n]
    tans = None
    if any(type(d) is not ad.Zero for d in dts):
        tans = rule_hvp_p.bind(*xs, *[_instantiate(d, t) for d, t in zip(dts, ts)], ct, rule=rule, n=n)
    if type(dct) is not ad.Zero:
        more = rule_hvp_p.bind(*xs, *ts, dct, rule=rule, n=n)
        tans = more if tans is None else [a + b for a, b in zip(tans, more)]
    if tans is None:
        return outs, [ad.Zero.from_primal_value(o) for o in outs]
    return outs, tans


def _jj_jvp(primals, tangents, *, rule, n, shape, dtype):
    xs, ts, dxs = primals[:n], primals[n:2 * n], primals[2 * n:]
    if any(type(d) is not ad.Zero for d in tangents[:n]):
        raise _third_order(rule)
    params = dict(rule=rule, n=n, shape=shape, dtype=dtype)
    out = rule_jj_p.bind(*primals, **params)
    tan = None
    for k, own in ((1, ts), (2, dxs)):
        d = tangents[k * n:(k + 1) * n]
        if any(type(e) is not ad.Zero for e in d):
            d = [_instantiate(e, a) for e, a in zip(d, own)]
            args = [*xs, *d, *dxs] if k == 1 else [*xs, *ts, *d]
            more = rule_jj_p.bind(*args, **params)
            tan = more if tan is None else tan + more
    return out, (ad.Zero.from_primal_value(out) if tan is None else tan)


ad.primitive_jvps[rule_hvp_p] = _hvp_jvp
ad.primitive_jvps[rule_jj_p] = _jj_jvp


def _second(rule, kind, xs, y, lin, dxs):
    """The derivative along dxs of a linear rule (its tangent argument(s) ``lin``) at xs."""
    n = len(xs)
    if kind == "jvp":
        return rule_jj_p.bind(*xs, *lin, *dxs, rule=rule, n=n, shape=tuple(y.shape), dtype=np.dtype(y.dtype))
    return rule_hvp_p.bind(*xs, *dxs, lin[0], rule=rule, n=n)


def _jvp_jvp(primals, tangents, *, rule, n):
    xs, y, ts = primals[:n], primals[n], primals[n + 1:]
    out = rule_jvp_p.bind(*primals, rule=rule, n=n)
    dxs, dts = tangents[:n], tangents[n + 1:]
    tan = None
    if any(type(d) is not ad.Zero for d in dts):
        tan = rule_jvp_p.bind(*xs, y, *[_instantiate(d, t) for d, t in zip(dts, ts)], rule=rule, n=n)
    if any(type(d) is not ad.Zero for d in dxs):
        sec = _second(rule, "jvp", xs, y, ts, [_instantiate(d, x) for d, x in zip(dxs, xs)])
        tan = sec if tan is None else tan + sec
    return out, (ad.Zero.from_primal_value(out) if tan is None else tan)


def _vjp_jvp(primals, tangents, *, rule, n):
    xs, y, ct = primals[:n], primals[n], primals[n + 1]
    outs = rule_vjp_p.bind(*primals, rule=rule, n=n)
    dxs, dct = tangents[:n], tangents[n + 1]
    tans = None
    if type(dct) is not ad.Zero:
        tans = rule_vjp_p.bind(*xs, y, dct, rule=rule, n=n)
    if any(type(d) is not ad.Zero for d in dxs):
        sec = _second(rule, "vjp", xs, y, [ct], [_instantiate(d, x) for d, x in zip(dxs, xs)])
        tans = sec if tans is None else [a + b for a, b in zip(tans, sec)]
    if tans is None:
        return outs, [ad.Zero.from_primal_value(o) for o in outs]
    return outs, tans


ad.primitive_jvps[rule_jvp_p] = _jvp_jvp
ad.primitive_jvps[rule_vjp_p] = _vjp_jvp


def _unmapped(d):
    return d is None or type(d).__name__ == "NotMapped"


def _batcher(prim):
    def batch(args, dims, **params):
        mapped = [i for i, d in enumerate(dims) if not _unmapped(d)]
        moved = tuple(jnp.moveaxis(args[i], dims[i], 0) for i in mapped)

        def one(slices):
            full = list(args)
            for i, s in zip(mapped, slices):
                full[i] = s
            return prim.bind(*full, **params)

        out = jax.lax.map(one, moved)
        return (list(out), [0] * len(out)) if prim.multiple_results else (out, 0)

    return batch


batching.primitive_batchers[rule_jvp_p] = _batcher(rule_jvp_p)
batching.primitive_batchers[rule_vjp_p] = _batcher(rule_vjp_p)
batching.primitive_batchers[rule_hvp_p] = _batcher(rule_hvp_p)
batching.primitive_batchers[rule_jj_p] = _batcher(rule_jj_p)


# --- the primal ---------------------------------------------------------------
def _primal_callback(rule, xs):
    aval = _out_aval(rule, xs)
    return _callback(rule, "primal", lambda *a: rule.primal(a), aval, *xs)


def _build(rule: CustomRule, n: int):
    @jax.custom_jvp
    def f(*xs):
        return _primal_callback(rule, xs)

    @f.defjvp
    def f_jvp(primals, tangents):
        y = f(*primals)
        ts = [t.astype(_float_dtype(x)) if t.dtype != _float_dtype(x) else t for t, x in zip(tangents, primals)]
        return y, rule_jvp_p.bind(*primals, y, *ts, rule=rule, n=n)

    return f


def call_jax(rule: CustomRule, args):
    n = len(args)
    key = ("jax", n)
    if key not in rule._engines:
        rule._engines[key] = _build(rule, n)
    xs = [jnp.asarray(a) for a in args]
    xs = [x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(_float_dtype(x)) for x in xs]
    return rule._engines[key](*xs)

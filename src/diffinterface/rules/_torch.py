"""The torch path of a custom rule.

Three ``torch.autograd.Function`` classes (setup_context style):

* ``_Primal(rule, *xs) -> (y, y_snapshot, *x_snapshots)``: the primal runs in a
  custom op ``diffinterface::custom_rule`` (so ``make_fx`` records one node the
  sparsity detector maps to the declared pattern); the snapshots are copies of
  the inputs and output taken at call time, kept as extra outputs, so the
  rules see the original values even if the caller overwrites its tensors
  afterwards, and double backward still reaches ``xs`` through them;
* ``_Jvp(rule, n, *xs, y, *ts) -> J ts`` and ``_Vjp(rule, n, *xs, y, ct) ->
  J^T ct``: the rules, each differentiable once more (its derivative in
  ``xs`` is the ``def_hvp`` rule or central differences of the rules), so
  double backward (torch's Hessian-vector product) and forward-over-reverse
  work.

Each has ``backward``, ``jvp`` (forward mode, ``torch.func.jvp``) and a
``vmap`` staticmethod that loops over the batch (sequential), so
``torch.func.vmap`` / ``jacrev`` / ``jacfwd`` work too.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from diffinterface.rules import CustomRule, rule_from_id

__all__ = ["call_torch"]


def _np(t):
    return t.detach().cpu().numpy().copy() if isinstance(t, torch.Tensor) else np.array(t, copy=True)


def _tensor(a, like):
    return torch.as_tensor(np.asarray(a), dtype=like.dtype, device=like.device)


def _float(t):
    return t if t.is_floating_point() or t.is_complex() else t.to(torch.get_default_dtype())


def _dtype(args):
    return functools.reduce(torch.promote_types, [a.dtype for a in args])


# --- the custom op: the primal as one node in make_fx graphs -----------------
@torch.library.custom_op("diffinterface::custom_rule", mutates_args=())
def _primal_op(args: list[torch.Tensor], rule_id: int) -> torch.Tensor:
    rule = rule_from_id(rule_id)
    y = rule.primal([_np(a) for a in args])
    return torch.as_tensor(np.array(y, copy=True), dtype=_dtype(args), device=args[0].device)


@_primal_op.register_fake
def _(args, rule_id):
    rule = rule_from_id(rule_id)
    shape, _ = rule.out_struct([tuple(a.shape) for a in args],
                               [np.dtype(str(a.dtype).removeprefix("torch.")) for a in args])
    return args[0].new_empty(shape, dtype=_dtype(args))


def _loop_vmap(cls, info, in_dims, *args):
    """Sequential batching: apply ``cls`` to each slice and stack the results."""
    outs = []
    for b in range(info.batch_size):
        sliced = [a.select(d, b) if d is not None and isinstance(a, torch.Tensor) else a
                  for a, d in zip(args, in_dims)]
        outs.append(cls.apply(*sliced))
    if isinstance(outs[0], tuple):
        stacked = tuple(torch.stack([o[k] for o in outs]) for k in range(len(outs[0])))
        return stacked, (0,) * len(stacked)
    return torch.stack(outs), 0


class _Second(torch.autograd.Function):
    """A second-order term (``def_hvp`` or differences of the rules) on tensors.

    ``fn`` maps NumPy arrays to a tuple of arrays shaped like ``outs``'s
    entries (indices into the tensor arguments); it is not differentiated
    further (third order through a custom rule is not supported).
    """

    @staticmethod
    def forward(fn, like, *args):
        res = fn(*[_np(a) for a in args])
        return tuple(_tensor(r, args[i]) for r, i in zip(res, like))

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        from diffinterface._errors import UnsupportedOperationError

        raise UnsupportedOperationError(
            "third-order derivatives through a custom_rule are not supported: its second-order "
            "terms (def_hvp or finite differences of the rules) are not differentiated again"
        )

    @staticmethod
    def vmap(info, in_dims, *args):
        return _loop_vmap(_Second, info, in_dims, *args)


def _hvp(rule, xs, ts, ct):
    n = len(xs)
    fn = lambda *a: rule.hvp(a[:n], a[n:2 * n], a[2 * n])  # noqa: E731
    return _Second.apply(fn, tuple(range(n)), *xs, *ts, ct)


def _jvp_of_jvp(rule, xs, y, ts, dxs):
    n = len(xs)
    fn = lambda *a: (rule.jvp_of_jvp(a[:n], a[n:2 * n], a[2 * n:3 * n]),)  # noqa: E731
    return _Second.apply(fn, (3 * n,), *xs, *ts, *dxs, y)[0]


class _Primal(torch.autograd.Function):
    @staticmethod
    def forward(rule, *xs):
        y = _primal_op(list(xs), rule.id)
        return (y, y.clone(), *[x.clone() for x in xs])

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.rule = inputs[0]
        ctx.n = len(inputs) - 1
        ctx.save_for_backward(*output[1:])
        ctx.save_for_forward(*output[1:])

    @staticmethod
    def backward(ctx, ybar, ysnap_bar, *xsnap_bars):
        saved = ctx.saved_tensors
        y, xs = saved[0], saved[1:]
        grads = [None] * ctx.n
        if ybar is not None:
            grads = list(_Vjp.apply(ctx.rule, ctx.n, *xs, y, ybar))
        for i, extra in enumerate(xsnap_bars):
            if extra is not None:
                grads[i] = extra if grads[i] is None else grads[i] + extra
        return (None, *grads)

    @staticmethod
    def jvp(ctx, _, *ts):
        saved = ctx.saved_tensors
        y, xs = saved[0], saved[1:]
        ts = [torch.zeros_like(x) if t is None else t for t, x in zip(ts, xs)]
        ty = _Jvp.apply(ctx.rule, ctx.n, *xs, y, *ts)
        return (ty, ty.clone(), *[t.clone() for t in ts])

    @staticmethod
    def vmap(info, in_dims, *args):
        return _loop_vmap(_Primal, info, in_dims, *args)


class _Jvp(torch.autograd.Function):
    @staticmethod
    def forward(rule, n, *args):
        xs, y, ts = args[:n], args[n], args[n + 1:]
        return _tensor(rule.jvp([_np(x) for x in xs], [_np(t) for t in ts]), y)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.rule, ctx.n = inputs[0], inputs[1]
        ctx.save_for_backward(*inputs[2:])
        ctx.save_for_forward(*inputs[2:])

    @staticmethod
    def backward(ctx, g):
        rule, n = ctx.rule, ctx.n
        args = ctx.saved_tensors
        xs, y, ts = args[:n], args[n], args[n + 1:]
        need = ctx.needs_input_grad[2:]
        gx = [None] * n
        if any(need[:n]):  # d/dx <g, J(x) t> = (sum_k g_k H_k) t: the hvp of the VJP rule
            gx = list(_hvp(rule, xs, ts, g))
        gt = [None] * n
        if any(need[n + 1:]):
            gt = list(_Vjp.apply(rule, n, *xs, y, g))
        return (None, None, *gx, None, *gt)

    @staticmethod
    def jvp(ctx, _rule, _n, *tangents):
        rule, n = ctx.rule, ctx.n
        args = ctx.saved_tensors
        xs, y, ts = args[:n], args[n], args[n + 1:]
        dxs, dts = tangents[:n], tangents[n + 1:]
        out = None
        if any(d is not None for d in dts):
            dts = [torch.zeros_like(t) if d is None else d for d, t in zip(dts, ts)]
            out = _Jvp.apply(rule, n, *xs, y, *dts)
        if any(d is not None for d in dxs):
            dxs = [torch.zeros_like(x) if d is None else d for d, x in zip(dxs, xs)]
            sec = _jvp_of_jvp(rule, xs, y, ts, dxs)
            out = sec if out is None else out + sec
        return torch.zeros_like(y) if out is None else out

    @staticmethod
    def vmap(info, in_dims, *args):
        return _loop_vmap(_Jvp, info, in_dims, *args)


class _Vjp(torch.autograd.Function):
    @staticmethod
    def forward(rule, n, *args):
        xs, y, ct = args[:n], args[n], args[n + 1]
        res = rule.vjp([_np(x) for x in xs], _np(y), _np(ct))
        return tuple(_tensor(r, x) for r, x in zip(res, xs))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.rule, ctx.n = inputs[0], inputs[1]
        ctx.save_for_backward(*inputs[2:])
        ctx.save_for_forward(*inputs[2:])

    @staticmethod
    def backward(ctx, *ws):
        rule, n = ctx.rule, ctx.n
        args = ctx.saved_tensors
        xs, y, ct = args[:n], args[n], args[n + 1]
        ws = [torch.zeros_like(x) if w is None else w for w, x in zip(ws, xs)]
        need = ctx.needs_input_grad[2:]
        gx = [None] * n
        if any(need[:n]):  # M_ct is symmetric: its transpose is itself
            gx = list(_hvp(rule, xs, ws, ct))
        gct = _Jvp.apply(rule, n, *xs, y, *ws) if need[n + 1] else None
        return (None, None, *gx, None, gct)

    @staticmethod
    def jvp(ctx, _rule, _n, *tangents):
        rule, n = ctx.rule, ctx.n
        args = ctx.saved_tensors
        xs, y, ct = args[:n], args[n], args[n + 1]
        dxs, dct = tangents[:n], tangents[n + 1]
        out = None
        if dct is not None:
            out = list(_Vjp.apply(rule, n, *xs, y, dct))
        if any(d is not None for d in dxs):
            dxs = [torch.zeros_like(x) if d is None else d for d, x in zip(dxs, xs)]
            sec = list(_hvp(rule, xs, dxs, ct))
            out = sec if out is None else [a + b for a, b in zip(out, sec)]
        return tuple(torch.zeros_like(x) for x in xs) if out is None else tuple(out)

    @staticmethod
    def vmap(info, in_dims, *args):
        return _loop_vmap(_Vjp, info, in_dims, *args)


def call_torch(rule: CustomRule, args):
    like = next(a for a in args if isinstance(a, torch.Tensor))
    xs = [_float(a) if isinstance(a, torch.Tensor)
          else torch.as_tensor(np.asarray(a), dtype=like.dtype if like.is_floating_point() else None,
                               device=like.device) for a in args]
    return _Primal.apply(rule, *xs)[0]

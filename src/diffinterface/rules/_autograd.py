"""The HIPS autograd path of a custom rule: autograd primitives.

``primal(*xs)`` has ``defvjp`` (the VJP rule through ``vjp(*xs, y, ct)``) and
``defjvp`` (the JVP rule through ``jvp(*xs, *ts)``).  ``vjp`` and ``jvp`` are
primitives too, differentiable once more (the ``def_hvp`` rule or central
differences of the rules), so autograd's reverse-over-reverse Hessian-vector
products work.  autograd's boxes cannot be overwritten in place; the NumPy
rules still receive copies of their arguments.
"""

from __future__ import annotations

import numpy as np
from autograd.extend import defjvp, defvjp, primitive

from diffinterface.rules import CustomRule

__all__ = ["call_autograd"]


def _build(rule: CustomRule, n: int):
    @primitive
    def hvp(*args):  # (*xs, *ts, ct) -> tuple, not differentiated further
        return tuple(rule.hvp(args[:n], args[n:2 * n], args[2 * n]))

    @primitive
    def vjp_one(i, *args):  # (*xs, y, ct) -> cotangent of x_i
        return rule.vjp(args[:n], args[n], args[n + 1])[i]

    @primitive
    def jvp(*args):  # (*xs, *ts) -> J ts
        return rule.jvp(args[:n], args[n:])

    @primitive
    def primal(*xs):
        return rule.primal(xs)

    # primal
    defvjp(primal, *[
        (lambda i: lambda y, *xs: (lambda g: vjp_one(i, *xs, y, g)))(i)
        for i in range(n)])
    defjvp(primal, *[
        (lambda i: lambda t, y, *xs: jvp(*xs, *[t if k == i else np.zeros(np.shape(x)) for k, x in enumerate(xs)]))(i)
        for i in range(n)])

    # vjp_one(i, *xs, y, ct): d/dx_k <w, (J^T ct)_i> = (M_ct e_i-block w)_k, d/dct = J (w in slot i)
    def vjp_x(k):
        def maker(ans, i, *args):
            xs, ct = args[:n], args[n + 1]

            def pull(w):
                ts = [w if j == i else np.zeros(np.shape(x)) for j, x in enumerate(xs)]
                return hvp(*xs, *ts, ct)[k]
            return pull
        return maker

    def vjp_ct(ans, i, *args):
        xs = args[:n]
        return lambda w: jvp(*xs, *[w if j == i else np.zeros(np.shape(x)) for j, x in enumerate(xs)])

    defvjp(vjp_one, *[vjp_x(k) for k in range(n)], None, vjp_ct, argnums=tuple(range(1, n + 3)))

    # jvp(*xs, *ts): d/dx_k <g, J t> = (M_g t)_k ; d/dt_k = (J^T g)_k
    def jvp_x(k):
        def maker(ans, *args):
            xs, ts = args[:n], args[n:]
            return lambda g: hvp(*xs, *ts, g)[k]
        return maker

    def jvp_t(k):
        def maker(ans, *args):
            xs = args[:n]
            y = rule.primal(xs)
            return lambda g: vjp_one(k, *xs, y, g)
        return maker

    defvjp(jvp, *[jvp_x(k) for k in range(n)], *[jvp_t(k) for k in range(n)],
           argnums=tuple(range(2 * n)))
    return primal


def call_autograd(rule: CustomRule, args):
    n = len(args)
    key = ("autograd", n)
    if key not in rule._engines:
        rule._engines[key] = _build(rule, n)
    return rule._engines[key](*args)

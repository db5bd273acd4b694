"""A black-box ODE solve (scipy.integrate.solve_ivp) with its adjoint as the VJP.

The logistic equation ``y' = r y (1 - y / K)``, ``y(0) = y0`` is solved with
SciPy; ``final_state(p)`` returns ``y(T)`` for the parameters ``p = (r, K, y0)``.
Its derivatives are declared once:

* the JVP integrates the forward sensitivity equation alongside ``y``;
* the VJP integrates the adjoint equation backwards from ``T``;

and the very same function is then differentiated by JAX, PyTorch, autograd
and finite differences, to first and (forward-over-reverse, differences of
the VJP rule) second order.  Run ``python examples/custom_rule_ode.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from diffinterface.rules import custom_rule

T = 2.0
TOL = dict(rtol=1e-12, atol=1e-12, method="DOP853")


def _rhs(y, r, K):
    return r * y * (1.0 - y / K)


@custom_rule(output_shape=())
def final_state(p):
    """y(T) of the logistic equation with p = (r, K, y0)."""
    r, K, y0 = np.asarray(p, dtype=float)
    sol = solve_ivp(lambda t, y: _rhs(y, r, K), (0.0, T), [y0], **TOL)
    return sol.y[0, -1]


@final_state.def_jvp
def _forward_sensitivity(primals, tangents):
    (p,), (dp,) = primals, tangents
    r, K, y0 = p
    dr, dK, dy0 = dp

    def rhs(t, z):
        y, s = z
        f_y = r * (1.0 - 2.0 * y / K)
        f_p = y * (1.0 - y / K) * dr + r * y**2 / K**2 * dK
        return [_rhs(y, r, K), f_y * s + f_p]

    sol = solve_ivp(rhs, (0.0, T), [y0, dy0], **TOL)
    return sol.y[1, -1]


@final_state.def_vjp
def _adjoint(primals, out, ybar):
    (p,) = primals
    r, K, _ = p

    def rhs(t, z):  # backwards from T: the state, the adjoint, the parameter integrals
        y, lam = z[0], z[1]
        f_y = r * (1.0 - 2.0 * y / K)
        return [_rhs(y, r, K), -lam * f_y, -lam * y * (1.0 - y / K), -lam * r * y**2 / K**2]

    sol = solve_ivp(rhs, (T, 0.0), [float(out), float(ybar), 0.0, 0.0], **TOL)
    _, lam0, g_r, g_K = sol.y[:, -1]
    return (np.array([g_r, g_K, lam0]),)


def exact(p):
    """The closed form y(T) = K / (1 + (K / y0 - 1) exp(-r T))."""
    r, K, y0 = p
    return K / (1.0 + (K / y0 - 1.0) * np.exp(-r * T))


def exact_gradient(p):
    r, K, y0 = p
    e = np.exp(-r * T)
    d = 1.0 + (K / y0 - 1.0) * e
    return np.array([K * (K / y0 - 1.0) * T * e / d**2, 1.0 / d - K * (e / y0) / d**2, K**2 * e / (y0**2 * d**2)])


def main() -> None:
    import diffinterface as di

    p = np.array([1.3, 2.0, 0.4])
    print(f"y(T) = {final_state(p):.12f}  (closed form {exact(p):.12f})")
    print(f"{'backend':<34} gradient")
    backends = [di.AutoFiniteDiff()]
    for name, make in (("jax", di.AutoJAX), ("torch", di.AutoTorch), ("autograd", di.AutoAutograd)):
        try:
            __import__(name)
        except ImportError:
            continue
        backends.append(make())
    for backend in backends:
        print(f"{backend!r:<34} {np.asarray(di.gradient(final_state, backend, p))}")
    print(f"{'closed form':<34} {exact_gradient(p)}")
    v = np.array([1.0, -0.5, 0.25])
    for backend in backends[1:3]:
        print(f"hvp {backend!r:<30} {np.asarray(di.hvp(final_state, backend, p, v))}")


if __name__ == "__main__":
    main()

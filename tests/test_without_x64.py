"""JAX with x64 mode off (JAX's default, and how the demo runs): float64 NumPy
inputs must still give float64 derivatives, with nothing eager computed in float32.

The other tests enable x64 globally (conftest.py), so these run in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax")

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import scipy.optimize
    import jax
    import jax.numpy as jnp
    import diffinterface as di

    assert not jax.config.jax_enable_x64

    def f(x):  # sum(x^4)/4 + sum(x[i] x[i+1])
        return jnp.sum(x ** 4) / 4 + jnp.sum(x[:-1] * x[1:])

    def grad(x):
        g = x ** 3
        g[:-1] += x[1:]
        g[1:] += x[:-1]
        return g

    def hess(x):
        n = x.size
        return np.diag(3 * x ** 2) + np.eye(n, k=1) + np.eye(n, k=-1)

    def r(x):  # residuals
        return jnp.concatenate([x[1:] ** 2 - x[:-1], jnp.sin(x)])

    def jac_r(x):
        n = x.size
        top = np.zeros((n - 1, n))
        top[np.arange(n - 1), np.arange(1, n)] = 2 * x[1:]
        top[np.arange(n - 1), np.arange(n - 1)] = -1
        return np.vstack([top, np.diag(np.cos(x))])

    rng = np.random.default_rng(0)
    n = 50
    x, x2, v, w = (rng.uniform(0.5, 1.5, n) for _ in range(4))
    w = np.concatenate([w, rng.uniform(size=n - 1)])
    backend = di.AutoJAX()

    def close(a, b, name):
        a = np.asarray(a)
        assert a.dtype == np.float64, (name, a.dtype)
        err = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1.0)
        assert err < 1e-12, (name, err)

    close(di.gradient(f, backend, x), grad(x), "gradient")
    close(di.hvp(f, backend, x, v), hess(x) @ v, "hvp")
    close(di.hessian(f, backend, x), hess(x), "hessian")
    H = di.hessian_operator(f, backend, x)
    close(H @ v, hess(x) @ v, "H @ v")
    close(H.update(x2) @ v, hess(x2) @ v, "H @ v after update")
    close(H @ np.stack([v, w[:n]], axis=1), hess(x2) @ np.stack([v, w[:n]], axis=1), "H @ V")
    close(H.gradient, grad(x2), "H.gradient")
    J = di.jacobian_operator(r, backend, x)
    close(J @ v, jac_r(x) @ v, "J @ v")
    close(J.T @ w, jac_r(x).T @ w, "J.T @ w")
    close(J.update(x2) @ v, jac_r(x2) @ v, "J @ v after update")
    G = di.gauss_newton_operator(r, backend, x)
    close(G @ v, jac_r(x).T @ (jac_r(x) @ v), "G @ v")
    close(di.jacobian(r, di.AutoSparse(backend), x).toarray(), jac_r(x), "sparse jacobian")
    close(di.hessian(f, di.AutoSparse(backend), x).toarray(), hess(x), "sparse hessian")
    res = scipy.optimize.minimize(x0=x, method="trust-ncg", options={"gtol": 1e-9},
                                  **di.scipy_objective(lambda z: f(z) + jnp.sum((z - 1) ** 2), backend, x))
    assert res.success and np.max(np.abs(res.jac)) < 1e-9, res
    print("ok")
    """
)


def test_float64_numpy_inputs_with_x64_mode_off():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]

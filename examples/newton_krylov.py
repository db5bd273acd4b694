"""Newton-Krylov minimization with the matrix-free Hessian operator.

    python examples/newton_krylov.py

Any engine works: swap AutoJAX for AutoTorch or AutoAutograd (and write f with
torch or autograd.numpy).
"""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

import diffinterface as di

jax.config.update("jax_enable_x64", True)


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1::2] - x[::2] ** 2) ** 2 + (1.0 - x[::2]) ** 2)


x0 = np.tile([-1.2, 1.0], 50_000)  # n = 100,000
kwargs = di.scipy_objective(rosenbrock, di.AutoJAX(), x0)  # fun, jac, hessp sharing one cache per point
result = scipy.optimize.minimize(x0=x0, method="trust-krylov", options={"gtol": 1e-9}, **kwargs)
print(f"{result.nit} iterations, f = {result.fun:.3e}, |grad| = {np.linalg.norm(result.jac):.1e}")

# the operator itself, for your own solver
H = di.hessian_operator(rosenbrock, di.AutoJAX(), result.x)
v = np.random.default_rng(0).normal(size=x0.size)
print("H @ v at the solution:", (H @ v)[:4], "strategy:", H.strategy)

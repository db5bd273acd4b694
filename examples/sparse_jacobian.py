"""A sparse Jacobian of a black-box NumPy function, and of the same function in JAX.

    python examples/sparse_jacobian.py
"""

import numpy as np

import diffinterface as di
from diffinterface.testing.problems import brusselator_2d

N = 64
x = np.random.default_rng(0).uniform(0.5, 1.5, size=2 * N * N)  # 8192 unknowns

# plain NumPy + finite differences: 12 colors -> 25 evaluations instead of 16,385
f_numpy = lambda x: brusselator_2d(x, xp=np, N=N)
backend = di.AutoSparse(di.AutoFiniteDiff())
prep = di.prepare_jacobian(f_numpy, backend, x)
J = di.jacobian(f_numpy, backend, x, prep=prep)  # scipy.sparse.csr_array
print(f"finite differences: {J.shape}, nnz {J.nnz}, {di.ncolors(prep)} colors")

try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    f_jax = lambda x: brusselator_2d(x, xp=jnp, N=N)
    sparse_jax = di.AutoSparse(di.AutoJAX())
    prep_jax = di.prepare_jacobian(f_jax, sparse_jax, x)  # detect, color, compile once
    J_jax = di.jacobian(f_jax, sparse_jax, x + 0.1, prep=prep_jax)  # reused at a new point
    print(f"JAX: nnz {J_jax.nnz}, max |J_fd - J_jax| at x: {abs(J - di.jacobian(f_jax, sparse_jax, x, prep=prep_jax)).max():.1e}")
except ImportError:
    print("install diffinterface[jax] for the JAX part")

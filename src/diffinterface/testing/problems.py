"""Test problems written once for every array library.

Each function takes ``xp``, the array namespace (``numpy``, ``jax.numpy`` or
``torch``) and uses only operations the three share (``reshape``, ``roll``,
``concat``, slicing, elementwise math, ``sum``), so the same mathematics runs
in every engine and gives the same sparsity pattern.

* :func:`brusselator_2d`: right-hand side of the 2-D Brusselator
  reaction-diffusion system on an N x N periodic grid, unknown (s, i, j) at
  ``s*N*N + i*N + j``; :func:`brusselator_pattern` is its exact Jacobian
  pattern.
* :data:`CUTEST`: CUTEst-style unconstrained objectives (sums of element
  functions), each ``f(x, xp) -> scalar`` for any ``n >= 4``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["brusselator_2d", "brusselator_pattern", "CUTEST", "cutest_x0", "namespace"]


def namespace(x):
    """The array namespace of x: numpy, jax.numpy or torch."""
    mod = type(x).__module__
    if mod.startswith("torch"):
        import torch

        return torch
    if mod.startswith(("jax", "jaxlib")):
        import jax.numpy as jnp

        return jnp
    return np


def _concat(xp, parts):
    return xp.cat(parts) if hasattr(xp, "cat") else xp.concatenate(parts)


def brusselator_2d(x, xp=None, N=None, alpha=10.0, A=3.4, B=1.0):
    """2-D Brusselator rhs (length 2 N^2) for the state x of length 2 N^2."""
    xp = namespace(x) if xp is None else xp
    if N is None:
        N = int(round((x.shape[0] // 2) ** 0.5))
    u = x[: N * N].reshape(N, N)
    v = x[N * N :].reshape(N, N)

    def lap(w):
        return (xp.roll(w, 1, 0) + xp.roll(w, -1, 0) + xp.roll(w, 1, 1)
                + xp.roll(w, -1, 1) - 4.0 * w)

    uuv = u * u * v
    du = B + uuv - (A + 1.0) * u + alpha * lap(u)
    dv = A * u - uuv + alpha * lap(v)
    return _concat(xp, [du.reshape(-1), dv.reshape(-1)])


def brusselator_pattern(N):
    """Exact Jacobian pattern of :func:`brusselator_2d` as a boolean csr_array."""
    s, i, j = np.meshgrid(np.arange(2), np.arange(N), np.arange(N), indexing="ij")
    s, i, j = s.ravel(), i.ravel(), j.ravel()
    row = s * N * N + i * N + j
    cols = [row,
            s * N * N + ((i + 1) % N) * N + j, s * N * N + ((i - 1) % N) * N + j,
            s * N * N + i * N + (j + 1) % N, s * N * N + i * N + (j - 1) % N,
            (1 - s) * N * N + i * N + j]
    rows = np.concatenate([row] * len(cols))
    cols = np.concatenate(cols)
    m = 2 * N * N
    pat = sp.csr_array((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(m, m))
    pat.sum_duplicates()
    return pat


# CUTEst-style objectives: f(x, xp) -> scalar ------------------------------------
def arwhead(x, xp):
    return xp.sum((x[:-1] ** 2 + x[-1] ** 2) ** 2 - 4.0 * x[:-1] + 3.0)


def bdqrtic(x, xp):
    t = x[:-4] ** 2 + 2 * x[1:-3] ** 2 + 3 * x[2:-2] ** 2 + 4 * x[3:-1] ** 2 + 5 * x[-1] ** 2
    return xp.sum((3.0 - 4.0 * x[:-4]) ** 2 + t ** 2)


def rosenbrock(x, xp):
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def cragglvy(x, xp):
    a, b, c, d = x[0:-3:2], x[1:-2:2], x[2:-1:2], x[3::2]
    return xp.sum((xp.exp(a) - b) ** 4 + 100.0 * (b - c) ** 6 + xp.tan(c - d) ** 4
                  + a ** 8 + (d - 1.0) ** 2)


def dqdrtic(x, xp):
    return xp.sum(x[:-2] ** 2 + 100.0 * x[1:-1] ** 2 + 100.0 * x[2:] ** 2)


def edensch(x, xp):
    return 16.0 + xp.sum((x[:-1] - 2.0) ** 4 + (x[:-1] * x[1:] - 2.0 * x[1:]) ** 2
                         + (x[1:] + 1.0) ** 2)


def engval1(x, xp):
    return xp.sum((x[:-1] ** 2 + x[1:] ** 2) ** 2 - 4.0 * x[:-1] + 3.0)


def freuroth(x, xp):
    a, b = x[:-1], x[1:]
    return xp.sum(((5.0 - b) * b * b + a - 2.0 * b - 13.0) ** 2
                  + ((1.0 + b) * b * b + a - 14.0 * b - 29.0) ** 2)


def nondquar(x, xp):
    return ((x[0] - x[1]) ** 2 + (x[-2] + x[-1]) ** 2
            + xp.sum((x[:-2] + x[1:-1] + x[-1]) ** 4))


def sinquad(x, xp):
    return ((x[0] - 1.0) ** 4 + (x[-1] ** 2 - x[0] ** 2) ** 2
            + xp.sum((xp.sin(x[1:-1] - x[-1]) - x[0] ** 2 + x[1:-1] ** 2) ** 2))


def tridia(x, xp):
    i = xp.arange(2, x.shape[0] + 1) if xp is not np else np.arange(2, x.shape[0] + 1)
    return (x[0] - 1.0) ** 2 + xp.sum(i * (2.0 * x[1:] - x[:-1]) ** 2)


def liarwhd(x, xp):
    return xp.sum(4.0 * (x ** 2 - x[0]) ** 2 + (x - 1.0) ** 2)


def expsum(x, xp):
    """exp(x[i]) + x[j]: couples nothing across i and j (diagonal Hessian)."""
    return xp.sum(xp.exp(x)) + xp.sum(x[1:] * 3.0) + xp.sum(xp.floor(x * x))


def chainwoo_like(x, xp):
    a, b = x[:-1], x[1:]
    return xp.sum(xp.sin(a) * xp.cos(b) + a * b)


CUTEST = {
    "ARWHEAD": arwhead, "BDQRTIC": bdqrtic, "ROSENBR": rosenbrock, "CRAGGLVY": cragglvy,
    "DQDRTIC": dqdrtic, "EDENSCH": edensch, "ENGVAL1": engval1, "FREUROTH": freuroth,
    "NONDQUAR": nondquar, "SINQUAD": sinquad, "TRIDIA": tridia, "LIARWHD": liarwhd,
    "EXPSUM": expsum, "SINCOS": chainwoo_like,
}


def cutest_x0(n, seed=0):
    """A generic point (no accidental zeros of derivatives)."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=n)

"""Exact patterns on known structures, local vs global, errors, dense results."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from _detection_programs import jax_x64
from diffinterface._errors import DifferentiationError, InvalidInputError
from diffinterface.sparse.detection import (
    KnownSparsity,
    TracerLocalSparsityDetector,
    TracerSparsityDetector,
    UnknownOperationWarning,
    hessian_sparsity,
    jacobian_sparsity,
)
from diffinterface.testing.problems import CUTEST, brusselator_2d, brusselator_pattern, cutest_x0

jax = pytest.importorskip("jax")
jnp = jax.numpy


_x64 = pytest.fixture(autouse=True)(jax_x64)


LOCAL = TracerLocalSparsityDetector()


def _front_ends(x):
    return {"numpy": np.asarray(x), "jax": jnp.asarray(x)}


def _dense(p):
    return p.toarray()


def test_import_does_not_import_jax_or_torch():
    code = ("import sys; import diffinterface.sparse.detection as d; "
            "assert 'jax' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("N", [3, 5])
@pytest.mark.parametrize("fe", ["numpy", "jax"])
def test_brusselator_exact(N, fe):
    x = _front_ends(np.random.default_rng(0).uniform(size=2 * N * N))[fe]
    pat = jacobian_sparsity(brusselator_2d, x)
    assert pat.dtype == bool and pat.shape == (2 * N * N, 2 * N * N)
    assert (pat != brusselator_pattern(N)).nnz == 0


@pytest.mark.parametrize("name", sorted(CUTEST))
@pytest.mark.parametrize("fe", ["numpy", "jax"])
def test_cutest_hessian_exact(name, fe):
    n = 12
    f = CUTEST[name]
    x0 = cutest_x0(n, seed=1)
    H = np.asarray(jax.hessian(lambda x: f(x, jnp))(jnp.asarray(x0))) != 0
    xp = np if fe == "numpy" else jnp
    pat = hessian_sparsity(lambda x: f(x, xp), _front_ends(x0)[fe])
    assert (pat.toarray() == H).all(), (name, np.argwhere(pat.toarray() != H))


STRUCTURES = {
    # name: (f in xp, expected pattern for n = 8)
    "diagonal": (lambda x, xp: xp.sin(x) * 2.0, np.eye(8, dtype=bool)),
    "banded": (lambda x, xp: x[:-2] * x[1:-1] + xp.exp(x[2:]),
               np.array([[1 if 0 <= j - i <= 2 else 0 for j in range(8)] for i in range(6)], bool)),
    "block_diagonal": (lambda x, xp: (x.reshape(4, 2) * xp.sum(x.reshape(4, 2), 1)[:, None]).reshape(-1),
                       np.kron(np.eye(4), np.ones((2, 2))).astype(bool)),
    "arrowhead": (lambda x, xp: x * x[0] + x[-1],
                  (np.eye(8) + np.eye(8)[[0]] + np.eye(8)[[-1]] + 0).astype(bool) | np.zeros((8, 8), bool)),
}
STRUCTURES["arrowhead"][1][:, 0] = True
STRUCTURES["arrowhead"][1][:, -1] = True


@pytest.mark.parametrize("name", sorted(STRUCTURES))
@pytest.mark.parametrize("fe", ["numpy", "jax"])
def test_known_structures(name, fe):
    f, expected = STRUCTURES[name]
    xp = np if fe == "numpy" else jnp
    x = _front_ends(np.linspace(0.3, 1.1, 8))[fe]
    pat = jacobian_sparsity(lambda x: f(x, xp), x)
    assert (pat.toarray() == expected).all()


def test_hessian_respects_structure():
    x = np.linspace(0.5, 1.5, 6)
    # linear ops add nothing; x[i]*x[j] couples only i and j
    H = hessian_sparsity(lambda x: x[1] * x[4] + np.sum(3.0 * x), x).toarray()
    assert set(map(tuple, np.argwhere(H))) == {(1, 4), (4, 1)}
    # exp(x[i]) + x[j] couples nothing across i and j
    H = hessian_sparsity(lambda x: np.exp(x[0]) + x[3], x).toarray()
    assert set(map(tuple, np.argwhere(H))) == {(0, 0)}
    # a product used only through a zero-derivative op adds nothing
    H = hessian_sparsity(lambda x: np.sum(np.round(x * x[0])) + (x[2] > x[1]) * x[5], x)
    assert H.nnz == 0
    H = hessian_sparsity(lambda x: jnp.sum(jnp.round(x * x[0]) + (x > 1).astype(float)),
                         jnp.asarray(x))
    assert H.nnz == 0


def test_asarray_loops_and_float():
    def f(x):
        x = np.asarray(x)
        y = np.zeros_like(x)
        for i in range(1, len(x) - 1):
            y[i] = x[i - 1] - 2 * x[i] + x[i + 1] ** 2
        return y

    x = np.ones(6)
    pat = jacobian_sparsity(f, x).toarray()
    expected = np.zeros((6, 6), bool)
    for i in range(1, 5):
        expected[i, i - 1:i + 2] = True
    assert (pat == expected).all()

    def g(x):
        return x * 2.0 if float(x[0]) > 0 else x[::-1]

    with pytest.raises(DifferentiationError, match="TracerLocalSparsityDetector"):
        jacobian_sparsity(g, x)
    assert (jacobian_sparsity(g, x, detector=LOCAL).toarray() == np.eye(6, dtype=bool)).all()
    assert (jacobian_sparsity(g, -x, detector=LOCAL).toarray() == np.eye(6, dtype=bool)[::-1]).all()


@pytest.mark.parametrize("fe", ["numpy", "jax"])
def test_local_relu_and_where(fe):
    x = _front_ends(np.array([1.0, -1.0, 2.0, -3.0]))[fe]
    xp = np if fe == "numpy" else jnp
    relu = lambda x: xp.maximum(x, 0.0)  # noqa: E731
    assert jacobian_sparsity(relu, x).nnz == 4
    assert (jacobian_sparsity(relu, x, detector=LOCAL).toarray() == np.diag([1, 0, 1, 0]).astype(bool)).all()
    w = lambda x: xp.where(x > 0, x, xp.flip(x, 0))  # noqa: E731
    assert jacobian_sparsity(w, x).nnz == 8
    assert jacobian_sparsity(w, x, detector=LOCAL).nnz == 4


def test_jax_control_flow():
    lax = jax.lax
    x = jnp.linspace(0.1, 1.0, 5)
    f = lambda x: lax.cond(x[0] > 0, lambda x: x * 2, lambda x: jnp.flip(x), x)  # noqa: E731
    assert jacobian_sparsity(f, x).nnz == 9  # both branches joined
    assert jacobian_sparsity(f, x, detector=LOCAL).nnz == 5
    g = lambda x: lax.fori_loop(0, 3, lambda i, c: c * x[i], 1.0)  # noqa: E731
    assert set(map(tuple, np.argwhere(hessian_sparsity(g, x).toarray()))) == {
        (0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)}
    w = lambda x: lax.while_loop(lambda c: c[0] < 10.0, lambda c: (c[0] + jnp.abs(c[1]).sum(), jnp.roll(c[1], 1)),
                                 (0.0, x))[1]  # noqa: E731
    assert jacobian_sparsity(w, x).nnz == 25  # data-dependent trip count: fixed point
    s = lambda x: lax.scan(lambda c, xi: (c + xi, c * xi), 0.0, x)[1]  # noqa: E731
    assert (jacobian_sparsity(s, x).toarray() == np.tril(np.ones((5, 5)))).all()

    @jax.custom_jvp
    def h(x):
        return jnp.sin(x)

    h.defjvp(lambda p, t: (h(p[0]), jnp.cos(p[0]) * t[0]))
    assert (jacobian_sparsity(jax.jit(lambda x: h(x) * 2), x).toarray() == np.eye(5)).all()


def test_unknown_operation_warns_and_is_dense():
    x = np.linspace(0.1, 1.0, 4)
    with pytest.warns(UnknownOperationWarning, match="i0"):
        pat = jacobian_sparsity(lambda x: np.i0(x), x)
    assert pat.nnz == 16
    with pytest.warns(UnknownOperationWarning, match="top_k"):
        pat = jacobian_sparsity(lambda x: jax.lax.top_k(x, 2)[0], jnp.asarray(x))
    assert pat.nnz == 8


@pytest.mark.parametrize("fe", ["numpy", "jax"])
def test_dense_hessian_of_large_n(fe):
    # symbolic "all" rows keep this cheap (timed in benchmarks/detection.py, not here:
    # tests hold no wall-clock thresholds)
    n = 10_000
    xp = np if fe == "numpy" else jnp
    x = _front_ends(np.ones(n))[fe]
    f = lambda x: xp.sum(x) ** 2 + xp.sum(xp.sin(x))  # noqa: E731
    H = hessian_sparsity(f, x)
    assert H.nnz == n * n and H.shape == (n, n)


def test_dense_jacobian_matvec_symbolic():
    n = 3000
    A = np.random.default_rng(0).standard_normal((n, n))
    pat = jacobian_sparsity(lambda x: A @ x + x, np.ones(n))
    assert pat.nnz == n * n
    H = hessian_sparsity(lambda x: x @ (A @ x), np.ones(n))
    assert H.nnz == n * n


def test_known_sparsity_and_contexts():
    P = sp.random(5, 4, density=0.4, random_state=0) != 0
    det = KnownSparsity(P)
    assert (jacobian_sparsity(None, np.ones(4), detector=det) != P).nnz == 0
    with pytest.raises(InvalidInputError):
        jacobian_sparsity(None, np.ones(3), detector=det)

    class Constant:
        def __init__(self, value):
            self.value = value

    f = lambda x, c: x * c  # noqa: E731
    pat = jacobian_sparsity(f, np.ones(3), Constant(np.arange(3.0)))
    assert (pat.toarray() == np.eye(3)).all()
    with pytest.raises(InvalidInputError, match="scalar"):
        hessian_sparsity(lambda x: x * 2, np.ones(3))
    assert isinstance(TracerSparsityDetector(), TracerSparsityDetector)

"""The Hessian operator: products, blocks, update without retracing, copies,
SciPy LinearOperator, and the SciPy objective's shared cache."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from scipy.sparse.linalg import LinearOperator

import diffinterface as di

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
anp = pytest.importorskip("autograd.numpy")
import jax.numpy as jnp  # noqa: E402


def rosen(xp):
    return lambda x: xp.sum(100.0 * (x[1::2] - x[::2] ** 2) ** 2 + (1.0 - x[::2]) ** 2)


def rosen_hessian(x):
    n = x.size
    h = np.zeros((n, n))
    for i in range(0, n, 2):
        a, b = x[i], x[i + 1]
        h[i, i] = 1200 * a**2 - 400 * b + 2
        h[i, i + 1] = h[i + 1, i] = -400 * a
        h[i + 1, i + 1] = 200
    return h


ENGINES = {
    "jax": (di.AutoJAX(), rosen(jnp)),
    "torch": (di.AutoTorch(), rosen(torch)),
    "autograd": (di.AutoAutograd(), rosen(anp)),
    "finite_diff": (di.AutoFiniteDiff(), rosen(np)),
    "fd_over_jax": (di.SecondOrder(di.AutoFiniteDiff(), di.AutoJAX()), rosen(jnp)),
}
RTOL = {"finite_diff": 1e-5, "fd_over_jax": 1e-6}


@pytest.mark.parametrize("engine", list(ENGINES))
def test_products_blocks_update_and_state(engine):
    backend, f = ENGINES[engine]
    rtol = RTOL.get(engine, 1e-12)
    rng = np.random.default_rng(1)
    x0, x1 = rng.normal(size=8), rng.normal(size=8)
    H = di.hessian_operator(f, backend, x0)
    assert H.shape == (8, 8) and H.dtype == np.float64
    v, V = rng.normal(size=8), rng.normal(size=(8, 5))
    np.testing.assert_allclose(H @ v, rosen_hessian(x0) @ v, rtol=rtol, atol=1e-9)
    assert H.update(x1) is H
    np.testing.assert_allclose(H @ V, rosen_hessian(x1) @ V, rtol=rtol, atol=1e-9)
    assert (H @ V).shape == (8, 5)
    np.testing.assert_allclose(H.value, rosen(np)(x1), rtol=1e-13)
    np.testing.assert_allclose(H.gradient, di.gradient(rosen(np), di.AutoFiniteDiff(method="complex"), x1), rtol=rtol)
    op = H.aslinearoperator()
    assert isinstance(op, LinearOperator)
    np.testing.assert_allclose(op.matvec(v), rosen_hessian(x1) @ v, rtol=rtol, atol=1e-9)
    np.testing.assert_allclose(op.rmatvec(v), rosen_hessian(x1) @ v, rtol=rtol, atol=1e-9)
    np.testing.assert_allclose(op.matmat(V), rosen_hessian(x1) @ V, rtol=rtol, atol=1e-9)


def test_operator_holds_its_own_copy_of_x():
    x = np.linspace(-1, 1, 6)
    H = di.hessian_operator(rosen(jnp), di.AutoJAX(), x)
    expected = rosen_hessian(np.linspace(-1, 1, 6))
    x[:] = 7.0
    np.testing.assert_allclose(H @ np.ones(6), expected @ np.ones(6), rtol=1e-12)
    t = torch.linspace(-1, 1, 6, dtype=torch.float64)
    Ht = di.hessian_operator(rosen(torch), di.AutoTorch(), t)
    t.fill_(7.0)
    np.testing.assert_allclose((Ht @ torch.ones(6, dtype=torch.float64)).numpy(), expected @ np.ones(6), rtol=1e-12)


def test_update_does_not_retrace_or_recompile():
    traces = []

    def f(x):
        traces.append(1)
        return rosen(jnp)(x)

    rng = np.random.default_rng(2)
    H = di.hessian_operator(f, di.AutoJAX(), rng.normal(size=10))
    for m in (1, 12, 1, 30):  # exercise both strategies and the switch between them
        H.update(rng.normal(size=10))
        for _ in range(m):
            H @ rng.normal(size=10)
        H @ rng.normal(size=(10, 3))
        H.value, H.gradient
    count = len(traces)
    for m in (1, 12, 1, 30):
        x = rng.normal(size=10)
        H.update(x)
        for _ in range(m):
            v = rng.normal(size=10)
            np.testing.assert_allclose(H @ v, rosen_hessian(x) @ v, rtol=1e-12)
        H @ rng.normal(size=(10, 3))
        H.value, H.gradient
    assert len(traces) == count


def test_jax_linearization_leaves_out_f_and_gradient_unless_asked():
    """JAX's linearize set-up returns f and ∇f only where the previous point asked for
    them; at other points they come from a separate pass when asked; same numbers."""
    rng = np.random.default_rng(3)
    H = di.hessian_operator(rosen(jnp), di.AutoJAX(), rng.normal(size=10))
    H._costs, H._choices = [(1.0, 1.0), (0.0, 1e-9)], {}  # make linearize the choice at every point
    complex_step = di.AutoFiniteDiff(method="complex")
    asked = []
    for ask in (True, False, False, True, True):
        x, v = rng.normal(size=10), rng.normal(size=10)
        H.update(x)
        np.testing.assert_allclose(H @ v, rosen_hessian(x) @ v, rtol=1e-12)
        assert H.strategy == "linearize"
        asked.append("value" in H._state)  # built with f and ∇f before any was asked for here
        if ask:
            np.testing.assert_allclose(H.gradient, di.gradient(rosen(np), complex_step, x), rtol=1e-12)
            np.testing.assert_allclose(H.value, rosen(np)(x), rtol=1e-13)
    assert asked == [False, True, False, False, True]


@pytest.mark.parametrize("shape", [(8,), (2, 4)])
def test_jax_block_paths_agree_in_every_column_mode(shape):
    """H @ V for JAX: the setup-free columns and the linearization's, each in each
    column mode the operator may measure fastest, against the closed form."""
    rng = np.random.default_rng(4)
    x, V = rng.normal(size=shape), rng.normal(size=(8, 3))
    f = lambda z: rosen(jnp)(jnp.reshape(z, -1))  # noqa: E731
    H = di.hessian_operator(f, di.AutoJAX(), x)
    expected = rosen_hessian(x.reshape(-1)) @ V
    xn, Vn = jnp.asarray(x), jnp.asarray(V)
    for strategy in H._strategies:
        assert strategy.column_modes == ("rows", "axes")
        for mode in strategy.column_modes:
            got = strategy.apply_columns(strategy.setup(xn, ()), Vn, mode)
            np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12)
    for mode in H._setup_free_blocks.column_modes:
        np.testing.assert_allclose(np.asarray(H._setup_free_blocks.columns_at(xn, (), Vn, mode)), expected, rtol=1e-12)
    np.testing.assert_allclose(H @ V, expected, rtol=1e-12)
    assert H._block_choice[3][1] in ("rows", "axes")


def test_jax_and_torch_native_arrays_stay_native():
    H = di.hessian_operator(rosen(jnp), di.AutoJAX(), jnp.ones(4))
    assert isinstance(H @ jnp.ones(4), jax.Array)
    Ht = di.hessian_operator(rosen(torch), di.AutoTorch(), torch.ones(4, dtype=torch.float64))
    r = Ht @ torch.ones(4, dtype=torch.float64)
    assert isinstance(r, torch.Tensor) and r.dtype == torch.float64


def test_operator_errors():
    H = di.hessian_operator(rosen(np), di.AutoFiniteDiff(), np.ones(4))
    with pytest.raises(di.InvalidInputError, match=r"\(4,\) or \(4, k\)"):
        H @ np.ones(3)
    with pytest.raises(di.PreparationMismatchError, match="x:"):
        H.update(np.ones(5))
    with pytest.raises(di.InvalidInputError, match="scalar-valued"):
        di.hessian_operator(np.sin, di.AutoFiniteDiff(), np.ones(3))


@pytest.mark.parametrize("method", ["Newton-CG", "trust-ncg", "trust-krylov", "trust-constr"])
def test_scipy_objective_shares_one_evaluation_per_point(method):
    calls = []

    def f(x):
        calls.append(1)
        return rosen(torch)(x)

    x0 = np.tile([-1.2, 1.0], 10)
    kwargs = di.scipy_objective(f, di.AutoTorch(), x0)
    options = {"maxiter": 1000, "gtol": 1e-10}
    if method == "Newton-CG":
        options = {"maxiter": 1000, "xtol": 1e-12}
    result = scipy.optimize.minimize(x0=x0, method=method, options=options, **kwargs)
    np.testing.assert_allclose(result.x, np.ones(20), atol=1e-5)
    point = kwargs["fun"].point
    # one forward pass (value and gradient together, graph kept for the products) per distinct x,
    # plus the one of preparation; hessp never calls f again
    assert len(calls) == point.evaluations + 1
    assert point.operator.products > 0


def test_scipy_objective_with_jax_and_autograd():
    for backend, f in [(di.AutoJAX(), rosen(jnp)), (di.AutoAutograd(), rosen(anp))]:
        x0 = np.tile([-1.2, 1.0], 5)
        result = scipy.optimize.minimize(x0=x0, method="trust-krylov", options={"gtol": 1e-10},
                                         **di.scipy_objective(f, backend, x0))
        np.testing.assert_allclose(result.x, np.ones(10), atol=1e-6)


@pytest.mark.parametrize("backend,f", [(di.AutoJAX(), rosen(jnp)), (di.AutoTorch(), rosen(torch)),
                                        (di.AutoAutograd(), rosen(anp))], ids=["jax", "torch", "autograd"])
def test_gradient_is_a_copy_callers_may_modify(backend, f):
    """SciPy's trust-region code scales the gradient it is given in place; the
    operator's cached gradient must not change (this once corrupted JAX runs)."""
    x = np.linspace(-1, 1, 6)
    H = di.hessian_operator(f, backend, x)
    H @ np.ones(6)  # the state (and its gradient) is cached now
    g = H.gradient
    expected = np.array(g)
    g *= 0.0
    np.testing.assert_array_equal(H.gradient, expected)

"""scipy_least_squares: fun and jac share one evaluation per point, the jac
rule (dense / LinearOperator / sparse csr with AutoSparse), bounds (trial points do not move
the operator SciPy holds), and the Brusselator demo against the exact Jacobian."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
from scipy.sparse.linalg import LinearOperator

import diffinterface as di
from diffinterface._demo_least_squares import (
    TOLERANCES,
    brusselator,
    brusselator_data,
    brusselator_jacobian,
    brusselator_sparsity,
    solve,
    solve_dense_exact,
)
from diffinterface._least_squares import scipy_least_squares

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
anp = pytest.importorskip("autograd.numpy")
import jax.numpy as jnp  # noqa: E402

ENGINES = {
    "jax": (di.AutoJAX(), jnp, np.asarray),
    "torch": (di.AutoTorch(), torch, torch.as_tensor),
    "autograd": (di.AutoAutograd(), anp, np.asarray),
    "finite_diff": (di.AutoFiniteDiff(method="complex"), np, np.asarray),
}


def rosenbrock_residuals(xp):
    def r(x):
        return xp.reshape(xp.stack([10.0 * (x[1::2] - x[::2] ** 2), 1.0 - x[::2]]), (-1,))

    return r


@pytest.mark.parametrize("jac_kind", ["operator", "dense"])
@pytest.mark.parametrize("engine", list(ENGINES))
def test_solves_and_shares_one_evaluation_per_point(engine, jac_kind):
    backend, xp, _ = ENGINES[engine]
    calls = []
    inner = rosenbrock_residuals(xp)

    def r(x):
        calls.append(1)
        return inner(x)

    x0 = np.tile([-1.2, 1.0], 4)
    kwargs = scipy_least_squares(r, backend, x0, jac_kind=jac_kind)
    result = scipy.optimize.least_squares(x0=x0, method="trf", tr_solver="lsmr", **TOLERANCES, **kwargs)
    np.testing.assert_allclose(result.x, np.ones(8), atol=1e-8)
    point = kwargs["fun"].point
    # one set-up per distinct point SciPy evaluates: jac reuses fun's (products may re-run f
    # where the chosen strategy recomputes, e.g. torch.func.jvp)
    assert point.evaluations == result.nfev
    assert result.njev <= result.nfev
    jac = kwargs["jac"](result.x)
    assert isinstance(jac, LinearOperator if jac_kind == "operator" else np.ndarray)


def test_jac_rule():
    x0 = np.zeros(10)
    small = scipy_least_squares(lambda x: x**2, di.AutoFiniteDiff(), x0)
    assert small["jac"].kind == "dense" and isinstance(small["jac"](x0), np.ndarray)
    large = scipy_least_squares(lambda x: jnp.concatenate([x, x**2]), di.AutoJAX(), np.zeros(400))
    assert large["jac"].kind == "operator"  # 800 x 400 > DENSE_MAX_ENTRIES
    with pytest.raises(di.UnsupportedOperationError, match=r"AutoSparse\(AutoFiniteDiff"):
        scipy_least_squares(lambda x: x**2, di.AutoFiniteDiff(), x0, jac_kind="sparse")
    sparse = scipy_least_squares(lambda x: x**2, di.AutoSparse(di.AutoFiniteDiff()), x0)
    assert sparse["jac"].kind == "sparse"  # auto: AutoSparse backends get the sparse Jacobian
    with pytest.raises(di.InvalidInputError, match="jac_kind"):
        scipy_least_squares(lambda x: x**2, di.AutoFiniteDiff(), x0, jac_kind="lsmr")


def test_trial_points_do_not_move_the_held_operator():
    r = rosenbrock_residuals(torch)
    x0 = np.tile([-1.2, 1.0], 3)
    kwargs = scipy_least_squares(r, di.AutoTorch(), x0, jac_kind="operator")
    J0 = kwargs["jac"](x0)
    kwargs["fun"](x0 + 1.0)  # a trial point
    kwargs["fun"](x0 + 2.0)  # another one
    dense = np.asarray(di.jacobian(rosenbrock_residuals(np), di.AutoFiniteDiff(method="complex"), x0))
    np.testing.assert_allclose(J0.matvec(np.ones(6)), dense @ np.ones(6), rtol=1e-12)
    np.testing.assert_allclose(J0.rmatvec(np.ones(6)), dense.T @ np.ones(6), rtol=1e-12)
    # with bounds, TRF evaluates J products after trial points: same answer as the dense Jacobian
    bounds = (np.full(6, -2.0), np.full(6, 0.9))
    common = dict(method="trf", tr_solver="lsmr", bounds=bounds, **TOLERANCES)
    ours = scipy.optimize.least_squares(x0=np.zeros(6), **common, **scipy_least_squares(r, di.AutoTorch(), np.zeros(6),
                                                                                         jac_kind="operator"))
    exact = scipy.optimize.least_squares(rosenbrock_residuals(np), np.zeros(6), jac=lambda x: np.asarray(
        di.jacobian(rosenbrock_residuals(np), di.AutoFiniteDiff(method="complex"), x)), **common)
    np.testing.assert_allclose(ours.cost, exact.cost, rtol=1e-10)


def test_brusselator_pieces_are_consistent():
    N = 6
    z = brusselator_data(N)[2]
    dense = brusselator_jacobian(N, z)
    pattern = brusselator_sparsity(N).toarray()
    assert dense.shape == pattern.shape == (4 * N * N, 2 * N * N)
    assert not np.any(dense[~pattern])
    J = di.jacobian(brusselator(np, np.asarray, N), di.AutoFiniteDiff(method="complex"), z)
    np.testing.assert_allclose(J, dense, rtol=1e-12, atol=1e-14)


def test_demo_instance_reaches_the_exact_dense_jacobian_cost():
    N = 32  # 2,048 unknowns
    x0 = brusselator_data(N)[2]
    reference = solve_dense_exact(N, x0)
    for engine in ("jax", "torch", "autograd"):
        backend, xp, asarray = ENGINES[engine]
        result, _, points = solve(brusselator(xp, asarray, N), backend, x0)
        assert abs(result.cost - reference.cost) <= 1e-8 * reference.cost
        assert points.evaluations == result.nfev


@pytest.mark.parametrize("engine", ["jax", "autograd", "finite_diff"])
def test_autosparse_jac_is_csr_and_reaches_the_dense_jacobian_cost(engine):
    import scipy.sparse as sp

    backend, xp, asarray = ENGINES[engine]
    N = 8  # 128 unknowns, 256 residuals
    x0 = brusselator_data(N)[2]
    calls = []
    inner = brusselator(xp, asarray, N)

    def r(z):
        calls.append(1)
        return inner(z)

    kwargs = scipy_least_squares(r, di.AutoSparse(backend), x0)
    assert kwargs["jac"].kind == "sparse"
    J0 = kwargs["jac"](x0)
    assert isinstance(J0, sp.csr_array) and J0.shape == (4 * N * N, 2 * N * N)
    np.testing.assert_allclose(J0.toarray(), brusselator_jacobian(N, x0), rtol=0, atol=1e-12)
    prep = kwargs["jac"].prep()
    assert di.ncolors(prep) < 2 * N * N // 4
    result = scipy.optimize.least_squares(x0=x0, method="trf", tr_solver="lsmr", **TOLERANCES, **kwargs)
    reference = solve_dense_exact(N, x0)
    assert result.cost <= reference.cost * (1 + 1e-10)
    assert kwargs["jac"].prep() is prep  # prepared once for every point
    point = kwargs["fun"].point
    assert point.evaluations == result.nfev  # fun and jac share the point's set-up


def test_autosparse_jac_with_bounds():
    N = 6
    x0 = brusselator_data(N)[2]
    bounds = (np.full(x0.size, 0.5), np.full(x0.size, 4.0))
    common = dict(method="trf", tr_solver="lsmr", bounds=bounds, **TOLERANCES)
    ours = scipy.optimize.least_squares(x0=x0, **common, **scipy_least_squares(
        brusselator(jnp, np.asarray, N), di.AutoSparse(di.AutoJAX()), x0))
    exact = scipy.optimize.least_squares(brusselator(np, np.asarray, N), x0, jac=lambda z: brusselator_jacobian(N, z),
                                         **common)
    np.testing.assert_allclose(ours.cost, exact.cost, rtol=1e-10)

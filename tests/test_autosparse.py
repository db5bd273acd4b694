"""AutoSparse: sparse Jacobians and Hessians for every engine, equal to the dense ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp

import diffinterface as di
from diffinterface.testing import check_backend, default_scenarios, sparse_scenarios
from diffinterface.testing._check import OPERATORS
from diffinterface.testing.problems import brusselator_2d, brusselator_pattern

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
anp = pytest.importorskip("autograd.numpy")
import jax.numpy as jnp  # noqa: E402

SPARSE_OPS = [o for o in OPERATORS if o.name in ("jacobian", "hessian")]
ENGINES = {
    "jax": (di.AutoJAX(), jnp), "jax-forward": (di.AutoJAX(mode="forward"), jnp), "torch": (di.AutoTorch(), torch),
    "autograd": (di.AutoAutograd(), anp), "finite_diff": (di.AutoFiniteDiff(), np),
    "complex_step": (di.AutoFiniteDiff(method="complex"), np),
}


@pytest.mark.parametrize("engine", list(ENGINES))
def test_check_backend_sparse_scenarios(engine):
    report = check_backend(di.AutoSparse(ENGINES[engine][0]), scenarios=sparse_scenarios(), operators=SPARSE_OPS)
    assert report.failures() == [], report.table()
    assert set(report.counts()) == {"ok"}


@pytest.mark.parametrize("engine", ["torch", "autograd", "finite_diff"])
def test_check_backend_default_scenarios(engine):
    report = check_backend(di.AutoSparse(ENGINES[engine][0]), scenarios=default_scenarios(), operators=OPERATORS)
    assert report.failures() == [], report.table()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["jax", "jax-forward", "complex_step"])
def test_check_backend_default_scenarios_slow(engine):
    report = check_backend(di.AutoSparse(ENGINES[engine][0]), scenarios=default_scenarios() + sparse_scenarios())
    assert report.failures() == [], report.table()


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("n_grid", [8, 16, 32])
def test_brusselator_sparse_equals_dense(engine, n_grid):
    backend, xp = ENGINES[engine]
    if engine in ("finite_diff", "complex_step", "autograd") and n_grid == 32:
        pytest.skip("dense reference by n = 2048 one-hot evaluations: covered at N = 8 and 16")
    f = lambda x: brusselator_2d(x, xp=xp, N=n_grid)
    x = np.random.default_rng(n_grid).uniform(0.5, 1.5, size=2 * n_grid * n_grid)
    sparse_backend = di.AutoSparse(backend)
    prep = di.prepare_jacobian(f, sparse_backend, x)
    x2 = x + 0.1
    J = di.jacobian(f, sparse_backend, x2, prep=prep)
    assert isinstance(J, sp.csr_array) and J.shape == (x.size, x.size)
    dense = di.jacobian(f, backend, x2)
    rtol = 1e-6 if engine == "finite_diff" else 1e-12
    assert np.max(np.abs(J.toarray() - dense)) <= rtol * np.max(np.abs(dense))
    assert (di.sparsity_pattern(prep) != brusselator_pattern(n_grid)).nnz == 0
    assert di.ncolors(prep) <= 12


def test_native_sparse_types_and_to_scipy():
    f_j = lambda x: x[1:] * jnp.sin(x[:-1])
    J = di.jacobian(f_j, di.AutoSparse(di.AutoJAX()), jnp.linspace(0, 1, 6))
    from jax.experimental import sparse as jsparse

    assert isinstance(J, jsparse.BCOO)
    f_t = lambda x: x[1:] * torch.sin(x[:-1])
    Jt = di.jacobian(f_t, di.AutoSparse(di.AutoTorch()), torch.linspace(0, 1, 6, dtype=torch.float64))
    assert isinstance(Jt, torch.Tensor) and Jt.layout == torch.sparse_csr
    np.testing.assert_allclose(di.to_scipy(J).toarray(), di.to_scipy(Jt).toarray(), rtol=1e-14)
    x = np.linspace(0, 1, 6)
    expected = np.zeros((5, 6))
    expected[np.arange(5), np.arange(5)] = x[1:] * np.cos(x[:-1])
    expected[np.arange(5), np.arange(1, 6)] = np.sin(x[:-1])
    np.testing.assert_allclose(di.to_scipy(J).toarray(), expected, rtol=1e-14)


def test_partition_with_fewer_colors_is_chosen():
    # a dense first row: column coloring needs n colors, row coloring few
    f = lambda x: jnp.concatenate([jnp.sum(x**2)[None], x[1:] * x[:-1]])
    x = np.linspace(0.5, 1.5, 40)
    prep = di.prepare_jacobian(f, di.AutoSparse(di.AutoJAX()), x)
    assert di.ncolors(prep) <= 3
    assert len(di.row_colors(prep)) == 40
    with pytest.raises(di.InvalidInputError, match="row_colors"):
        di.column_colors(prep)
    J = di.jacobian(f, di.AutoSparse(di.AutoJAX()), x, prep=prep)
    np.testing.assert_allclose(J.toarray(), di.jacobian(f, di.AutoJAX(), x), rtol=1e-13)


def test_dense_pattern_falls_back_with_one_warning():
    f = lambda x: np.sin(np.sum(x) * x)
    x = np.linspace(0.1, 1, 30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prep = di.prepare_jacobian(f, di.AutoSparse(di.AutoFiniteDiff(method="complex")), x)
        J = di.jacobian(f, di.AutoSparse(di.AutoFiniteDiff(method="complex")), x, prep=prep)
    fallbacks = [w for w in caught if issubclass(w.category, di.DenseFallbackWarning)]
    assert len(fallbacks) == 1 and "dense path" in str(fallbacks[0].message)
    np.testing.assert_allclose(J.toarray(), di.jacobian(f, di.AutoFiniteDiff(method="complex"), x), rtol=1e-13)


@pytest.mark.parametrize("decompression", ["direct", "substitution"])
def test_arrowhead_hessian_is_cheap_by_symmetry(decompression):
    n = 200
    f = lambda x: jnp.sum(x[0] * x[1:] ** 2) + jnp.sum(jnp.cos(x))
    backend = di.AutoSparse(di.AutoJAX(), coloring_algorithm=di.GreedyColoringAlgorithm(decompression=decompression))
    x = np.linspace(-1, 1, n)
    prep = di.prepare_hessian(f, backend, x)
    assert di.ncolors(prep) <= 3
    y, g, H = di.value_gradient_and_hessian(f, backend, x + 0.5, prep=prep)
    np.testing.assert_allclose(H.toarray(), di.hessian(f, di.AutoJAX(), x + 0.5), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(g, di.gradient(f, di.AutoJAX(), x + 0.5), rtol=1e-13)


def test_hessian_operator_tosparse_and_scipy_hess():
    f = lambda x: torch.sum(100.0 * (x[1::2] - x[::2] ** 2) ** 2 + (1.0 - x[::2]) ** 2)
    backend = di.AutoSparse(di.AutoTorch())
    x0 = np.tile([-1.2, 1.0], 20)
    H = di.hessian_operator(f, backend, x0)
    S = H.tosparse()
    assert sp.issparse(S)
    np.testing.assert_allclose(S.toarray(), H.todense(), rtol=1e-13)
    kwargs = di.scipy_objective(f, backend, x0)
    del kwargs["hessp"]
    result = scipy.optimize.minimize(x0=x0, method="trust-constr", options={"gtol": 1e-10}, **kwargs)
    np.testing.assert_allclose(result.x, np.ones(40), atol=1e-5)


def test_autosparse_errors():
    with pytest.raises(di.InvalidInputError, match="dense backend"):
        di.AutoSparse("jax")
    with pytest.raises(di.InvalidInputError, match="sparsity_detector"):
        di.AutoSparse(di.AutoJAX(), sparsity_detector=42)
    with pytest.raises(di.InvalidInputError, match="AutoSparse"):
        di.ncolors(di.prepare_gradient(lambda x: np.sum(x), di.AutoFiniteDiff(), np.ones(2)))
    with pytest.raises(di.InvalidInputError, match="out= is not supported"):
        di.jacobian(np.sin, di.AutoSparse(di.AutoFiniteDiff()), np.ones(3), out=np.zeros((3, 3)))


def test_known_sparsity_with_a_black_box():
    calls = []

    def black_box(x):
        calls.append(1)
        return np.concatenate([[x[0] ** 2], x[1:] - x[:-1] ** 2])

    n = 50
    pattern = sp.eye(n, format="csr") + sp.eye(n, k=-1, format="csr")
    backend = di.AutoSparse(di.AutoFiniteDiff(), sparsity_detector=di.KnownSparsity(pattern))
    prep = di.prepare_jacobian(black_box, backend, np.ones(n))
    calls.clear()
    J = di.jacobian(black_box, backend, np.linspace(0, 1, n), prep=prep)
    assert len(calls) <= 1 + 2 * 2  # value + 2 colors x central differences (not 2n)
    np.testing.assert_allclose(J.toarray(), di.jacobian(black_box, di.AutoFiniteDiff(), np.linspace(0, 1, n)), atol=1e-8)


def _arrow_jacobian(x):
    """A dense first row and a dense first column: one-sided colorings need n colors."""
    xp = torch if isinstance(x, torch.Tensor) else jnp
    cat = torch.cat if xp is torch else jnp.concatenate
    return cat([xp.sum(x * x).reshape(1), x[1:] ** 3 + x[0] * x[1:]])


@pytest.mark.parametrize("engine, native", [("jax", jnp.asarray), ("jax", np.asarray), ("torch", torch.as_tensor)])
def test_dense_row_and_column_use_a_bidirectional_coloring(engine, native):
    backend = ENGINES[engine][0]
    sparse = di.AutoSparse(backend)
    x0 = np.random.default_rng(3).uniform(0.5, 1.5, 120)
    with warnings.catch_warnings():
        warnings.simplefilter("error", di.DenseFallbackWarning)
        prep = di.prepare_jacobian(_arrow_jacobian, sparse, native(x0))
    assert di.ncolors(prep) <= 3  # instead of 120 either way
    assert (di.column_colors(prep) >= 0).sum() + (di.row_colors(prep) >= 0).sum() >= 1
    x = native(x0[::-1].copy())  # another point
    dense = di.jacobian(_arrow_jacobian, backend, x)
    dense = dense.numpy() if hasattr(dense, "numpy") else np.asarray(dense)
    J = di.jacobian(_arrow_jacobian, sparse, x, prep=prep)
    y, J2 = di.value_and_jacobian(_arrow_jacobian, sparse, x, prep=prep)
    for result in (J, J2):
        np.testing.assert_allclose(di.to_scipy(result).toarray(), dense, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(np.asarray(y), np.asarray(_arrow_jacobian(torch.as_tensor(x0[::-1].copy()))),
                               rtol=1e-14)


def test_reverse_only_engine_falls_back_on_dense_rows_and_columns():
    def f(x):
        return anp.concatenate([anp.sum(x * x).reshape(1), x[1:] ** 3 + x[0] * x[1:]])

    x = np.linspace(0.5, 1.5, 60)
    with pytest.warns(di.DenseFallbackWarning, match="dense path"):
        prep = di.prepare_jacobian(f, di.AutoSparse(di.AutoAutograd()), x)
    J = di.jacobian(f, di.AutoSparse(di.AutoAutograd()), x, prep=prep)
    np.testing.assert_allclose(J.toarray(), di.jacobian(f, di.AutoAutograd(), x), rtol=1e-13)

"""Contexts (Constant, Cache) and in-place functions across engines."""

from __future__ import annotations

import numpy as np
import pytest

import diffinterface as di

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
pytest.importorskip("autograd")
import jax.numpy as jnp  # noqa: E402

X = np.array([0.5, -1.0, 2.0, 1.5])


def shifted_product(y, x):
    y[:] = x[1:] * x[:-1]


def product_jacobian(x):
    jac = np.zeros((x.size - 1, x.size))
    idx = np.arange(x.size - 1)
    jac[idx, idx] = x[1:]
    jac[idx, idx + 1] = x[:-1]
    return jac


INPLACE_BACKENDS = [di.AutoFiniteDiff(method="complex"), di.AutoFiniteDiff(), di.AutoTorch(), di.AutoTorch(mode="forward")]


@pytest.mark.parametrize("backend", INPLACE_BACKENDS, ids=repr)
def test_inplace_jacobian_pushforward_pullback(backend):
    rtol = 1e-6 if backend == di.AutoFiniteDiff() else 1e-12
    f = di.InPlace(shifted_product, np.zeros(3))
    np.testing.assert_allclose(di.jacobian(f, backend, X), product_jacobian(X), rtol=rtol, atol=1e-9)
    tangents = (X, np.ones(4))
    prep = di.prepare_pushforward(f, backend, X, tangents)
    x2 = X + 1
    # a new InPlace wrapper of the same function and buffer shape reuses the prep
    results = di.pushforward(di.InPlace(shifted_product, np.zeros(3)), backend, x2, tangents, prep=prep)
    for t, r in zip(tangents, results):
        np.testing.assert_allclose(r, product_jacobian(x2) @ t, rtol=rtol, atol=1e-9)
    y, pb = di.value_and_pullback(f, backend, X, np.ones(3))
    np.testing.assert_allclose(y, X[1:] * X[:-1], rtol=1e-14)
    np.testing.assert_allclose(pb, np.ones(3) @ product_jacobian(X), rtol=rtol, atol=1e-9)


def test_inplace_refused_where_arrays_are_immutable():
    f = di.InPlace(shifted_product, np.zeros(3))
    with pytest.raises(di.UnsupportedOperationError, match="AutoTorch"):
        di.jacobian(f, di.AutoJAX(), X)
    with pytest.raises(di.UnsupportedOperationError, match="AutoFiniteDiff"):
        di.jacobian(f, di.AutoAutograd(), X)
    with pytest.raises(di.UnsupportedOperationError, match="jacobian, pushforward and pullback"):
        di.gradient(f, di.AutoTorch(), X)


def scratch_square_sum(x, scratch):
    scratch[:] = x**2
    return (scratch * x).sum()  # sum(x^3)


@pytest.mark.parametrize("backend", [di.AutoTorch(), di.AutoFiniteDiff(method="complex"), di.AutoFiniteDiff()], ids=repr)
def test_cache_is_supplied_by_the_engine(backend):
    rtol = 1e-6 if backend == di.AutoFiniteDiff() else 1e-12
    buffer = np.zeros(4)
    g = di.gradient(scratch_square_sum, backend, X, di.Cache(buffer))
    np.testing.assert_allclose(g, 3 * X**2, rtol=rtol)
    assert g.dtype == np.float64
    prep = di.prepare_gradient(scratch_square_sum, backend, X, di.Cache(buffer))
    np.testing.assert_allclose(di.gradient(scratch_square_sum, backend, X + 1, di.Cache(buffer), prep=prep),
                               3 * (X + 1) ** 2, rtol=rtol, atol=1e-9)
    H = di.hessian_operator(scratch_square_sum, backend, X, di.Cache(buffer))
    np.testing.assert_allclose(H @ np.ones(4), 6 * X, rtol=1e-5 if backend != di.AutoTorch() else 1e-12)


def test_cache_refused_by_autograd():
    with pytest.raises(di.UnsupportedOperationError, match="AutoTorch"):
        di.gradient(scratch_square_sum, di.AutoAutograd(), X, di.Cache(np.zeros(4)))


@pytest.mark.parametrize("backend,xp", [(di.AutoJAX(), jnp), (di.AutoTorch(), torch), (di.AutoFiniteDiff(), np)], ids=["jax", "torch", "fd"])
def test_constant_new_values_and_several_contexts(backend, xp):
    def f(x, a, scale):
        a = xp.asarray(a) if xp is not torch else torch.as_tensor(a)
        return xp.sum(a * x**2) * scale

    a1, a2 = np.arange(4.0), np.ones(4)
    prep = di.prepare_gradient(f, backend, X, di.Constant(a1), di.Constant(2.0))
    for a, scale in [(a1, 2.0), (a2, 3.0)]:
        g = di.gradient(f, backend, X, di.Constant(a), di.Constant(scale), prep=prep)
        np.testing.assert_allclose(g, 2 * a * X * scale, rtol=1e-6 if backend == di.AutoFiniteDiff() else 1e-12)

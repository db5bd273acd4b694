"""Second-order operators for every engine and every pair that can work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import diffinterface as di
from diffinterface.testing import check_backend
from diffinterface.testing._check import SECOND_ORDER

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
anp = pytest.importorskip("autograd.numpy")
import jax.numpy as jnp  # noqa: E402

J, T, A, F = di.AutoJAX, di.AutoTorch, di.AutoAutograd, di.AutoFiniteDiff
SUPPORTED = [
    J(), T(), A(), F(), F(method="complex"),
    di.SecondOrder(J("forward"), J("reverse")), di.SecondOrder(J("reverse"), J("reverse")),
    di.SecondOrder(J("forward"), J("forward")), di.SecondOrder(J("reverse"), J("forward")),
    di.SecondOrder(T("forward"), T("reverse")), di.SecondOrder(T("reverse"), T("reverse")),
    di.SecondOrder(T("reverse"), T("forward")), di.SecondOrder(T("forward"), T("forward")),
    di.SecondOrder(A(), A()),
    di.SecondOrder(F(), J()), di.SecondOrder(F(), T()), di.SecondOrder(F(), A()), di.SecondOrder(F(), F()),
]


@pytest.mark.parametrize("backend", SUPPORTED, ids=repr)
def test_second_order_report_is_all_ok(backend):
    report = check_backend(backend, operators=SECOND_ORDER)
    assert report.failures() == [], report.table()
    assert set(report.counts()) == {"ok"}
    assert "3d->scalar" in {row.scenario for row in report.rows}  # Hessian of an n-d x


@pytest.mark.parametrize("pair", [di.SecondOrder(J(), T()), di.SecondOrder(T(), A()), di.SecondOrder(A(), F())], ids=repr)
def test_pairs_that_cannot_work_say_which_do(pair):
    report = check_backend(pair, operators=SECOND_ORDER)
    assert set(report.counts()) == {"not supported"}
    assert "AutoFiniteDiff()" in report.rows[0].detail or "SecondOrder(" in report.rows[0].detail
    with pytest.raises(di.UnsupportedOperationError, match="SecondOrder\\("):
        di.hvp(lambda x: x @ x, pair, np.ones(3), np.ones(3))


SEED = json.loads((Path(__file__).parents[2] / "shared" / "reference" / "seed_hvp.json").read_text())
SEED_FUNCTIONS = {
    "jax": (J(), lambda x: jnp.linalg.norm(x) ** 3 * x[-1] + x[0] ** 2, 1e-12),
    "torch": (T(), lambda x: torch.linalg.norm(x) ** 3 * x[-1] + x[0] ** 2, 1e-12),
    "autograd": (A(), lambda x: anp.linalg.norm(x) ** 3 * x[-1] + x[0] ** 2, 1e-12),
    "finite_diff": (F(), lambda x: np.linalg.norm(x) ** 3 * x[-1] + x[0] ** 2, 1e-5),
}


@pytest.mark.parametrize("engine", list(SEED_FUNCTIONS))
def test_reference_hvp_from_the_motivating_discussion(engine):
    backend, f, rtol = SEED_FUNCTIONS[engine]
    x, v, expected = (np.array(SEED[k]) for k in ("x", "v", "hvp"))
    np.testing.assert_allclose(di.hvp(f, backend, x, v), expected, rtol=rtol)
    prep = di.prepare_hvp(f, backend, x + 3.0, v)
    np.testing.assert_allclose(di.hvp(f, backend, x, v, prep=prep), expected, rtol=rtol)
    H = di.hessian_operator(f, backend, x)
    np.testing.assert_allclose(H @ v, expected, rtol=rtol)
    H.update(x * 2.0 - 1.0)  # another point first
    H @ v
    np.testing.assert_allclose(H.update(x) @ v, expected, rtol=rtol)


def test_batched_hvp_matches_single_products():
    f = lambda x: jnp.sum(jnp.sin(x) * x**2) + jnp.prod(x[:3])
    x = np.linspace(0.2, 1.4, 6)
    tangents = tuple(np.random.default_rng(0).normal(size=(3, 6)))
    batch = di.hvp(f, J(), x, tangents)
    assert isinstance(batch, tuple) and len(batch) == 3
    for t, hv in zip(tangents, batch):
        np.testing.assert_allclose(hv, di.hvp(f, J(), x, t), rtol=1e-13)
    g, hvs = di.gradient_and_hvp(f, J(), x, tangents)
    np.testing.assert_allclose(g, di.gradient(f, J(), x), rtol=1e-13)


def test_value_gradient_and_hessian_of_matrix_input():
    f = lambda x: torch.sum(x**3) + torch.sum(x[0] * x[1])
    x = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], dtype=torch.float64)
    y, g, h = di.value_gradient_and_hessian(f, T(), x)
    assert h.shape == (2, 3, 2, 3) and isinstance(h, torch.Tensor)
    expected = np.zeros((2, 3, 2, 3))
    for i in range(2):
        for j in range(3):
            expected[i, j, i, j] = 6 * x[i, j].item()
    for j in range(3):
        expected[0, j, 1, j] = expected[1, j, 0, j] = 1.0
    np.testing.assert_allclose(h.numpy(), expected, rtol=1e-13)


def test_second_order_errors():
    with pytest.raises(di.InvalidInputError, match="scalar-valued f"):
        di.hessian(np.sin, F(), np.ones(3))
    with pytest.raises(di.InvalidInputError, match="second_derivative needs a scalar x"):
        di.second_derivative(lambda x: np.sum(x**2), F(), np.ones(3))
    with pytest.raises(di.InvalidInputError, match=r"tx has shape"):
        di.hvp(lambda x: np.sum(x**2), F(), np.ones(3), np.ones(4))

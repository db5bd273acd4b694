"""Pytree arguments: dicts, tuples, nested containers, namedtuples and dataclasses."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest

import diffinterface as di

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
anp = pytest.importorskip("autograd.numpy")
import jax.numpy as jnp  # noqa: E402

ENGINES = {"jax": (di.AutoJAX(), jnp), "torch": (di.AutoTorch(), torch), "autograd": (di.AutoAutograd(), anp),
           "finite_diff": (di.AutoFiniteDiff(), np)}
RTOL = {"finite_diff": 1e-7}

rng = np.random.default_rng(3)
PARAMS = {"w": rng.normal(size=(2, 3)), "b": rng.normal(size=2)}


def loss(xp):
    return lambda p: xp.sum(xp.tanh(p["w"].T @ p["b"]) ** 2) + xp.sum(p["b"] ** 3)


def loss_gradient(p):
    t = np.tanh(p["w"].T @ p["b"])
    dz = 2 * t * (1 - t**2)
    return {"w": np.outer(p["b"], dz), "b": p["w"] @ dz + 3 * p["b"] ** 2}


def flat_hessian(p):
    """Complex-step Jacobian of the closed-form gradient, on the flat vector (w first, then b: sorted keys)."""
    def flat_grad(v):
        q = {"b": v[:2], "w": v[2:].reshape(2, 3)}
        t = np.tanh(q["w"].T @ q["b"])
        dz = 2 * t * (1 - t**2)
        return np.concatenate([q["w"] @ dz + 3 * q["b"] ** 2, np.outer(q["b"], dz).reshape(-1)])

    v = np.concatenate([p["b"], p["w"].reshape(-1)])
    return np.stack([np.imag(flat_grad(v + 1e-30j * e)) / 1e-30 for e in np.eye(v.size)], axis=1)


def assert_close(actual, expected, rtol):
    """Norm-wise relative closeness (entries far below the largest are not held to rtol alone)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= rtol * max(np.max(np.abs(expected)), 1e-300)


def _native(tree, xp):
    if xp is torch:
        return {k: torch.tensor(v) for k, v in tree.items()}
    return tree


@pytest.mark.parametrize("engine", list(ENGINES))
def test_gradient_hvp_hessian_of_a_dict(engine):
    backend, xp = ENGINES[engine]
    rtol = RTOL.get(engine, 1e-12)
    f = loss(xp)
    g = di.gradient(f, backend, PARAMS)
    assert set(g) == {"w", "b"} and g["w"].shape == (2, 3)
    for k, expected in loss_gradient(PARAMS).items():
        assert_close(g[k], expected, rtol=rtol)
    prep = di.prepare_gradient(f, backend, PARAMS)
    shifted = {k: v + 0.1 for k, v in PARAMS.items()}
    g2 = di.gradient(f, backend, shifted, prep=prep)
    assert_close(g2["b"], loss_gradient(shifted)["b"], rtol=rtol)
    H = di.hessian(f, backend, PARAMS)
    assert H["w"]["b"].shape == (2, 3, 2)
    assert_close(di.flatten_jacobian(H, PARAMS), flat_hessian(PARAMS), rtol=1e-5 if rtol > 1e-12 else 1e-11)
    hv = di.hvp(f, backend, PARAMS, PARAMS)
    v = np.concatenate([PARAMS["b"], PARAMS["w"].reshape(-1)])
    expected = flat_hessian(PARAMS) @ v
    assert_close(np.concatenate([hv["b"], hv["w"].reshape(-1)]), expected, rtol=1e-5 if rtol > 1e-12 else 1e-11)


def test_jacobian_nesting_matches_jax():
    f = lambda p: {"u": jnp.sin(p["w"]) * p["b"][:, None], "v": p["b"] ** 2}
    ours = di.jacobian(f, di.AutoJAX(), PARAMS)
    theirs = jax.jacobian(f)({k: jnp.asarray(v) for k, v in PARAMS.items()})
    for outer in ("u", "v"):
        for inner in ("w", "b"):
            assert_close(ours[outer][inner], np.asarray(theirs[outer][inner]), rtol=1e-14)
    flat = di.flatten_jacobian(ours, PARAMS)
    assert flat.shape == (8, 8)


def test_torch_tree_in_torch_tree_out_and_pushforward_pullback_structure():
    x = _native(PARAMS, torch)
    f = lambda p: {"u": torch.sin(p["w"]), "v": p["b"] * 2}
    y, pf = di.value_and_pushforward(f, di.AutoTorch(), x, x)
    assert isinstance(pf["u"], torch.Tensor) and pf["u"].shape == (2, 3)
    assert_close(pf["u"].numpy(), np.cos(PARAMS["w"]) * PARAMS["w"], rtol=1e-14)
    pb = di.pullback(f, di.AutoTorch(), x, {"u": torch.ones(2, 3, dtype=torch.float64), "v": torch.ones(2, dtype=torch.float64)})
    assert_close(pb["w"].numpy(), np.cos(PARAMS["w"]), rtol=1e-14)
    assert_close(pb["b"].numpy(), 2 * np.ones(2), rtol=1e-14)


Layer = collections.namedtuple("Layer", "weight bias")


@dataclasses.dataclass
class Model:
    first: Layer
    scale: np.ndarray


@pytest.mark.parametrize("engine", ["jax", "autograd", "finite_diff"])
def test_tuples_nested_namedtuples_and_dataclasses(engine):
    backend, xp = ENGINES[engine]
    rtol = RTOL.get(engine, 1e-12)
    a, b = rng.normal(size=3), rng.normal(size=3)
    g = di.gradient(lambda t: xp.sum(t[0] * t[1] ** 2), backend, (a, b))
    assert isinstance(g, tuple)
    assert_close(g[0], b**2, rtol=rtol)
    assert_close(g[1], 2 * a * b, rtol=rtol)
    model = Model(Layer(rng.normal(size=(2, 2)), rng.normal(size=2)), np.array([1.5]))
    f = lambda m: xp.sum((m.first.weight @ m.first.bias) ** 2) * m.scale[0]
    gm = di.gradient(f, backend, model)
    assert isinstance(gm, Model) and isinstance(gm.first, Layer)
    z = model.first.weight @ model.first.bias
    assert_close(gm.first.bias, 2 * 1.5 * model.first.weight.T @ z, rtol=rtol)
    assert_close(gm.scale, [np.sum(z**2)], rtol=rtol)
    nested = {"layers": [a, {"inner": b}], "c": np.array(0.5)}
    gn = di.gradient(lambda p: xp.sum(p["layers"][0] * p["layers"][1]["inner"]) * p["c"], backend, nested)
    assert_close(gn["layers"][1]["inner"], a * 0.5, rtol=rtol)
    assert_close(gn["c"], np.sum(a * b), rtol=rtol)


def test_hessian_operator_on_a_pytree():
    f = loss(jnp)
    H = di.hessian_operator(f, di.AutoJAX(), PARAMS)
    assert H.shape == (8, 8)
    v = H.ravel(PARAMS)
    assert_close(H @ v, flat_hessian(PARAMS) @ v, rtol=1e-11)
    assert set(H.unravel(H @ v)) == {"w", "b"}
    assert H.gradient["w"].shape == (2, 3)
    H.update({k: val + 1 for k, val in PARAMS.items()})
    shifted = {k: val + 1 for k, val in PARAMS.items()}
    assert_close(H @ v, flat_hessian(shifted) @ v, rtol=1e-11)


def test_pytree_mismatch_and_errors():
    f = loss(np)
    prep = di.prepare_gradient(f, di.AutoFiniteDiff(), PARAMS)
    with pytest.raises(di.PreparationMismatchError, match="pytree"):
        di.gradient(f, di.AutoFiniteDiff(), {"w": np.ones((2, 3)), "b": np.ones(3)}, prep=prep)
    with pytest.raises(di.InvalidInputError, match="one library"):
        di.gradient(lambda p: 0.0, di.AutoTorch(), {"a": np.ones(2), "b": torch.ones(2)})
    with pytest.raises(di.InvalidInputError, match="out="):
        di.gradient(f, di.AutoFiniteDiff(), PARAMS, out=np.zeros(8))

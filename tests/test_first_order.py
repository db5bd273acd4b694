"""Array types, preparation, out= buffers, contexts and errors of the
first-order operators, with the real engines."""

from __future__ import annotations

import numpy as np
import pytest

import diffinterface as di
jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
pytest.importorskip("autograd")


def f_np(x):
    return np.sum(np.sin(x) * x**2)


def grad_ref(x):
    return np.cos(x) * x**2 + 2 * x * np.sin(x)


def f_jax(x):
    import jax.numpy as jnp

    return jnp.sum(jnp.sin(x) * x**2)


def f_torch(x):
    return torch.sum(torch.sin(x) * x**2)


def f_autograd(x):
    import autograd.numpy as anp

    return anp.sum(anp.sin(x) * x**2)


X = np.array([0.5, -1.0, 2.0, 0.1])


def test_jax_arrays_in_jax_arrays_out():
    import jax.numpy as jnp

    x = jnp.asarray(X)
    for op in (di.gradient, di.jacobian):
        g = op(f_jax, di.AutoJAX(), x)
        assert isinstance(g, jax.Array) and g.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(g), grad_ref(X), rtol=1e-12)
    y, t = di.value_and_pushforward(lambda x: jnp.sin(x), di.AutoJAX(), x, jnp.ones(4))
    assert isinstance(y, jax.Array) and isinstance(t, jax.Array)


def test_torch_tensors_in_torch_tensors_out():
    x = torch.tensor(X, dtype=torch.float64)
    for backend in (di.AutoTorch(), di.AutoTorch(mode="forward")):
        g = di.gradient(f_torch, backend, x)
        assert isinstance(g, torch.Tensor) and g.dtype == torch.float64 and g.device == x.device
        np.testing.assert_allclose(g.numpy(), grad_ref(X), rtol=1e-12)
    x32 = x.float()
    g32 = di.gradient(f_torch, di.AutoTorch(), x32)
    assert g32.dtype == torch.float32


def test_numpy_in_numpy_out_for_every_native_engine():
    for f, backend in [(f_jax, di.AutoJAX()), (f_torch, di.AutoTorch()), (f_autograd, di.AutoAutograd())]:
        g = di.gradient(f, backend, X)
        assert type(g) is np.ndarray and g.dtype == np.float64
        np.testing.assert_allclose(g, grad_ref(X), rtol=1e-12)


def test_python_float_in_python_float_out():
    for f, backend in [(lambda x: x**3, di.AutoFiniteDiff(method="complex")),
                       (lambda x: x**3, di.AutoAutograd()), (lambda x: x**3, di.AutoJAX())]:
        d = di.derivative(f, backend, 2.0)
        assert type(d) is float and abs(d - 12.0) < 1e-10


def test_float64_is_not_lowered_when_jax_x64_is_off():
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", False)
    try:
        x = np.array([1.0 + 1e-12, 2.0])
        f = lambda x: jnp.sum(x**2)
        prep = di.prepare_gradient(f, di.AutoJAX(), x)
        g = di.gradient(f, di.AutoJAX(), x, prep=prep)
        assert g.dtype == np.float64
        assert g[0] == 2 * (1.0 + 1e-12)  # float32 would round this to 2.0
        assert jax.config.jax_enable_x64 is False  # the user's flag is untouched
    finally:
        jax.config.update("jax_enable_x64", True)


def test_mutating_x_after_prepare_changes_nothing(backend):
    from diffinterface.testing import namespace_for

    ns = namespace_for(backend)
    f = lambda x: ns.xp.sum(ns.xp.sin(x) * x**2)
    x = X.copy()
    prep = di.prepare_gradient(f, backend, x)
    x2 = X + 0.25
    before = di.gradient(f, backend, x2, prep=prep)
    x[:] = 1e6  # the caller reuses its buffer
    after = di.gradient(f, backend, x2, prep=prep)
    np.testing.assert_array_equal(before, after)
    np.testing.assert_allclose(after, grad_ref(x2), rtol=1e-5)


def test_torch_mutating_tensor_after_prepare():
    x = torch.tensor(X)
    prep = di.prepare_jacobian(torch.sin, di.AutoTorch(), x)
    x2 = torch.tensor(X + 1)
    before = di.jacobian(torch.sin, di.AutoTorch(), x2, prep=prep)
    x.fill_(3.0)
    after = di.jacobian(torch.sin, di.AutoTorch(), x2, prep=prep)
    assert torch.equal(before, after)


def test_out_buffer_is_written_in_place():
    out = np.zeros(4)
    returned = di.gradient(f_np, di.AutoFiniteDiff(method="complex"), X, out=out)
    assert returned is out
    np.testing.assert_allclose(out, grad_ref(X), rtol=1e-12)
    tout = torch.zeros(4, dtype=torch.float64)
    r = di.gradient(f_torch, di.AutoTorch(), torch.tensor(X), out=tout)
    assert r is tout and np.allclose(tout.numpy(), grad_ref(X))
    with pytest.raises(di.InvalidInputError, match="out has shape"):
        di.gradient(f_np, di.AutoFiniteDiff(), X, out=np.zeros(3))


def test_batched_pushforward_uses_one_vmapped_call():
    import jax.numpy as jnp

    traces = []

    def f(x):
        traces.append(1)
        return jnp.sin(x) * 2.0

    tangents = tuple(np.eye(4))
    prep = di.prepare_pushforward(f, di.AutoJAX(), X, tangents)
    n_traces = len(traces)
    result = di.pushforward(f, di.AutoJAX(), X + 1, tangents, prep=prep)
    assert len(traces) == n_traces  # no retrace for a new point
    assert isinstance(result, tuple) and len(result) == 4
    np.testing.assert_allclose(np.stack(result), np.diag(2 * np.cos(X + 1)), rtol=1e-12)


def test_constant_context_takes_new_values_without_retracing():
    import jax.numpy as jnp

    traces = []

    def loss(w, data):
        traces.append(1)
        return jnp.sum((data @ w) ** 2)

    a1, a2 = np.arange(8.0).reshape(2, 4), np.ones((2, 4))
    prep = di.prepare_gradient(loss, di.AutoJAX(), X, di.Constant(a1))
    count = len(traces)
    g1 = di.gradient(loss, di.AutoJAX(), X, di.Constant(a1), prep=prep)
    g2 = di.gradient(loss, di.AutoJAX(), X, di.Constant(a2), prep=prep)
    assert len(traces) == count
    np.testing.assert_allclose(g1, 2 * a1.T @ (a1 @ X), rtol=1e-12)
    np.testing.assert_allclose(g2, 2 * a2.T @ (a2 @ X), rtol=1e-12)


# --- preparation mismatches -------------------------------------------------

def test_mismatch_names_every_differing_argument():
    prep = di.prepare_gradient(f_np, di.AutoFiniteDiff(), X)
    with pytest.raises(di.PreparationMismatchError) as info:
        di.gradient(lambda x: f_np(x), di.AutoFiniteDiff(method="forward"), X[:3].astype(np.float32), prep=prep)
    message = str(info.value)
    for word in ("f:", "backend:", "x:", "shape (3,)", "float32"):
        assert word in message, message
    with pytest.raises(di.PreparationMismatchError, match="contexts"):
        di.gradient(f_np, di.AutoFiniteDiff(), X, di.Constant(1.0), prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="operator"):
        di.jacobian(f_np, di.AutoFiniteDiff(), X, prep=prep)


def test_mismatch_on_batch_size():
    prep = di.prepare_pushforward(np.sin, di.AutoFiniteDiff(), X, X)
    with pytest.raises(di.PreparationMismatchError, match="tx"):
        di.pushforward(np.sin, di.AutoFiniteDiff(), X, (X, X), prep=prep)


# --- errors -------------------------------------------------------------------

def test_gradient_of_non_scalar_function(backend):
    from diffinterface.testing import namespace_for

    ns = namespace_for(backend)
    with pytest.raises(di.InvalidInputError, match="scalar-valued f.*jacobian"):
        di.gradient(lambda x: ns.xp.sin(x), backend, X)


def test_derivative_needs_scalar_x():
    with pytest.raises(di.InvalidInputError, match="derivative needs a scalar x"):
        di.derivative(np.sin, di.AutoFiniteDiff(), X)


def test_tangent_of_wrong_shape():
    with pytest.raises(di.InvalidInputError, match=r"tx has shape \(3,\).*\(4,\)"):
        di.pushforward(np.sin, di.AutoFiniteDiff(), X, np.ones(3))
    with pytest.raises(di.InvalidInputError, match=r"ty\[1\] has shape"):
        di.pullback(np.sin, di.AutoFiniteDiff(), X, (np.ones(4), np.ones(2)))


def test_integer_x_is_refused():
    with pytest.raises(di.InvalidInputError, match="floating"):
        di.gradient(f_np, di.AutoFiniteDiff(), np.arange(3))
    with pytest.raises(di.InvalidInputError, match="integer"):
        di.derivative(lambda x: x**2, di.AutoFiniteDiff(), 3)


def test_jax_function_under_torch():
    with pytest.raises(di.WrongEngineError, match="AutoJAX"):
        di.gradient(f_jax, di.AutoTorch(), X)


def test_torch_function_under_jax():
    with pytest.raises(di.WrongEngineError, match="AutoTorch"):
        di.gradient(f_torch, di.AutoJAX(), X)


def test_numpy_function_under_jax():
    with pytest.raises(di.WrongEngineError, match="jax.numpy"):
        di.gradient(f_np, di.AutoJAX(), X)


def test_numpy_that_autograd_cannot_trace_is_refused_not_zero():
    # autograd >= 1.9 traces plain numpy ufuncs; what it cannot trace must fail loudly
    np.testing.assert_allclose(di.gradient(f_np, di.AutoAutograd(), X), grad_ref(X), rtol=1e-12)
    with pytest.raises(di.WrongEngineError, match="AutoFiniteDiff"):
        di.gradient(lambda x: float(x[0]) ** 2, di.AutoAutograd(), X)
    with pytest.raises(di.WrongEngineError, match="AutoFiniteDiff"):
        di.gradient(lambda x: np.sum(np.asarray(x, dtype=float) ** 2), di.AutoAutograd(), X)
    # a function that really is constant is fine: its gradient is zero
    np.testing.assert_array_equal(di.gradient(lambda x: 3.0, di.AutoAutograd(), X), np.zeros(4))


def test_native_array_of_another_engine():
    import jax.numpy as jnp

    with pytest.raises(di.InvalidInputError, match="AutoTorch"):
        di.gradient(f_jax, di.AutoJAX(), torch.tensor(X))
    with pytest.raises(di.InvalidInputError, match="AutoJAX"):
        di.gradient(f_torch, di.AutoTorch(), jnp.asarray(X))
    with pytest.raises(di.InvalidInputError, match="AutoTorch"):
        di.gradient(f_np, di.AutoFiniteDiff(), torch.tensor(X))


def test_engine_not_installed_names_the_extra(monkeypatch):
    from diffinterface import backends

    monkeypatch.setitem(backends.ENGINE_PACKAGES, "jax",
                        ("diffinterface.backends._jax", "jax_not_installed_pkg", "jax"))
    with pytest.raises(di.EngineNotInstalledError, match=r"pip install 'diffinterface\[jax\]'"):
        di.gradient(f_jax, di.AutoJAX(), X)


def test_engine_without_a_primitive_names_one_that_has_it():
    from diffinterface.backends import Engine, Example

    with pytest.raises(di.UnsupportedOperationError, match="AutoJAX"):
        Engine(None).build_pushforward(f_np, Example((2,), np.float64, (), np.float64), False)


def test_bad_backend_and_bad_context():
    with pytest.raises(di.InvalidInputError, match="backend must be"):
        di.gradient(f_np, "jax", X)
    with pytest.raises(di.InvalidInputError, match="di.Constant"):
        di.gradient(lambda x, a: np.sum(a * x), di.AutoFiniteDiff(), X, 2.0)
    with pytest.raises(di.InvalidInputError, match="mode"):
        di.AutoJAX(mode="sideways")


def test_backends_are_hashable_frozen_and_readable():
    assert hash(di.AutoJAX()) == hash(di.AutoJAX())
    assert repr(di.AutoTorch(mode="forward")) == "AutoTorch(mode='forward')"
    with pytest.raises(Exception):
        di.AutoJAX().mode = "forward"

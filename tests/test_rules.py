"""Custom derivative rules (diffinterface.rules): one declaration, every engine."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import diffinterface as di
from diffinterface._errors import UnsupportedOperationError
from diffinterface.rules import custom_rule

HAS = {name: importlib.util.find_spec(name) is not None for name in ("jax", "torch", "autograd")}
needs = {name: pytest.mark.skipif(not ok, reason=f"{name} not installed") for name, ok in HAS.items()}
ROOT = pathlib.Path(__file__).resolve().parents[1]


# --- rules under test ----------------------------------------------------------
@custom_rule
def sumsq(x):
    return np.sum(x * x)


sumsq.def_jvp(lambda primals, tangents: 2 * np.sum(primals[0] * tangents[0]))
sumsq.def_vjp(lambda primals, out, ybar: (2 * primals[0] * ybar,))


@custom_rule
def cube(x):  # elementwise x^3, reverse rule only: its JVP is derived (n <= derive_limit)
    return x**3


cube.def_vjp(lambda primals, out, ybar: (3 * primals[0] ** 2 * ybar,))
cube.def_sparsity(lambda shape: sp.eye(int(np.prod(shape)), dtype=bool))


@custom_rule
def expo(x):  # elementwise exp, forward rule only: its VJP is derived
    return np.exp(x)


expo.def_jvp(lambda primals, tangents: np.exp(primals[0]) * tangents[0])


@custom_rule
def mul(a, b):  # two arguments
    return a * b


mul.def_jvp(lambda p, t: t[0] * p[1] + p[0] * t[1])
mul.def_vjp(lambda p, out, g: (g * p[1], g * p[0]))


def _xp(backend):
    """The array namespace f is written with for ``backend``."""
    name = type(backend).__name__
    if name == "AutoJAX":
        import jax.numpy as xp
    elif name == "AutoTorch":
        import torch as xp
    elif name == "AutoAutograd":
        import autograd.numpy as xp
    else:
        xp = np
    return xp


def _backends():
    out = [di.AutoFiniteDiff()]
    if HAS["jax"]:
        out += [di.AutoJAX(), di.AutoJAX(mode="forward")]
    if HAS["torch"]:
        out += [di.AutoTorch(), di.AutoTorch(mode="forward")]
    if HAS["autograd"]:
        out += [di.AutoAutograd()]
    return out


BACKENDS = _backends()
ids = lambda b: repr(b).replace(" ", "")  # noqa: E731
AD_BACKENDS = [b for b in BACKENDS if not isinstance(b, di.AutoFiniteDiff)]
# second-order operators use the backend's default pair, the same for both modes
SECOND_ORDER = [b for b in BACKENDS if getattr(b, "mode", "reverse") == "reverse" or isinstance(b, di.AutoFiniteDiff)]
X = np.array([0.3, -1.2, 0.8, 2.0])
V = np.array([1.0, 0.5, -2.0, 0.25])


def _tol(backend):
    return dict(rtol=1e-6, atol=1e-7) if isinstance(backend, di.AutoFiniteDiff) else dict(rtol=1e-10, atol=1e-12)


# --- first order through every engine -----------------------------------------
@pytest.mark.parametrize("backend", BACKENDS, ids=ids)
def test_gradient_pushforward_pullback(backend):
    xp = _xp(backend)
    f = lambda x: sumsq(xp.sin(x))  # noqa: E731
    g = np.cos(X) * 2 * np.sin(X)
    np.testing.assert_allclose(np.asarray(di.gradient(f, backend, X)), g, **_tol(backend))
    np.testing.assert_allclose(np.asarray(di.pushforward(f, backend, X, V)), g @ V, **_tol(backend))
    np.testing.assert_allclose(np.asarray(di.pullback(f, backend, X, 2.0)), 2 * g, **_tol(backend))


@pytest.mark.parametrize("backend", BACKENDS, ids=ids)
def test_jacobian_two_arguments_and_derived_rules(backend):
    xp = _xp(backend)
    f = lambda x: mul(x, xp.sin(x)) + cube(x) + expo(x)  # noqa: E731
    jac = np.diag(np.sin(X) + X * np.cos(X) + 3 * X**2 + np.exp(X))
    np.testing.assert_allclose(np.asarray(di.jacobian(f, backend, X)), jac, **_tol(backend))
    ty = di.pushforward(f, backend, X, (V, 2 * V))  # a batch of tangents
    np.testing.assert_allclose(np.stack([np.asarray(t) for t in ty]), np.stack([jac @ V, 2 * jac @ V]),
                               **_tol(backend))
    xs = di.pullback(f, backend, X, (V, -V))
    np.testing.assert_allclose(np.stack([np.asarray(t) for t in xs]), np.stack([jac @ V, -jac @ V]),
                               **_tol(backend))


@pytest.mark.parametrize("backend", SECOND_ORDER, ids=ids)
def test_hvp_and_hessian(backend):
    xp = _xp(backend)
    f = lambda x: sumsq(xp.sin(x)) + xp.sum(mul(x, x) * x)  # noqa: E731
    # d2/dx2 [sin^2 x + x^3] = 2 cos 2x + 6x
    h = np.diag(2 * np.cos(2 * X) + 6 * X)
    tol = dict(rtol=1e-4, atol=1e-5) if isinstance(backend, di.AutoFiniteDiff) else dict(rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(di.hvp(f, backend, X, V)), h @ V, **tol)
    np.testing.assert_allclose(np.asarray(di.hessian(f, backend, X)), h, **tol)


@custom_rule
def quartic(x):  # sum x^4, with a declared HVP (used instead of differences)
    return np.sum(x**4)


quartic.def_vjp(lambda p, out, g: (4 * p[0] ** 3 * g,))
quartic.calls = []
quartic.def_hvp(lambda p, t, g: (quartic.calls.append(1) or 12 * p[0] ** 2 * t[0] * g,))


@pytest.mark.parametrize("backend", [b for b in SECOND_ORDER if b in AD_BACKENDS], ids=ids)
def test_declared_hvp(backend):
    quartic.calls.clear()
    hv = np.asarray(di.hvp(quartic, backend, X, V))
    np.testing.assert_allclose(hv, 12 * X**2 * V, rtol=1e-12)
    assert quartic.calls


# --- vmap / batching through the JAX and torch paths ---------------------------------
@needs["jax"]
def test_jax_vmap_jit_and_forward_over_reverse():
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(X)
    f = lambda z: sumsq(jnp.sin(z))  # noqa: E731
    tangents = jnp.eye(4)
    jvps = jax.vmap(lambda t: jax.jvp(f, (x,), (t,))[1])(tangents)
    g = np.cos(X) * 2 * np.sin(X)
    np.testing.assert_allclose(np.asarray(jvps), g, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.vmap(f)(jnp.stack([x, 2 * x]))),
                               [np.sum(np.sin(X) ** 2), np.sum(np.sin(2 * X) ** 2)], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(f))(x)), g, rtol=1e-12)
    hv = jax.jvp(jax.grad(f), (x,), (jnp.asarray(V),))[1]
    np.testing.assert_allclose(np.asarray(hv), 2 * np.cos(2 * X) * V, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.vmap(jax.grad(f))(jnp.stack([x, x]))), np.stack([g, g]), rtol=1e-12)


@needs["torch"]
def test_torch_func_transforms():
    import torch
    from torch.func import grad, jacfwd, jacrev, jvp, vmap

    x = torch.tensor(X)
    f = lambda z: sumsq(torch.sin(z))  # noqa: E731
    g = np.cos(X) * 2 * np.sin(X)
    jvps = vmap(lambda t: jvp(f, (x,), (t,))[1])(torch.eye(4, dtype=torch.float64))
    np.testing.assert_allclose(jvps.numpy(), g, rtol=1e-12)
    np.testing.assert_allclose(vmap(f)(torch.stack([x, 2 * x])).numpy(),
                               [np.sum(np.sin(X) ** 2), np.sum(np.sin(2 * X) ** 2)], rtol=1e-12)
    np.testing.assert_allclose(grad(f)(x).numpy(), g, rtol=1e-12)
    h = np.diag(2 * np.cos(2 * X))
    np.testing.assert_allclose(jacfwd(grad(f))(x).numpy(), h, atol=1e-6)
    np.testing.assert_allclose(jacrev(jacrev(f))(x).numpy(), h, atol=1e-6)
    # batched pushforward of a vector function
    fv = lambda z: mul(z, torch.sin(z))  # noqa: E731
    out = vmap(lambda t: jvp(fv, (x,), (t,))[1])(torch.eye(4, dtype=torch.float64))
    np.testing.assert_allclose(out.numpy(), np.diag(np.sin(X) + X * np.cos(X)), rtol=1e-12)


@needs["torch"]
def test_torch_forward_mode_and_dtype_device():
    import torch

    x = torch.tensor(X, dtype=torch.float32)
    y = sumsq(x)
    assert y.dtype == torch.float32 and y.device == x.device
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(x, torch.ones_like(x))
        t = torch.autograd.forward_ad.unpack_dual(sumsq(dual)).tangent
    np.testing.assert_allclose(float(t), 2 * X.sum(), rtol=1e-5)


# --- mutation safety ---------------------------------------------------------------
@needs["torch"]
def test_mutation_after_the_call_torch():
    import torch

    def f(x):
        z = x.clone()  # overwriting a leaf that requires grad is an error in torch itself
        s = sumsq(z)
        z.mul_(0.0)
        z[0] = 5.0
        return s

    for backend in (di.AutoTorch(), di.AutoTorch(mode="forward")):
        np.testing.assert_allclose(np.asarray(di.gradient(f, backend, X.copy())), 2 * X, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(di.hvp(f, di.AutoTorch(), X.copy(), V)), 2 * V, rtol=1e-6)


def test_mutation_after_the_call_numpy():
    def f(x):
        z = np.array(x, dtype=float)  # a working buffer the code reuses
        s = sumsq(z)
        z[:] = 0.0
        return s

    np.testing.assert_allclose(di.gradient(f, di.AutoFiniteDiff(), X.copy()), 2 * X, rtol=1e-6)
    # the rules themselves get snapshots: a rule that overwrites its inputs harms nobody
    x = X.copy()
    assert sumsq.vjp([x], sumsq(x), 1.0)[0] is not x


@needs["jax"]
def test_rules_get_writable_snapshots_jax():
    import jax.numpy as jnp

    @custom_rule
    def clobber(x):
        y = np.sum(x * x)
        x[:] = 0.0  # the primal overwrites its own input: it only sees a copy
        return y

    @clobber.def_vjp
    def _(primals, out, g):
        (x,) = primals
        grad = 2 * x * g
        x[:] = -1.0
        return (grad,)

    import jax

    np.testing.assert_allclose(np.asarray(jax.grad(clobber)(jnp.asarray(X))), 2 * X, rtol=1e-12)


# --- sparsity detection --------------------------------------------------------------
@custom_rule
def shift_product(x):  # y_i = x_i * x_{i+1}
    return x[:-1] * x[1:]


shift_product.def_jvp(lambda p, t: t[0][:-1] * p[0][1:] + p[0][:-1] * t[0][1:])


def _bidiagonal(shape):
    n = int(np.prod(shape))
    return sp.eye(n - 1, n, dtype=bool) + sp.eye(n - 1, n, k=1, dtype=bool)


shift_product.def_sparsity(_bidiagonal)


def _frontends():
    out = [("numpy", np, lambda x: x)]
    if HAS["jax"]:
        import jax.numpy as jnp

        out.append(("jax", jnp, jnp.asarray))
    if HAS["torch"]:
        import torch

        out.append(("torch", torch, torch.as_tensor))
    return out


@pytest.mark.parametrize("frontend", _frontends(), ids=lambda f: f[0])
def test_sparsity_declared_pattern(frontend):
    _, xp, arr = frontend
    x = arr(np.arange(1.0, 7.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a declared pattern
        jac = di.jacobian_sparsity(lambda z: shift_product(xp.sin(z)), x)
        hess = di.hessian_sparsity(lambda z: xp.sum(shift_product(z)), x)
        diag = di.jacobian_sparsity(lambda z: cube(z) * 2.0, x)
    np.testing.assert_array_equal(jac.toarray(), _bidiagonal((6,)).toarray())
    expected_h = np.zeros((6, 6), bool)
    for i in range(5):
        expected_h[i:i + 2, i:i + 2] = True
    np.testing.assert_array_equal(hess.toarray(), expected_h)
    np.testing.assert_array_equal(diag.toarray(), np.eye(6, dtype=bool))


@pytest.mark.parametrize("frontend", _frontends(), ids=lambda f: f[0])
def test_sparsity_undeclared_is_dense_with_warning(frontend):
    _, xp, arr = frontend
    x = arr(np.arange(1.0, 5.0))
    with pytest.warns(di.UnknownOperationWarning, match="def_sparsity"):
        jac = di.jacobian_sparsity(lambda z: expo(z), x)
    assert jac.toarray().all()


def test_sparsity_multi_argument_conventions():
    @custom_rule
    def add_scaled(a, b):
        return a + 2 * b

    x = np.arange(1.0, 5.0)
    blocks = (sp.eye(4, dtype=bool), sp.eye(4, dtype=bool))
    add_scaled.def_sparsity(blocks, linear=True)
    f = lambda z: add_scaled(z, z[::-1])  # noqa: E731
    expected = np.eye(4, dtype=bool) | np.eye(4, dtype=bool)[::-1]
    np.testing.assert_array_equal(di.jacobian_sparsity(f, x).toarray(), expected)
    add_scaled.def_sparsity(sp.hstack(blocks), linear=True)  # blocks side by side
    np.testing.assert_array_equal(di.jacobian_sparsity(f, x).toarray(), expected)
    assert di.hessian_sparsity(lambda z: np.sum(add_scaled(z, z)), x).nnz == 0  # linear
    add_scaled.def_sparsity(np.ones((4, 3), bool))
    with pytest.raises(di.InvalidInputError, match="columns"):
        di.jacobian_sparsity(f, x)


# --- errors ----------------------------------------------------------------------
@pytest.mark.parametrize("backend", AD_BACKENDS, ids=ids)
def test_missing_rules(backend):
    @custom_rule
    def bare(x):
        return np.sum(np.sin(x))

    with pytest.raises(UnsupportedOperationError, match="def_jvp.*def_vjp"):
        di.gradient(bare, backend, X)
    np.testing.assert_allclose(di.gradient(bare, di.AutoFiniteDiff(), X), np.cos(X), rtol=1e-8)


@pytest.mark.parametrize("backend", AD_BACKENDS, ids=ids)
def test_derivation_limit(backend):
    @custom_rule(derive_limit=3)
    def forward_only(x):
        return np.sum(x**2)

    forward_only.def_jvp(lambda p, t: 2 * np.sum(p[0] * t[0]))
    reverse_needed = not (type(backend).__name__ in ("AutoJAX", "AutoTorch") and backend.mode == "forward")
    if reverse_needed:
        with pytest.raises(UnsupportedOperationError, match="def_vjp"):
            di.gradient(forward_only, backend, X)  # 4 inputs > derive_limit
    else:
        np.testing.assert_allclose(np.asarray(di.gradient(forward_only, backend, X)), 2 * X, rtol=1e-12)


def test_plain_numpy_and_lazy_imports():
    assert sumsq(X) == np.sum(X * X)
    assert "custom_rule(sumsq" in repr(sumsq)
    code = ("import sys, numpy as np; import diffinterface.rules as r; "
            "f = r.custom_rule(lambda x: np.sum(x)); f(np.ones(3)); "
            "print(any(m in sys.modules for m in ('jax', 'torch', 'autograd')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the ODE example: solve_ivp with its adjoint -------------------------------------
def _ode():
    spec = importlib.util.spec_from_file_location("custom_rule_ode", ROOT / "examples" / "custom_rule_ode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ODE = _ode()
P = np.array([1.3, 2.0, 0.4])


@pytest.mark.parametrize("backend", BACKENDS, ids=ids)
def test_ode_gradient_matches_finite_differences(backend):
    reference = di.gradient(ODE.final_state, di.AutoFiniteDiff(), P)
    np.testing.assert_allclose(reference, ODE.exact_gradient(P), rtol=1e-6)
    g = np.asarray(di.gradient(ODE.final_state, backend, P))
    np.testing.assert_allclose(g, reference, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", [b for b in AD_BACKENDS if type(b).__name__ in ("AutoJAX", "AutoTorch")
                                     and b.mode == "reverse"], ids=ids)
def test_ode_hvp_matches_differences_of_the_gradient(backend):
    v = np.array([1.0, -0.5, 0.25])
    h = 1e-4
    grad = lambda p: ODE.exact_gradient(p)  # noqa: E731
    reference = (grad(P + h * v) - grad(P - h * v)) / (2 * h)
    np.testing.assert_allclose(np.asarray(di.hvp(ODE.final_state, backend, P, v)), reference, rtol=1e-5)


def _pairs():
    out = [di.SecondOrder(di.AutoFiniteDiff(), di.AutoFiniteDiff())]
    if HAS["jax"]:
        out += [di.SecondOrder(di.AutoJAX(), di.AutoJAX()), di.SecondOrder(di.AutoJAX(mode="forward"), di.AutoJAX())]
    if HAS["torch"]:
        out += [di.SecondOrder(di.AutoTorch(mode="forward"), di.AutoTorch()),
                di.SecondOrder(di.AutoTorch(), di.AutoTorch(mode="forward"))]
    if HAS["autograd"]:
        out += [di.SecondOrder(di.AutoFiniteDiff(), di.AutoAutograd())]
    return out


@pytest.mark.parametrize("pair", _pairs(), ids=ids)
def test_second_order_pairs(pair):
    inner = pair.inner
    xp = _xp(inner)
    f = lambda x: sumsq(xp.sin(x)) + xp.sum(mul(x, x) * x)  # noqa: E731
    h = np.diag(2 * np.cos(2 * X) + 6 * X)
    fd = isinstance(pair.outer, di.AutoFiniteDiff)
    tol = dict(rtol=1e-4, atol=1e-5) if fd else dict(rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(di.hvp(f, pair, X, V)), h @ V, **tol)
    np.testing.assert_allclose(np.asarray(di.hessian(f, pair, X)), h, **tol)


@needs["jax"]
def test_third_order_is_refused_jax():
    import jax

    f = lambda z: sumsq(jax.numpy.sin(z))  # noqa: E731
    with pytest.raises(UnsupportedOperationError, match="third-order"):
        jax.jacfwd(jax.jacfwd(jax.grad(f)))(jax.numpy.asarray(X))

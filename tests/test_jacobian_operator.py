"""The Jacobian and Gauss-Newton operators: products and blocks against the
closed-form Jacobian for every engine and shape, update without retracing,
own copy of x, native arrays, SciPy LinearOperator, errors, and the
check_linear_operators report."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator, lsmr

import diffinterface as di
import diffinterface.jacobian_operators as jo
from diffinterface.gauss_newton import GaussNewtonOperator, gauss_newton_operator
from diffinterface.jacobian_operators import JacobianOperator, jacobian_operator
from diffinterface.testing._check_operators import check_linear_operators

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
anp = pytest.importorskip("autograd.numpy")
import jax.numpy as jnp  # noqa: E402

ENGINES = {
    "jax": (di.AutoJAX(), jnp, np.asarray),
    "torch": (di.AutoTorch(), torch, torch.as_tensor),
    "autograd": (di.AutoAutograd(), anp, np.asarray),
    "finite_diff": (di.AutoFiniteDiff(), np, np.asarray),
}
RTOL = {"finite_diff": 1e-6}

# (x shape, y shape): m < n, m = n, m > n, n-d x, n-d y, both n-d
SHAPES = [((5,), (3,)), ((4,), (4,)), ((3,), (6,)), ((2, 3), (4,)), ((4,), (2, 3)), ((2, 2), (3, 2))]


def problem(x_shape, y_shape):
    """f(x) = sin(A x) * |x|² + x₀ (flat x), reshaped, and its dense Jacobian."""
    n, m = int(np.prod(x_shape)), int(np.prod(y_shape))
    A = np.random.default_rng(n * 10 + m).normal(size=(m, n))

    def make(xp, asarray):
        a = asarray(A)

        def f(x):
            z = xp.reshape(x, (-1,))
            return xp.reshape(xp.sin(a @ z) * xp.sum(z * z) + z[0], y_shape)

        return f

    def jac(x):
        z = np.reshape(x, -1)
        s = A @ z
        out = np.cos(s)[:, None] * A * np.sum(z * z) + np.sin(s)[:, None] * 2 * z[None, :]
        out[:, 0] += 1.0
        return out

    return make, jac


def close(actual, expected, rtol):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape
    err = np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300)
    assert err <= rtol, f"relative error {err:.2e} > {rtol:.0e}"


@pytest.fixture
def measure_all(monkeypatch):
    """Measure every strategy even on tiny problems (exercises the choice and switch)."""
    monkeypatch.setattr(jo, "MEASURE_ABOVE_S", 0.0)


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}->{s[1]}")
@pytest.mark.parametrize("engine", list(ENGINES))
def test_products_blocks_and_gauss_newton_match_dense(engine, shapes):
    backend, xp, asarray = ENGINES[engine]
    rtol = RTOL.get(engine, 1e-12)
    make, jac = problem(*shapes)
    f = make(xp, asarray)
    rng = np.random.default_rng(3)
    x0, x1 = rng.normal(size=shapes[0]), rng.normal(size=shapes[0])
    J = jacobian_operator(f, backend, x0)
    G = gauss_newton_operator(f, backend, x0, damping=0.25)
    m, n = J.shape
    assert (m, n) == (int(np.prod(shapes[1])), int(np.prod(shapes[0]))) and J.dtype == np.float64
    assert G.shape == (n, n)
    for x in (x0, x1):
        if x is x1:
            assert J.update(x1) is J and G.update(x1) is G
        R = jac(x)
        v, w = rng.normal(size=n), rng.normal(size=m)
        V, W = rng.normal(size=(n, 3)), rng.normal(size=(m, 3))
        close(J @ v, R @ v, rtol)
        close(J.T @ w, R.T @ w, rtol)
        close(w @ J, w @ R, rtol)
        close(J @ V, R @ V, rtol)
        close(J.T @ W, R.T @ W, rtol)
        close(W.T @ J, W.T @ R, rtol)
        close(G @ v, R.T @ (R @ v) + 0.25 * v, rtol)
        close(G @ V, R.T @ (R @ V) + 0.25 * V, rtol)
        y = np.reshape(f(x) if engine not in ("torch",) else f(torch.as_tensor(x)).numpy(), -1)
        close(np.reshape(J.value, -1), np.asarray(y), 1e-14)
        assert np.shape(J.value) == shapes[1]
        close(G.value, 0.5 * np.sum(y**2), 1e-14)
        close(G.gradient, (R.T @ y).reshape(shapes[0]), rtol)
        close(J.todense(), R, rtol)


@pytest.mark.parametrize("engine", ["jax", "torch", "autograd"])
def test_every_strategy_agrees_and_switches(engine, measure_all):
    backend, xp, asarray = ENGINES[engine]
    make, jac = problem((6,), (4,))
    f = make(xp, asarray)
    rng = np.random.default_rng(4)
    J = jacobian_operator(f, backend, rng.normal(size=6))
    assert J._costs is not None and len(J._costs) == len(J._strategies) >= 2
    for index, strategy in enumerate(J._strategies):  # each strategy on its own
        x = rng.normal(size=6)
        state = strategy.setup(J._engine.to_native(x), ())
        t, c = J._engine.to_native(np.ones(6)), J._engine.to_native(np.ones(4))
        close(np.asarray(strategy.jvp(state, t, False)), jac(x) @ np.ones(6), 1e-12)
        close(np.asarray(strategy.vjp(state, c, False)), jac(x).T @ np.ones(4), 1e-12)
    for m in (1, 40, 1, 40):  # the choice follows the products taken per point
        x = rng.normal(size=6)
        J.update(x)
        for _ in range(m):
            v, w = rng.normal(size=6), rng.normal(size=4)
            close(J @ v, jac(x) @ v, 1e-12)
            close(J.T @ w, jac(x).T @ w, 1e-12)
    assert J.strategy in {s.name for s in J._strategies}


@pytest.mark.parametrize("engine", ["jax", "torch", "autograd"])
def test_solver_loop_choice_switch_and_memo(engine, measure_all):
    """Native 1-d vectors (the solver-loop hot path; NumPy for autograd): with fixed costs, a point expecting
    one product of each kind takes the set-up-free strategy, switches by rent-or-buy at
    the 8th product, and the next point starts with the other; memoized answers are
    dropped when a block measurement changes the costs; J @ v, J.T @ w and G @ v agree
    with the closed form throughout."""
    backend, xp, asarray = ENGINES[engine]
    make, jac = problem((6,), (6,))
    f = make(xp, asarray)
    asarray = jnp.asarray if engine == "jax" else asarray  # the engine's own vectors
    rng = np.random.default_rng(6)
    J = jacobian_operator(f, backend, asarray(rng.normal(size=6)))
    G = gauss_newton_operator(f, backend, asarray(rng.normal(size=6)))
    assert J._vectors_native
    costs = [(0.0, 0.0, 0.0, 1.0, 1.0), (5.0, 0.0, 0.0, 0.1, 0.1)]  # (set-up, preps, JVP, VJP)
    costs += [(9.0, 0.0, 0.0, 9.0, 9.0)] * (len(J._strategies) - 2)  # torch's recompute: never chosen
    J._shared["costs"] = costs
    seen = []
    for products in (2, 20, 2):
        x = rng.normal(size=6)
        J.update(asarray(x))
        G.update(asarray(x))
        strategies = []
        for i in range(products):
            v = rng.normal(size=6)
            out = J @ asarray(v) if i % 2 == 0 else J.T @ asarray(v)
            close(out, (jac(x) if i % 2 == 0 else jac(x).T) @ v, 1e-12)
            close(G @ asarray(v), jac(x).T @ (jac(x) @ v), 1e-12)
            strategies.append(J._strategy)
        seen.append(strategies)
    assert seen[0] == [0, 0]
    assert seen[1] == [0] * 7 + [1] * 13  # 0.9 saved per product pays the set-up of 5 by the 8th
    assert seen[2] == [1, 1]  # the previous point took 20 products
    decisions = J._shared["decisions"]
    assert ("choose", "jvp", ("jvp", 1), ("vjp", 1)) in decisions
    for question in [q for q in decisions if q[0] == "switch"]:
        del decisions[question]
    x = rng.normal(size=6)
    J.update(asarray(x))  # the workload its strategy is chosen for: no rent-or-buy test
    close(J @ asarray(v), jac(x) @ v, 1e-12)
    close(J.T @ asarray(v), jac(x).T @ v, 1e-12)
    assert J._strategy == 0 and not [q for q in decisions if q[0] == "switch"]
    J @ asarray(rng.normal(size=6))  # beyond it (the 3rd product): the test runs again
    J.T @ asarray(rng.normal(size=6))
    assert ("switch", 0, ("jvp", 2), ("vjp", 2)) in decisions
    J @ asarray(rng.normal(size=(6, 3)))  # a block measurement changes the costs ...
    J.update(asarray(rng.normal(size=6)))
    J @ asarray(rng.normal(size=6))  # ... so the next decision starts a fresh memo
    assert ("choose", "jvp", ("jvp", 1), ("vjp", 1)) not in J._shared["decisions"]
    assert set(J._shared["decisions"]) == {"blocks", ("choose", "jvp", ("jvp", 2), ("vjp", 2), (("jvp", 3), 1))}
    if engine == "autograd":  # the hot path hands back plain writable arrays
        out = J.T @ np.ones(6)
        assert type(out) is np.ndarray and out.flags.writeable


def test_update_does_not_retrace_or_recompile(measure_all):
    traces = []
    make, jac = problem((5,), (7,))
    inner = make(jnp, np.asarray)

    def f(x):
        traces.append(1)
        return inner(x)

    rng = np.random.default_rng(5)
    J = jacobian_operator(f, di.AutoJAX(), rng.normal(size=5))
    G = gauss_newton_operator(f, di.AutoJAX(), rng.normal(size=5))

    def workload(check):
        for m in (1, 30, 1, 30):  # both strategies and the switch between them
            x = rng.normal(size=5)
            J.update(x)
            G.update(x)
            for _ in range(m):
                v, w = rng.normal(size=5), rng.normal(size=7)
                a, b, c = J @ v, J.T @ w, G @ v
                if check:
                    close(a, jac(x) @ v, 1e-12)
                    close(b, jac(x).T @ w, 1e-12)
                    close(c, jac(x).T @ (jac(x) @ v), 1e-12)
            J @ rng.normal(size=(5, 3)), J.T @ rng.normal(size=(7, 2)), G @ rng.normal(size=(5, 2))
            J.value, G.value, G.gradient

    workload(False)
    count = len(traces)
    sizes = [fn._cache_size() for s in J._strategies + G.jacobian._strategies
             for fn in vars(s).values() if hasattr(fn, "_cache_size")]
    workload(True)
    assert len(traces) == count
    assert [fn._cache_size() for s in J._strategies + G.jacobian._strategies
            for fn in vars(s).values() if hasattr(fn, "_cache_size")] == sizes


def test_torch_kept_graph_vjps_do_not_rerun_f(monkeypatch):
    monkeypatch.setattr(jo, "MEASURE_ABOVE_S", float("inf"))  # kept_graph alone: no timing, no switch
    calls = []
    make, jac = problem((5,), (3,))
    inner = make(torch, torch.as_tensor)

    def f(x):
        calls.append(1)
        return inner(x)

    x = np.linspace(-1.0, 1.0, 5)
    J = jacobian_operator(f, di.AutoTorch(), x)
    assert J.strategy == "kept_graph"
    J.update(x + 0.5)
    J.value
    before = len(calls)
    for _ in range(5):
        close(J.T @ np.ones(3), jac(x + 0.5).T @ np.ones(3), 1e-12)
    close(J.T @ np.ones((3, 2)), jac(x + 0.5).T @ np.ones((3, 2)), 1e-12)
    assert len(calls) == before


def test_operator_holds_its_own_copy_of_x():
    make, jac = problem((4,), (3,))
    x = np.linspace(-1, 1, 4)
    J = jacobian_operator(make(jnp, np.asarray), di.AutoJAX(), x)
    expected = jac(np.linspace(-1, 1, 4))
    x[:] = 7.0
    close(J @ np.ones(4), expected @ np.ones(4), 1e-12)
    close(J.x, np.linspace(-1, 1, 4), 0)
    t = torch.linspace(-1, 1, 4, dtype=torch.float64)
    Jt = jacobian_operator(make(torch, torch.as_tensor), di.AutoTorch(), t)
    t.fill_(7.0)
    close((Jt.T @ torch.ones(3, dtype=torch.float64)).numpy(), expected.T @ np.ones(3), 1e-12)


def test_native_arrays_stay_native():
    make, _ = problem((4,), (3,))
    J = jacobian_operator(make(jnp, np.asarray), di.AutoJAX(), jnp.ones(4))
    assert isinstance(J @ jnp.ones(4), jax.Array) and isinstance(J.T @ jnp.ones(3), jax.Array)
    assert isinstance(J.value, jax.Array)
    Jt = jacobian_operator(make(torch, torch.as_tensor), di.AutoTorch(), torch.ones(4, dtype=torch.float64))
    for r in (Jt @ torch.ones(4, dtype=torch.float64), Jt.T @ torch.ones(3, dtype=torch.float64),
              torch.ones(3, dtype=torch.float64) @ Jt, Jt @ torch.ones((4, 2), dtype=torch.float64)):
        assert isinstance(r, torch.Tensor) and r.dtype == torch.float64
    G = gauss_newton_operator(make(torch, torch.as_tensor), di.AutoTorch(), torch.ones(4, dtype=torch.float64))
    assert isinstance(G @ torch.ones(4, dtype=torch.float64), torch.Tensor)
    assert isinstance(G.gradient, torch.Tensor)


@pytest.mark.parametrize("engine", ["jax", "torch"])
def test_native_vectors_after_updates_match_the_dense_jacobian(engine):
    """JAX / torch vectors for 1-d x and f(x) take the operator's hot path: same numbers."""
    make, jac = problem((7,), (5,))
    backend, xp, asarray = ENGINES[engine]
    native = jnp.asarray if engine == "jax" else torch.as_tensor
    rng = np.random.default_rng(11)
    J = jacobian_operator(make(xp, asarray), backend, native(rng.normal(size=7)))
    for _ in range(3):
        x, v, w = rng.normal(size=7), rng.normal(size=7), rng.normal(size=5)
        J.update(native(x))
        for _ in range(2):
            close(np.asarray(J @ native(v)), jac(x) @ v, 1e-12)
            close(np.asarray(J.T @ native(w)), jac(x).T @ w, 1e-12)
    assert J.products == {"jvp": 6, "vjp": 6}
    square, square_jac = problem((6,), (6,))  # m == n: G @ v must not take J's vector path
    G = gauss_newton_operator(square(xp, asarray), backend, native(x[:6]))
    v = rng.normal(size=6)
    close(np.asarray(G @ native(v)), square_jac(x[:6]).T @ (square_jac(x[:6]) @ v), 1e-12)


def test_aslinearoperator_and_lsmr():
    make, jac = problem((6,), (9,))
    rng = np.random.default_rng(6)
    x = rng.normal(size=6)
    J = jacobian_operator(make(torch, torch.as_tensor), di.AutoTorch(), x)
    op = J.aslinearoperator()
    assert isinstance(op, LinearOperator) and op.shape == (9, 6)
    v, w, V, W = rng.normal(size=6), rng.normal(size=9), rng.normal(size=(6, 2)), rng.normal(size=(9, 2))
    close(op.matvec(v), jac(x) @ v, 1e-12)
    close(op.rmatvec(w), jac(x).T @ w, 1e-12)
    close(op.matmat(V), jac(x) @ V, 1e-12)
    close(op.rmatmat(W), jac(x).T @ W, 1e-12)
    solution = lsmr(op, w, atol=1e-14, btol=1e-14)[0]
    close(solution, np.linalg.lstsq(jac(x), w, rcond=None)[0], 1e-8)
    G = gauss_newton_operator(make(jnp, np.asarray), di.AutoJAX(), x, damping=1.0).aslinearoperator()
    close(G.matvec(v), jac(x).T @ jac(x) @ v + v, 1e-12)
    close(G.rmatvec(v), jac(x).T @ jac(x) @ v + v, 1e-12)


def test_ravel_unravel_and_transpose_view():
    make, jac = problem((2, 3), (3, 2))
    x = np.random.default_rng(7).normal(size=(2, 3))
    J = jacobian_operator(make(anp, np.asarray), di.AutoAutograd(), x)
    assert J.ravel(x).shape == (6,)
    assert J.unravel(np.arange(6.0), like="x").shape == (2, 3)
    assert J.unravel(np.arange(6.0), like="y").shape == (3, 2)
    with pytest.raises(di.InvalidInputError, match="like='x'"):
        J.unravel(np.arange(5.0))
    assert J.T.shape == (6, 6) and J.T.T is J
    close(J.T.matvec(np.ones(6)), jac(x).T @ np.ones(6), 1e-12)
    close(np.ones(6) @ J.T, jac(x) @ np.ones(6), 1e-12)


@pytest.mark.parametrize("engine", ["jax", "torch", "autograd", "finite_diff"])
def test_generalized_gauss_newton_with_a_loss(engine):
    backend, xp, asarray = ENGINES[engine]
    make, jac = problem((5,), (4,))
    loss = lambda r: xp.sum(xp.sqrt(1.0 + r * r))  # noqa: E731 - pseudo-Huber, convex
    rng = np.random.default_rng(8)
    x, v = rng.normal(size=5), rng.normal(size=5)
    G = gauss_newton_operator(make(xp, asarray), backend, rng.normal(size=5), loss=loss, damping=0.1)
    G.update(x)
    r = np.asarray(make(np, np.asarray)(x))
    hess = np.diag((1.0 + r * r) ** -1.5)
    rtol = 1e-5 if engine == "finite_diff" else 1e-12
    close(G @ v, jac(x).T @ hess @ jac(x) @ v + 0.1 * v, rtol)
    close(G.gradient, jac(x).T @ (r / np.sqrt(1 + r * r)), rtol)
    close(np.asarray(G.value, dtype=float), np.sum(np.sqrt(1 + r * r)), 1e-13)


def test_errors():
    make, _ = problem((4,), (3,))
    J = jacobian_operator(make(np, np.asarray), di.AutoFiniteDiff(), np.ones(4))
    with pytest.raises(di.InvalidInputError, match=r"\(4,\) or a block \(4, k\)"):
        J @ np.ones(3)
    with pytest.raises(di.InvalidInputError, match=r"\(3,\)"):
        J.T @ np.ones(4)
    with pytest.raises(di.PreparationMismatchError, match="x:"):
        J.update(np.ones(5))
    with pytest.raises(di.PreparationMismatchError, match="contexts"):
        J.update(np.ones(4), di.Constant(1.0))
    with pytest.raises(di.UnsupportedOperationError, match=r"AutoSparse\(AutoFiniteDiff"):
        J.tosparse()
    with pytest.raises(di.InvalidInputError, match="loss="):
        gauss_newton_operator(make(np, np.asarray), di.AutoFiniteDiff(), np.ones(4), loss="huber")
    with pytest.raises(di.InvalidInputError, match="damping"):
        gauss_newton_operator(make(np, np.asarray), di.AutoFiniteDiff(), np.ones(4), damping=-1.0)
    with pytest.raises(di.InvalidInputError, match="callable"):
        jacobian_operator(3.0, di.AutoFiniteDiff(), np.ones(4))


def test_contexts_and_repr():
    f = lambda x, a: a * x ** 2  # noqa: E731
    J = jacobian_operator(f, di.AutoFiniteDiff(method="complex"), np.ones(3), di.Constant(2.0))
    close(J @ np.ones(3), 4.0 * np.ones(3), 1e-14)
    J.update(np.ones(3), di.Constant(3.0))
    close(J @ np.ones(3), 6.0 * np.ones(3), 1e-14)
    assert isinstance(J, JacobianOperator) and "JacobianOperator(shape=(3, 3)" in repr(J)
    G = gauss_newton_operator(f, di.AutoFiniteDiff(method="complex"), np.ones(3), di.Constant(2.0))
    assert isinstance(G, GaussNewtonOperator) and "GaussNewtonOperator" in repr(G)
    close(G.todense(), 16.0 * np.eye(3), 1e-14)


@pytest.mark.parametrize("backend", [di.AutoTorch(), di.AutoAutograd(), di.AutoFiniteDiff(method="forward")], ids=repr)
def test_check_linear_operators(backend):  # JAX: covered above (its compiles make this slow)
    rows = check_linear_operators(backend)
    assert len(rows) >= 90
    assert all(status == "ok" for _, _, status, _ in rows), [r for r in rows if r[2] != "ok"]


def banded(xp):
    """r_i = x_i² x_{i+1} - sin(x_{i-1}) (chain), m = n - 2, and its Jacobian."""
    def r(x):
        return x[1:-1] ** 2 * x[2:] - xp.sin(x[:-2])

    def jac(x):
        n = x.size
        out = np.zeros((n - 2, n))
        i = np.arange(n - 2)
        out[i, i] = -np.cos(x[:-2])
        out[i, i + 1] = 2 * x[1:-1] * x[2:]
        out[i, i + 2] = x[1:-1] ** 2
        return out

    return r, jac


@pytest.mark.parametrize("engine", ["jax", "torch", "autograd", "finite_diff"])
def test_tosparse_with_autosparse_matches_dense_and_reuses_its_prep(engine):
    import scipy.sparse as sp

    backend, xp, asarray = ENGINES[engine]
    if engine == "finite_diff":
        backend = di.AutoFiniteDiff(method="complex")
    r, jac = banded(xp)
    rng = np.random.default_rng(9)
    x0, x1 = rng.normal(size=12), rng.normal(size=12)
    J = jacobian_operator(r, di.AutoSparse(backend), x0)
    assert J.sparse_prep is None
    S = J.tosparse()
    assert isinstance(S, sp.csr_array) and S.shape == (10, 12)
    prep = J.sparse_prep
    assert di.ncolors(prep) == 3
    close(S.toarray(), jac(x0), 1e-12)
    close(J @ np.ones(12), jac(x0) @ np.ones(12), 1e-12 if engine != "finite_diff" else 1e-12)
    J.update(x1)
    close(di.to_scipy(J.tosparse()).toarray(), jac(x1), 1e-12)
    assert J.sparse_prep is prep  # prepared once, reused at every point
    close(J.tosparse().toarray(), J.todense(), 1e-12)


def test_tosparse_native_types_and_contexts():
    r, jac = banded(jnp)
    x = np.linspace(-1.0, 1.0, 8)
    S = jacobian_operator(r, di.AutoSparse(di.AutoJAX()), jnp.asarray(x)).tosparse()
    assert type(S).__name__ == "BCOO"
    close(np.asarray(S.todense()), jac(x), 1e-12)
    rt, _ = banded(torch)
    St = jacobian_operator(rt, di.AutoSparse(di.AutoTorch()), torch.as_tensor(x)).tosparse()
    assert isinstance(St, torch.Tensor) and St.layout == torch.sparse_csr
    close(di.to_scipy(St).toarray(), jac(x), 1e-12)
    f = lambda z, a: a * z[1:] * z[:-1]  # noqa: E731
    J = jacobian_operator(f, di.AutoSparse(di.AutoFiniteDiff(method="complex")), x, di.Constant(2.0))
    dense = J.todense()
    close(J.tosparse().toarray(), dense, 1e-12)
    J.update(x, di.Constant(3.0))
    close(J.tosparse().toarray(), 1.5 * dense, 1e-12)


def test_blocks_in_column_layout_for_jax_and_k_leading_elsewhere():
    make, jac = problem((2, 3), (3, 2))
    rng = np.random.default_rng(10)
    x, V, W = rng.normal(size=(2, 3)), rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    J = jacobian_operator(make(jnp, np.asarray), di.AutoJAX(), x)
    assert J._columns
    for strategy in J._strategies:  # every JAX strategy maps the (size, k) block inside its jit, in each mode
        state = strategy.setup(J._engine.to_native(x), ())
        for mode in strategy.modes:
            close(np.asarray(strategy.jvp(state, V, "columns", mode)), jac(x) @ V, 1e-12)
            close(np.asarray(strategy.vjp(state, W, "columns", mode)), jac(x).T @ W, 1e-12)
            close(np.asarray(strategy.gauss_newton(state, V, "columns", mode)), jac(x).T @ jac(x) @ V, 1e-12)
    close(J @ jnp.asarray(V), jac(x) @ V, 1e-12)
    Jt = jacobian_operator(make(torch, torch.as_tensor), di.AutoTorch(), torch.as_tensor(x))
    assert not Jt._columns
    # a (size, k) block becomes one contiguous k-leading copy (strided seeds slow every product) ...
    seeds, k = Jt._seeds(torch.as_tensor(V), 6, (2, 3), "J @ V")
    assert k == 4 and seeds.shape == (4, 2, 3) and seeds.is_contiguous()
    close(seeds.numpy().reshape(4, 6), V.T, 0)
    # ... and a block already k-leading in memory (W.T of a (k, size) array) stays a view
    Vk = torch.as_tensor(np.ascontiguousarray(V.T))
    seeds, k = Jt._seeds(Vk.T, 6, (2, 3), "J @ V")
    assert k == 4 and seeds.data_ptr() == Vk.data_ptr()
    for strategy in Jt._strategies:  # every torch strategy in each block mode
        state = strategy.setup(torch.as_tensor(x), ())
        for mode in strategy.modes:
            close(strategy.jvp(state, seeds, True, mode).numpy().reshape(4, 6), (jac(x) @ V).T, 1e-12)
            wk = torch.as_tensor(np.ascontiguousarray(W.T)).reshape(4, 3, 2)
            close(strategy.vjp(state, wk, True, mode).numpy().reshape(4, 6), (jac(x).T @ W).T, 1e-12)
    Wn = np.random.default_rng(11).normal(size=(1000, 3))  # NumPy: a blocked transposing copy
    block = jacobian_operator(make(anp, np.asarray), di.AutoAutograd(), x)._seeds(Wn, 1000, (1000,), "J.T @ W")[0]
    assert block.flags.c_contiguous and block.shape == (3, 1000)
    close(block, Wn.T, 0)


@pytest.mark.parametrize("engine", ["jax", "torch", "autograd"])
def test_block_modes_and_gauss_newton_are_measured_then_used(engine, measure_all):
    backend, xp, asarray = ENGINES[engine]
    make, jac = problem((6,), (4,))
    rng = np.random.default_rng(12)
    G = gauss_newton_operator(make(xp, asarray), backend, rng.normal(size=6))
    J = G.jacobian
    for _ in range(3):  # measured at the first block of each kind and size, then reused
        x = rng.normal(size=6)
        G.update(x)
        V, W, v = rng.normal(size=(6, 3)), rng.normal(size=(4, 3)), rng.normal(size=6)
        close(J @ V, jac(x) @ V, 1e-12)
        close(J.T @ W, jac(x).T @ W, 1e-12)
        close(G @ V, jac(x).T @ jac(x) @ V, 1e-12)
        close(G @ v, jac(x).T @ jac(x) @ v, 1e-12)
    blocks = J._shared["blocks"]
    assert set(blocks) == {("jvp", 3), ("vjp", 3), ("gn", 3), ("gn", None)}
    for (kind, k), per_strategy in blocks.items():
        assert len(per_strategy) == len(J._strategies)
        for strategy, (mode, seconds) in zip(J._strategies, per_strategy):
            assert mode in J._modes(strategy, kind, k) and seconds > 0
    assert J._expected == {("jvp", 3): 1, ("vjp", 3): 1, ("gn", 3): 1, "gn": 1}


@pytest.mark.parametrize("engine", ["torch", "autograd"])
def test_twin_products_are_timed_as_one(engine, measure_all):
    """Strategies whose VJPs (or JVPs) run the same code (a backward through the same
    kept forward graph) get one cost, so timing noise never decides between them; the
    choice then rests on what differs (here the set-up)."""
    backend, xp, asarray = ENGINES[engine]
    make, jac = problem((40,), (30,))
    rng = np.random.default_rng(14)
    J = jacobian_operator(make(xp, asarray), backend, asarray(rng.normal(size=40)))
    names = [s.name for s in J._strategies]
    twins = [(i, J._twin(i, kind), kind) for i in range(len(names)) for kind in ("jvp", "vjp")
             if J._twin(i, kind) is not None]
    expected = {"torch": {("double_backward", "kept_graph", "vjp"), ("recompute", "kept_graph", "jvp")},
                "autograd": {("vjp_of_vjp", "make_vjp", "vjp")}}[engine]
    assert {(names[i], names[j], kind) for i, j, kind in twins} == expected
    for i, j, kind in twins:
        position = 3 if kind == "jvp" else 4
        assert J._costs[i][position] == J._costs[j][position] > 0
    x, W = rng.normal(size=40), rng.normal(size=(30, 5))
    J.update(asarray(x))
    close(J.T @ asarray(W), jac(x).T @ W, 1e-12)
    per_strategy = J._shared["blocks"][("vjp", 5)]
    for i, j, kind in twins:
        if kind == "vjp":
            assert per_strategy[i] == per_strategy[j]


def test_close_calls_between_twins_go_to_the_cheaper_products():
    make, jac = problem((6,), (6,))
    J = jacobian_operator(make(torch, torch.as_tensor), di.AutoTorch(), torch.ones(6, dtype=torch.float64))
    assert [s.name for s in J._strategies] == ["kept_graph", "double_backward", "recompute"]
    pair = {"jvp": 1, "vjp": 1}
    # (set-up, JVP prep, VJP prep, JVP, VJP): kept_graph 1.75, double_backward 1.88 (7% dearer)
    J._shared["costs"] = [(0.0, 0.0, 0.3, 1.0, 0.45), (0.95, 0.0, 0.0, 0.48, 0.45), (0.0, 0.0, 0.0, 1.0, 1.1)]
    assert J._choose(pair) == 1  # twins within 10%: the cheaper products
    # kept_graph's first JVP building the graph, timed as one pass: 0.28 + 1 + 0.45 = 1.73, within
    # 10% too, taken as predicted (the rule's margin is for parts timed apart); VJP first: as before
    J._shared["costs"] = [c + (1.28 if i == 0 else float("inf"),) for i, c in enumerate(J._shared["costs"])]
    assert J._choose(pair, "jvp") == 0 and J._choose(pair, "vjp") == 1
    assert J._choose({"jvp": 1}) in (0, 2)  # one JVP: 1.0 against 1.43, not a close call
    J._shared["costs"][1] = (1.3, 0.0, 0.0, 0.48, 0.45)  # double_backward now 2.23 (27% dearer)
    assert J._choose(pair) == 0
    # kept_graph and recompute share JVPs only: for VJP blocks they are not twins, the cheapest
    # wins (recompute 7.4 against kept_graph's 0.3 + 7.2, though kept_graph's products cost less)
    J._shared["blocks"][("vjp", 16)] = [("loop", 7.2), ("loop", 7.2), ("vmap", 7.4)]
    assert J._choose({("vjp", 16): 1}) == 2
    Jj = jacobian_operator(make(jnp, np.asarray), di.AutoJAX(), np.ones(6))  # no twins: the cheapest
    Jj._shared["costs"] = [(0.0, 0.0, 0.0, 1.0, 1.0), (0.25, 0.0, 0.0, 0.9, 0.9)]
    assert Jj._choose(pair) == 0  # 2.0 against 2.05, though its products cost less


def counting_torch_problem():
    """A torch f (3 -> 4) counting its calls, and its closed-form Jacobian."""
    make, jac = problem((3,), (4,))
    inner, calls = make(torch, torch.as_tensor), []

    def f(x):
        calls.append(1)
        return inner(x)

    return f, jac, calls


def test_torch_first_jvp_keeps_the_graph_for_the_vjps():
    """kept_graph: a point whose first product is a JVP, in a workload with VJPs, runs f
    once (forward-mode dual numbers with x requiring grad give the JVP and the graph);
    VJP first, or JVPs alone, as before. Chosen by its measured cost."""
    f, jac, calls = counting_torch_problem()
    rng = np.random.default_rng(3)
    J = jacobian_operator(f, di.AutoTorch(), torch.ones(3, dtype=torch.float64))
    assert [s.name for s in J._strategies] == ["kept_graph", "double_backward", "recompute"]
    assert J._costs[0][5] < float("inf") and J._costs[1][5] == J._costs[2][5] == float("inf")
    # (set-up, JVP prep, VJP prep, JVP, VJP, fused first JVP): with the JVP first kept_graph costs
    # 0.5 + 1 + 1 = 2.5 against double_backward's 3.5; with the VJP first 3 + 1 + 1 = 5
    inf = float("inf")
    J._shared["costs"] = [(0.0, 0.0, 3.0, 1.0, 1.0, 1.5), (2.0, 0.0, 0.0, 0.5, 1.0, inf), (9.0,) * 5 + (inf,)]
    pair = {"jvp": 1, "vjp": 1}
    assert J._choose(pair, "jvp") == 0 and J._choose(pair, "vjp") == 1 and J._choose(pair) == 1
    assert J._fuses(0, pair, "jvp") and J._fuses(0, pair, "gn")
    assert not J._fuses(0, pair, "vjp") and not J._fuses(0, {"jvp": 1}, "jvp") and not J._fuses(1, pair, "jvp")
    for order in ("jvp first", "vjp first"):
        x, v, w = rng.normal(size=3), rng.normal(size=3), rng.normal(size=4)
        J.update(torch.as_tensor(x))
        calls.clear()
        if order == "jvp first":
            jv = J @ torch.as_tensor(v)
            assert J.strategy == "kept_graph" and len(calls) == 1 and "y" in J._state
            wj = J.T @ torch.as_tensor(w)
            assert len(calls) == 1  # the VJP ran backward through the graph the JVP built
            assert not jv.requires_grad and not wj.requires_grad
        else:
            wj = J.T @ torch.as_tensor(w)
            jv = J @ torch.as_tensor(v)
            assert J.strategy == "double_backward"
        close(jv.numpy(), jac(x) @ v, 1e-12)
        close(wj.numpy(), jac(x).T @ w, 1e-12)
        close(J.value.numpy(), f(torch.as_tensor(x)).numpy(), 1e-15)
        J.T @ torch.as_tensor(w)  # the next VJP runs through the same graph
        close((J @ torch.as_tensor(w[:3])).numpy(), jac(x) @ w[:3], 1e-12)  # later JVPs: torch.func.jvp
    J.update(torch.as_tensor(rng.normal(size=3)))
    J._expected = {"jvp": 2}  # JVPs alone: no graph
    J @ torch.ones(3, dtype=torch.float64)
    assert J.strategy == "kept_graph" and "y" not in J._state


def test_torch_fused_first_jvp_of_a_constant_and_through_gauss_newton():
    x = torch.as_tensor(np.array([0.3, -0.2, 0.5]))
    kept = jacobian_operator(lambda z: torch.ones(2, dtype=z.dtype), di.AutoTorch(), x)._strategies[0]
    state = kept.setup(x, ())
    kept.fuse(state)
    assert torch.equal(kept.jvp(state, torch.ones(3, dtype=torch.float64), False), torch.zeros(2, dtype=torch.float64))
    assert torch.equal(kept.vjp(state, torch.ones(2, dtype=torch.float64), False), torch.zeros(3, dtype=torch.float64))
    f, jac, calls = counting_torch_problem()
    G = gauss_newton_operator(f, di.AutoTorch(), x)
    inf = float("inf")
    G.jacobian._shared["costs"] = [(0.0, 0.0, 3.0, 1.0, 1.0, 1.5), (2.0, 0.0, 0.0, 0.5, 1.0, inf),
                                   (9.0,) * 5 + (inf,)]
    v = np.array([1.0, -2.0, 0.5])
    for _ in range(2):  # the first G @ v measures its modes; then a new point
        G.update(x)
        calls.clear()
        close(G @ torch.as_tensor(v), jac(x.numpy()).T @ (jac(x.numpy()) @ v), 1e-12)
    assert G.jacobian.strategy == "kept_graph" and len(calls) == 1


def test_torch_fused_first_jvp_refused_by_f_runs_the_jvp_alone(measure_all):
    """An f that raises in the forward-mode pass (an operation without a forward-mode
    formula, here simulated) turns the fusion off; the JVP runs as before."""
    import torch.autograd.forward_ad as forward_ad

    make, jac = problem((3,), (4,))
    inner = make(torch, torch.as_tensor)

    def f(x):  # refuses a dual tensor requiring grad (the fused pass), not torch.func.jvp's
        if forward_ad.unpack_dual(x).tangent is not None and x.requires_grad:
            raise RuntimeError("no forward-mode formula")
        return inner(x)

    x, v = np.array([0.3, -0.2, 0.5]), np.array([1.0, 2.0, -1.0])
    J = jacobian_operator(f, di.AutoTorch(), torch.as_tensor(x))
    kept = J._strategies[0]
    assert not kept.fuses_first_jvp and J._costs[0][5] == float("inf")  # found out at construction
    state = kept.setup(torch.as_tensor(x), ())
    kept.fuse(state)
    close(kept.jvp(state, torch.as_tensor(v), False).numpy(), jac(x) @ v, 1e-12)
    assert "y" not in state


def test_lazy_set_up_per_kind():
    make, jac = problem((5,), (3,))
    x = np.linspace(-1.0, 1.0, 5)
    J = jacobian_operator(make(torch, torch.as_tensor), di.AutoTorch(), x)
    kept = J._strategies[0]
    state = kept.setup(torch.as_tensor(x), ())
    close(kept.jvp(state, torch.ones(5, dtype=torch.float64), False).numpy(), jac(x) @ np.ones(5), 1e-12)
    assert "leaf" not in state  # JVPs alone never build the forward graph ...
    kept.prepare(state, "jvp")
    assert "leaf" not in state  # ... nor their preparation (timed as such by the operator)
    close(kept.vjp(state, torch.ones(3, dtype=torch.float64), False).numpy(), jac(x).T @ np.ones(3), 1e-12)
    assert "leaf" in state
    Ja = jacobian_operator(make(anp, np.asarray), di.AutoAutograd(), x)
    state = Ja._strategies[0].setup(x, ())
    Ja._strategies[0].jvp(state, np.ones(5), False)
    Ja._strategies[0].prepare(state, "jvp")
    assert "pull" not in state  # autograd's forward trace only for VJPs
    Jj = jacobian_operator(make(jnp, np.asarray), di.AutoJAX(), x)
    for strategy in Jj._strategies:  # JAX: f(x) computed only when asked for
        state = strategy.setup(x, ())
        assert "y" not in state
        close(np.asarray(strategy.value(state)), np.asarray(make(np, np.asarray)(x)), 1e-14)


@pytest.mark.parametrize("engine", ["torch", "autograd", "finite_diff"])
def test_block_results_never_alias_the_reused_seed_buffer(engine, measure_all):
    backend, xp, asarray = ENGINES[engine]
    identity = lambda x: x  # noqa: E731 - its VJP may hand back the cotangent itself
    rng = np.random.default_rng(13)
    V1, V2 = rng.normal(size=(300, 300)), rng.normal(size=(300, 300))  # big enough to be copied
    J = jacobian_operator(identity, backend, np.ones(300))
    for strategy in J._strategies:  # torch: vmap (is_grads_batched) may hand back its seeds
        strategy.modes = strategy.modes[-1:]
    first = J @ asarray(V1)
    J.T @ asarray(V2)
    second = J.T @ asarray(V2)
    assert J._workspace
    close(np.asarray(first), V1, 1e-6)
    close(np.asarray(second), V2, 1e-6)


def test_vmap_failure_falls_back_to_the_loop_once():
    from diffinterface.backends._jacobian_strategies import _vmap_or_loop

    class Owner:
        pass

    owner, seeds = Owner(), torch.arange(6.0, dtype=torch.float64).reshape(3, 2)
    calls = []

    def unsupported(block):
        calls.append(1)
        raise RuntimeError("vmap: this operator has no batching rule")

    out = _vmap_or_loop(owner, "_flag", lambda s: 2 * s, seeds, unsupported)
    close(out.numpy(), 2 * seeds.numpy(), 0)
    assert owner._flag is False
    _vmap_or_loop(owner, "_flag", lambda s: 2 * s, seeds, unsupported)  # not tried again
    assert len(calls) == 1

    def broken(block):
        raise RuntimeError("shape mismatch in f")  # a real error in f: raised, not hidden

    with pytest.raises(RuntimeError, match="shape mismatch"):
        _vmap_or_loop(Owner(), "_flag", lambda s: s, seeds, broken)


class _OldStyleSin(torch.autograd.Function):
    """sin with the pre-functorch ``autograd.Function`` API (no ``setup_context``):
    torch.func refuses it, plain autograd (double backward included) runs it."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return torch.sin(z)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * torch.cos(z)


@pytest.mark.parametrize("measure", ["default", "all"])
def test_strategies_failing_on_f_are_skipped(measure, monkeypatch):
    """A torch f through an old-style autograd.Function: torch.func cannot run it, so
    kept_graph's JVPs and recompute fail at construction and double_backward serves all."""
    if measure == "all":
        monkeypatch.setattr(jo, "MEASURE_ABOVE_S", 0.0)
    A = torch.as_tensor(np.random.default_rng(53).normal(size=(3, 5)))

    def f(x):
        return _OldStyleSin.apply(A @ x) * torch.sum(x * x) + x[0]

    x0, x1 = np.linspace(-0.4, 0.6, 5), np.linspace(0.3, -0.2, 5)

    def dense(x):
        s = A.numpy() @ x
        out = np.cos(s)[:, None] * A.numpy() * np.sum(x * x) + np.sin(s)[:, None] * 2 * x[None, :]
        out[:, 0] += 1.0
        return out

    with pytest.raises(RuntimeError, match="setup_context"):  # the premise: torch.func refuses f
        torch.func.jvp(f, (torch.as_tensor(x0),), (torch.as_tensor(x0),))
    J = jacobian_operator(f, di.AutoTorch(), torch.as_tensor(x0))
    G = gauss_newton_operator(f, di.AutoTorch(), torch.as_tensor(x0))
    rng = np.random.default_rng(2)
    v, w, V, W = rng.normal(size=5), rng.normal(size=3), rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    for x in (x0, x1):
        J.update(torch.as_tensor(x))
        G.update(torch.as_tensor(x))
        D = dense(x)
        assert J.strategy == "double_backward"
        close(J @ torch.as_tensor(v), D @ v, 1e-12)
        close(J.T @ torch.as_tensor(w), D.T @ w, 1e-12)
        close(J @ torch.as_tensor(V), D @ V, 1e-12)
        close(J.T @ torch.as_tensor(W), D.T @ W, 1e-12)
        close(G @ torch.as_tensor(v), D.T @ (D @ v), 1e-12)


@pytest.mark.parametrize("measure", ["default", "all"])
def test_jax_custom_vjp_serves_vjps_and_raises_jaxs_error_for_jvps(measure, monkeypatch):
    """JAX cannot push forward through a custom_vjp function: VJPs (singles and blocks)
    still work, a JVP raises JAX's own error (not a wrong number)."""
    if measure == "all":
        monkeypatch.setattr(jo, "MEASURE_ABOVE_S", 0.0)
    jax.config.update("jax_enable_x64", True)

    @jax.custom_vjp
    def cube(z):
        return z ** 3

    cube.defvjp(lambda z: (z ** 3, z), lambda z, g: (3 * z ** 2 * g,))

    def f(x):
        return cube(x[:3] * x[1:])

    x = np.array([0.5, -1.0, 2.0, 0.25])
    z = x[:3] * x[1:]
    D = np.zeros((3, 4))
    D[np.arange(3), np.arange(3)] = 3 * z ** 2 * x[1:]
    D[np.arange(3), np.arange(1, 4)] += 3 * z ** 2 * x[:3]
    J = jacobian_operator(f, di.AutoJAX(), jnp.asarray(x))
    w, W = np.array([1.0, -2.0, 0.5]), np.arange(6.0).reshape(3, 2)
    close(J.T @ jnp.asarray(w), D.T @ w, 1e-12)
    close(J.T @ jnp.asarray(W), D.T @ W, 1e-12)
    with pytest.raises(TypeError, match="custom_vjp"):
        J @ jnp.ones(4)


def test_measurement_rounds_alternate_and_keep_the_fastest():
    """fastest_of_rounds: ROUNDS rounds alternating A B A B, the fastest of each."""
    from diffinterface import _timing

    trace = []

    def candidate(name, costs):
        costs = iter(costs)

        def run():
            trace.append(name)
            return next(costs)
        return run

    a = [5e-3, 1e-4, 4e-3, 2e-3, 3e-3, 1e-5]  # the sixth is never run
    b = [9e-4, 8e-4, 2e-4, 8e-4, 7e-4, 1e-6]
    assert _timing.fastest_of_rounds([candidate("a", a), candidate("b", b)]) == [1e-4, 2e-4]
    assert _timing.ROUNDS == 5 and trace == ["a", "b"] * 5

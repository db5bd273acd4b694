"""Test scenarios with analytic reference derivatives.

Each scenario builds its function for an array namespace (``jax.numpy``,
``torch``, ``autograd.numpy`` or ``numpy``), so one scenario exercises every
engine; its references are closed forms in NumPy, independent of any engine.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from diffinterface.backends import AutoAutograd, AutoFiniteDiff, AutoJAX, AutoTorch, SecondOrder

__all__ = ["Namespace", "Scenario", "default_scenarios", "namespace_for", "sparse_scenarios", "structured_scenarios"]


@dataclass(frozen=True)
class Namespace:
    """An array namespace ``xp`` and how to turn NumPy constants into its arrays."""

    xp: Any
    asarray: Callable[[np.ndarray], Any]


def namespace_for(backend: Any) -> Namespace:
    """The namespace a scenario function should use under ``backend``."""
    if isinstance(backend, SecondOrder):
        backend = backend.inner
    if isinstance(backend, AutoJAX):
        jnp = importlib.import_module("jax.numpy")
        return Namespace(jnp, np.asarray)  # NumPy constants keep float64 under any x64 setting
    if isinstance(backend, AutoTorch):
        torch = importlib.import_module("torch")
        return Namespace(torch, torch.as_tensor)
    if isinstance(backend, AutoAutograd):
        return Namespace(importlib.import_module("autograd.numpy"), np.asarray)
    if isinstance(backend, AutoFiniteDiff):
        return Namespace(np, np.asarray)
    dense = getattr(backend, "dense_backend", None)
    if dense is not None:
        return namespace_for(dense)
    raise TypeError(f"no scenario namespace for {backend!r}")


@dataclass(frozen=True)
class Scenario:
    """A function, two points, and closed-form derivatives.

    ``reference(x)`` returns a dict with ``"y"`` and ``"jacobian"`` (shape
    ``y.shape + x.shape``) and, for scalar ``y``, ``"hessian"``
    (``x.shape + x.shape``).
    """

    name: str
    make_f: Callable[[Namespace], Callable]
    x: Any
    x2: Any
    reference: Callable[[Any], dict]
    tags: frozenset = field(default_factory=frozenset)
    #: contexts passed after x: ``make_contexts(namespace) -> (di.Constant(...), di.Cache(...), ...)``
    make_contexts: Callable[[Namespace], tuple] | None = None
    #: ``make_f`` returns ``f(y, x, *contexts)`` writing into y: the kit wraps it in ``di.InPlace``
    inplace: bool = False

    def f_for(self, backend: Any) -> Callable:
        f = self.make_f(namespace_for(backend))
        if self.inplace:
            from diffinterface.inplace import InPlace

            return InPlace(f, np.zeros(self.y_shape()))
        return f

    def contexts_for(self, backend: Any) -> tuple:
        return () if self.make_contexts is None else self.make_contexts(namespace_for(backend))

    @property
    def x_shape(self) -> tuple:
        if "pytree" in self.tags:
            from diffinterface.tree import tree_spec

            return (tree_spec(self.x).size,)
        return np.shape(self.x)

    def y_shape(self) -> tuple:
        return np.shape(self.reference(self.x)["y"])

    def __repr__(self) -> str:
        return f"Scenario({self.name})"


def _diag_jacobian(values: np.ndarray) -> np.ndarray:
    """Jacobian of an elementwise map with derivative ``values``: shape x.shape * 2."""
    n = values.size
    return (np.eye(n) * values.reshape(-1)).reshape(values.shape + values.shape)


def _sin_x2(ns):
    return lambda x: ns.xp.sin(x) * x**2


def _sum_sin_x2(ns):
    return lambda x: ns.xp.sum(ns.xp.sin(x) * x**2)


def _ref_sin_x2(x):
    x = np.asarray(x, dtype=float)
    d1 = np.cos(x) * x**2 + 2 * x * np.sin(x)
    d2 = -(x**2) * np.sin(x) + 4 * x * np.cos(x) + 2 * np.sin(x)
    return np.sin(x) * x**2, d1, d2


def _ref_scalar_scalar(x):
    y, d1, d2 = _ref_sin_x2(x)
    return {"y": y, "jacobian": d1, "hessian": d2}


def _ref_sum_sin_x2(x):
    y, d1, d2 = _ref_sin_x2(x)
    return {"y": np.sum(y), "jacobian": d1, "hessian": _diag_jacobian(d2)}


def _scalar_to_array(a: np.ndarray, b: np.ndarray) -> tuple[Callable, Callable]:
    def make_f(ns):
        ca, cb = ns.asarray(a), ns.asarray(b)
        return lambda x: ns.xp.sin(ca * x) + cb * x**2

    def reference(x):
        return {"y": np.sin(a * x) + b * x**2, "jacobian": a * np.cos(a * x) + 2 * b * x}

    return make_f, reference


def _matvec_sin(a: np.ndarray) -> tuple[Callable, Callable]:
    def make_f(ns):
        ca = ns.asarray(a)
        return lambda x: ns.xp.sin(ca @ x)

    def reference(x):
        z = a @ x
        return {"y": np.sin(z), "jacobian": np.cos(z)[:, None] * a}

    return make_f, reference


def _matmat_tanh(b: np.ndarray) -> tuple[Callable, Callable]:
    def make_f(ns):
        cb = ns.asarray(b)
        return lambda x: ns.xp.tanh(x @ cb)

    def reference(x):
        t = np.tanh(x @ b)
        m, k = x.shape
        jac = np.zeros(t.shape + x.shape)
        for i in range(m):
            jac[i, :, i, :] = (1 - t[i] ** 2)[:, None] * b.T
        return {"y": t, "jacobian": jac}

    return make_f, reference


def _cubic_cos(ns):
    return lambda x: ns.xp.sum(x**3) + ns.xp.sum(ns.xp.cos(x))


def _ref_cubic_cos(x):
    return {
        "y": np.sum(x**3) + np.sum(np.cos(x)),
        "jacobian": 3 * x**2 - np.sin(x),
        "hessian": _diag_jacobian(6 * x - np.cos(x)),
    }


def _x_exp(ns):
    return lambda x: ns.xp.exp(x) * x


def _ref_x_exp(x):
    return {"y": np.exp(x) * x, "jacobian": np.exp(x) * (1 + x), "hessian": np.exp(x) * (2 + x)}


def default_scenarios() -> list[Scenario]:
    """Scalar/array inputs and outputs of 0 to 3 dimensions, with references."""
    rng = np.random.default_rng(42)
    a3, b3 = rng.normal(size=3), rng.normal(size=3)
    a23, b23 = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    mat43 = rng.normal(size=(4, 3))
    mat34 = rng.normal(size=(3, 4))
    s2v = _scalar_to_array(a3, b3)
    s2m = _scalar_to_array(a23, b23)
    v2v = _matvec_sin(mat43)
    m2m = _matmat_tanh(mat34)
    return [
        Scenario("scalar->scalar", _sin_x2, 0.7, 1.3, _ref_scalar_scalar, frozenset({"scalar_x", "scalar_y"})),
        Scenario("scalar->vector", s2v[0], 0.4, -1.1, s2v[1], frozenset({"scalar_x"})),
        Scenario("scalar->matrix", s2m[0], -0.3, 0.9, s2m[1], frozenset({"scalar_x"})),
        Scenario("0d->0d", _x_exp, np.array(0.4), np.array(-0.6), _ref_x_exp, frozenset({"scalar_x", "scalar_y"})),
        Scenario("vector->scalar", _sum_sin_x2, rng.normal(size=5), rng.normal(size=5), _ref_sum_sin_x2, frozenset({"scalar_y"})),
        Scenario("matrix->scalar", _sum_sin_x2, rng.normal(size=(2, 3)), rng.normal(size=(2, 3)), _ref_sum_sin_x2, frozenset({"scalar_y"})),
        Scenario("3d->scalar", _cubic_cos, rng.normal(size=(2, 2, 2)), rng.normal(size=(2, 2, 2)), _ref_cubic_cos, frozenset({"scalar_y"})),
        Scenario("vector->vector", v2v[0], rng.normal(size=3), rng.normal(size=3), v2v[1]),
        Scenario("matrix->matrix", m2m[0], rng.normal(size=(2, 3)), rng.normal(size=(2, 3)), m2m[1]),
    ]


def _banded(ns):
    return lambda x: ns.xp.sin(x[1:-1]) * x[:-2] + x[2:] ** 2


def _ref_banded(x):
    n = x.size
    jac = np.zeros((n - 2, n))
    idx = np.arange(n - 2)
    jac[idx, idx] = np.sin(x[1:-1])
    jac[idx, idx + 1] = np.cos(x[1:-1]) * x[:-2]
    jac[idx, idx + 2] = 2 * x[2:]
    return {"y": np.sin(x[1:-1]) * x[:-2] + x[2:] ** 2, "jacobian": jac}


def _block_diagonal(m: np.ndarray) -> tuple[Callable, Callable]:
    k = m.shape[0]

    def make_f(ns):
        cm = ns.asarray(m)
        return lambda x: ns.xp.tanh(x.reshape(-1, k) @ cm).reshape(-1)

    def reference(x):
        blocks = x.reshape(-1, k)
        t = np.tanh(blocks @ m)
        jac = np.zeros((x.size, x.size))
        for b in range(blocks.shape[0]):
            sl = slice(b * k, (b + 1) * k)
            jac[sl, sl] = (1 - t[b] ** 2)[:, None] * m.T
        return {"y": t.reshape(-1), "jacobian": jac}

    return make_f, reference


def _arrowhead(ns):
    return lambda x: ns.xp.sum(x[0] * x[1:] ** 2) + ns.xp.sum(x**2) + ns.xp.sum(ns.xp.exp(x[1:]))


def _ref_arrowhead(x):
    n = x.size
    grad = 2 * x + np.concatenate([[np.sum(x[1:] ** 2)], 2 * x[0] * x[1:] + np.exp(x[1:])])
    hess = np.diag(np.concatenate([[2.0], 2 * x[0] + 2 + np.exp(x[1:])]))
    hess[0, 1:] = hess[1:, 0] = 2 * x[1:]
    y = np.sum(x[0] * x[1:] ** 2) + np.sum(x**2) + np.sum(np.exp(x[1:]))
    return {"y": y, "jacobian": grad, "hessian": hess}


def _brusselator(n_grid: int) -> tuple[Callable, Callable]:
    from diffinterface.testing.problems import brusselator_2d

    def make_f(ns):
        return lambda x: brusselator_2d(x, xp=ns.xp, N=n_grid)

    def reference(x):
        # independent of any AD engine: the complex step on the NumPy version, exact to rounding
        y = brusselator_2d(x, xp=np, N=n_grid)
        jac = np.empty((y.size, x.size))
        for i in range(x.size):
            xc = x.astype(complex)
            xc[i] += 1e-30j
            jac[:, i] = np.imag(brusselator_2d(xc, xp=np, N=n_grid)) / 1e-30
        return {"y": y, "jacobian": jac}

    return make_f, reference


def sparse_scenarios() -> list[Scenario]:
    """Sparse structure: banded, block-diagonal and Brusselator Jacobians, an arrowhead Hessian."""
    rng = np.random.default_rng(7)
    block = _block_diagonal(rng.normal(size=(3, 3)))
    bruss = _brusselator(4)
    return [
        Scenario("banded", _banded, rng.normal(size=12), rng.normal(size=12), _ref_banded),
        Scenario("block-diagonal", block[0], rng.normal(size=12), rng.normal(size=12), block[1]),
        Scenario("arrowhead", _arrowhead, rng.normal(size=10), rng.normal(size=10), _ref_arrowhead,
                 frozenset({"scalar_y"})),
        Scenario("brusselator N=4", bruss[0], rng.uniform(0.5, 1.5, size=32), rng.uniform(0.5, 1.5, size=32), bruss[1]),
    ]


# --- structured scenarios: contexts, pytrees, in-place functions, custom rules ----------


def _constant_weights(ns):
    return lambda x, a: ns.xp.sum(ns.xp.asarray(a) * ns.xp.sin(x) * x**2)


def _ref_constant_weights(a):
    def reference(x):
        y, d1, d2 = _ref_sin_x2(x)
        return {"y": np.sum(a * y), "jacobian": a * d1, "hessian": np.diag(a * d2)}

    return reference


def _cache_scratch(ns):
    def f(x, scratch):
        scratch[:] = x**2
        return ns.xp.sum(scratch * x)

    return f


def _ref_cube_sum(x):
    return {"y": np.sum(x**3), "jacobian": 3 * x**2, "hessian": np.diag(6 * x)}


def _tree_loss(ns):
    return lambda p: ns.xp.sum(ns.xp.tanh(p["w"].T @ p["b"]) ** 2) + ns.xp.sum(p["b"] ** 3)


def _ref_tree_loss(p):
    """On the flat vector of the dict: sorted keys, so b (2) then w (2x3)."""
    def flat_grad(v):
        b, w = v[:2], v[2:].reshape(2, 3)
        t = np.tanh(w.T @ b)
        dz = 2 * t * (1 - t**2)
        return np.concatenate([w @ dz + 3 * b**2, np.outer(b, dz).reshape(-1)])

    v = np.concatenate([p["b"], p["w"].reshape(-1)])
    hess = np.stack([np.imag(flat_grad(v + 1e-30j * e)) / 1e-30 for e in np.eye(v.size)], axis=1)
    y = np.sum(np.tanh(p["w"].T @ p["b"]) ** 2) + np.sum(p["b"] ** 3)
    return {"y": y, "jacobian": flat_grad(v), "hessian": hess}


def _tuple_map(ns):
    return lambda t: ns.xp.sin(t[0]) * t[1]


def _ref_tuple_map(t):
    a, b = t
    return {"y": np.sin(a) * b, "jacobian": np.concatenate([np.diag(np.cos(a) * b), np.diag(np.sin(a))], axis=1)}


def _nested_sum(ns):
    return lambda p: ns.xp.sum(p["layers"][0] * p["layers"][1]["inner"] ** 2) * p["c"]


def _ref_nested_sum(p):
    a, b, c = p["layers"][0], p["layers"][1]["inner"], float(p["c"])
    # flat order (sorted dict keys): c, then layers[0] = a, then layers[1]["inner"] = b
    grad = np.concatenate([[np.sum(a * b**2)], c * b**2, 2 * c * a * b])
    n = a.size
    hess = np.zeros((1 + 2 * n, 1 + 2 * n))
    hess[0, 1:1 + n] = hess[1:1 + n, 0] = b**2
    hess[0, 1 + n:] = hess[1 + n:, 0] = 2 * a * b
    hess[1:1 + n, 1 + n:] = hess[1 + n:, 1:1 + n] = np.diag(2 * c * b)
    hess[1 + n:, 1 + n:] = np.diag(2 * c * a)
    return {"y": c * np.sum(a * b**2), "jacobian": grad, "hessian": hess}


def _inplace_product(ns):
    def f(y, x):
        y[:] = x[1:] * x[:-1]

    return f


def _ref_inplace_product(x):
    jac = np.zeros((x.size - 1, x.size))
    idx = np.arange(x.size - 1)
    jac[idx, idx] = x[1:]
    jac[idx, idx + 1] = x[:-1]
    return {"y": x[1:] * x[:-1], "jacobian": jac}


def _sumsq_rule():
    from diffinterface.rules import custom_rule

    @custom_rule
    def sumsq(x):
        return np.sum(np.asarray(x) ** 2)

    sumsq.def_jvp(lambda primals, tangents: 2 * np.sum(primals[0] * tangents[0]))
    sumsq.def_vjp(lambda primals, out, ybar: (2 * primals[0] * ybar,))
    sumsq.def_hvp(lambda primals, tangents, ybar: (2 * tangents[0] * ybar,))
    return sumsq


def _custom_rule_scenario():
    sumsq = _sumsq_rule()

    def make_f(ns):
        return lambda x: sumsq(ns.xp.sin(x))

    def reference(x):
        return {"y": np.sum(np.sin(x) ** 2), "jacobian": 2 * np.sin(x) * np.cos(x),
                "hessian": np.diag(2 * np.cos(2 * x))}

    return make_f, reference


def structured_scenarios() -> list[Scenario]:
    """Functions as people write them: a Constant, a Cache, pytree inputs (a dict of
    a matrix and a vector, a tuple of vectors, a nested container), an in-place
    function, and a custom derivative rule."""
    rng = np.random.default_rng(11)
    weights = rng.uniform(0.5, 2.0, size=4)
    rule = _custom_rule_scenario()
    tree = {"w": rng.normal(size=(2, 3)), "b": rng.normal(size=2)}
    tree2 = {"w": rng.normal(size=(2, 3)), "b": rng.normal(size=2)}
    nested = {"layers": [rng.normal(size=3), {"inner": rng.normal(size=3)}], "c": np.array(0.7)}
    nested2 = {"layers": [rng.normal(size=3), {"inner": rng.normal(size=3)}], "c": np.array(-1.3)}
    pytree = frozenset({"pytree"})
    return [
        Scenario("constant", _constant_weights, rng.normal(size=4), rng.normal(size=4), _ref_constant_weights(weights),
                 frozenset({"scalar_y"}), make_contexts=lambda ns: (_constant(weights),)),
        Scenario("cache", _cache_scratch, rng.normal(size=4), rng.normal(size=4), _ref_cube_sum,
                 frozenset({"scalar_y"}), make_contexts=lambda ns: (_cache(np.zeros(4)),)),
        Scenario("dict(matrix, vector)", _tree_loss, tree, tree2, _ref_tree_loss, pytree | {"scalar_y"}),
        Scenario("tuple of vectors", _tuple_map, (rng.normal(size=3), rng.normal(size=3)),
                 (rng.normal(size=3), rng.normal(size=3)), _ref_tuple_map, pytree),
        Scenario("nested", _nested_sum, nested, nested2, _ref_nested_sum, pytree | {"scalar_y"}),
        Scenario("in-place", _inplace_product, rng.normal(size=5), rng.normal(size=5), _ref_inplace_product,
                 inplace=True),
        Scenario("custom rule", rule[0], rng.normal(size=4), rng.normal(size=4), rule[1], frozenset({"scalar_y"})),
    ]


def _constant(value):
    from diffinterface.contexts import Constant

    return Constant(value)


def _cache(value):
    from diffinterface.contexts import Cache

    return Cache(value)

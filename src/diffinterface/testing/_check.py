"""``check_backend``: run a backend through every operator and variant on the
scenarios and report, cell by cell, whether it agrees with the references."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import warnings

import numpy as np

import diffinterface as di
from diffinterface._errors import UnsupportedOperationError
from diffinterface.backends import AutoFiniteDiff, SecondOrder
from diffinterface.sparse._autosparse import DenseFallbackWarning
from diffinterface.testing._scenarios import Scenario, default_scenarios

__all__ = ["OperatorCheck", "Report", "Row", "check_backend", "tolerance_for", "FIRST_ORDER", "SECOND_ORDER", "OPERATORS"]

OK, UNSUPPORTED, WRONG, ERROR = "ok", "not supported", "wrong", "error"


def tolerance_for(backend: Any) -> float:
    """Relative tolerance the references are checked to for ``backend``."""
    fd = backend if isinstance(backend, AutoFiniteDiff) else None
    if isinstance(backend, SecondOrder):
        fd = next((b for b in (backend.outer, backend.inner) if isinstance(b, AutoFiniteDiff)), None)
        if fd is not None:
            return {"forward": 1e-4, "central": 1e-5, "complex": 1e-6}[fd.method]
    dense = getattr(backend, "dense_backend", None)
    if dense is not None:
        return tolerance_for(dense)
    if fd is not None:
        return {"forward": 1e-5, "central": 1e-6, "complex": 1e-12}[fd.method]
    return 1e-10


def _densify(actual: Any, expected_shape: tuple) -> Any:
    """Sparse results (AutoSparse, 2-D) as dense arrays of the expected shape."""
    module = type(actual).__module__
    is_sparse = hasattr(actual, "tocsr") or "sparse" in module or getattr(actual, "is_sparse", False) or (
        module.startswith("torch") and str(getattr(actual, "layout", "")) != "torch.strided")
    if not is_sparse:
        return actual
    from diffinterface.sparse._autosparse import to_scipy

    dense = to_scipy(actual).toarray()
    return dense.reshape(expected_shape) if dense.size == int(np.prod(expected_shape)) else dense


def relative_error(actual: Any, expected: Any) -> float:
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(_densify(actual, expected.shape), dtype=float)
    if actual.shape != expected.shape:
        return np.inf
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1e-12)
    return float(np.max(np.abs(actual - expected))) / scale if expected.size else 0.0


@dataclass(frozen=True)
class OperatorCheck:
    """How to exercise one operator family and what it should return.

    ``seed_kind`` is ``"tx"`` (tangents shaped like x), ``"ty"`` (cotangents
    shaped like y) or None; ``expected(reference, seed)`` gives the reference.
    """

    name: str
    applies: Callable[[Scenario], bool]
    expected: Callable[[dict, Any], Any]
    seed_kind: str | None = None
    second_order: bool = False
    combined: str | None = None  # e.g. "value_gradient_and_hessian": its last output is checked


def _flat_jac(ref: dict, key: str = "jacobian") -> np.ndarray:
    jac = np.asarray(ref[key])
    y_size = np.asarray(ref["y"]).size if key == "jacobian" else None
    return jac.reshape(y_size, -1) if y_size is not None else jac.reshape(int(np.sqrt(jac.size)), -1)


def _pushforward_ref(ref, t):
    return (_flat_jac(ref) @ np.reshape(t, -1)).reshape(np.shape(ref["y"]))


def _pullback_ref(ref, w):
    x_shape = np.shape(ref["jacobian"])[np.ndim(ref["y"]):]
    return (np.reshape(w, -1) @ _flat_jac(ref)).reshape(x_shape)


def _always(scenario):
    return True


def _scalar_x(scenario):
    return "scalar_x" in scenario.tags


def _scalar_y(scenario):
    return "scalar_y" in scenario.tags


FIRST_ORDER = [
    OperatorCheck("derivative", _scalar_x, lambda ref, _: ref["jacobian"]),
    OperatorCheck("gradient", _scalar_y, lambda ref, _: ref["jacobian"]),
    OperatorCheck("jacobian", _always, lambda ref, _: ref["jacobian"]),
    OperatorCheck("pushforward", _always, _pushforward_ref, "tx"),
    OperatorCheck("pullback", _always, _pullback_ref, "ty"),
]

def _hvp_ref(ref, t):
    h = np.asarray(ref["hessian"])
    n = int(np.sqrt(h.size))
    return (h.reshape(n, n) @ np.reshape(t, -1)).reshape(np.shape(t))


SECOND_ORDER = [
    OperatorCheck("second_derivative", lambda s: _scalar_x(s) and _scalar_y(s), lambda ref, _: ref["hessian"],
                  second_order=True, combined="value_derivative_and_second_derivative"),
    OperatorCheck("hvp", _scalar_y, _hvp_ref, "tx", second_order=True, combined="gradient_and_hvp"),
    OperatorCheck("hessian", _scalar_y, lambda ref, _: ref["hessian"], second_order=True,
                  combined="value_gradient_and_hessian"),
]

#: every operator family check_backend knows
OPERATORS: list[OperatorCheck] = FIRST_ORDER + SECOND_ORDER


@dataclass(frozen=True)
class Row:
    scenario: str
    operator: str
    variant: str
    status: str
    detail: str = ""


@dataclass
class Report:
    """The outcome of :func:`check_backend`: one row per scenario x operator x variant."""

    backend: Any
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no cell is wrong or errored (unsupported cells are allowed)."""
        return all(row.status in (OK, UNSUPPORTED) for row in self.rows)

    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.status in (WRONG, ERROR)]

    def counts(self) -> Counter:
        return Counter(row.status for row in self.rows)

    def matrix(self) -> dict[str, str]:
        """Operator -> aggregated status (``ok`` only if every cell is ok)."""
        out: dict[str, str] = {}
        for row in self.rows:
            current = out.get(row.operator, OK)
            rank = [OK, UNSUPPORTED, WRONG, ERROR]
            out[row.operator] = max(current, row.status, key=rank.index)
        return out

    def details(self, operator: str) -> str:
        return next((row.detail for row in self.rows if row.operator == operator and row.detail), "")

    def table(self) -> str:
        lines = [f"check_backend({self.backend!r}): {dict(self.counts())}"]
        lines += [
            f"  {r.scenario:16s} {r.operator:22s} {r.variant:10s} {r.status}"
            + (f"  ({r.detail})" if r.detail else "")
            for r in self.rows
        ]
        return "\n".join(lines)


def _random_like(shape: tuple, rng: np.random.Generator) -> Any:
    return rng.normal(size=shape) if shape != () else float(rng.normal())


def _seed(check: OperatorCheck, scenario: Scenario, rng) -> tuple[Any, Any]:
    """(seed as passed to the operator, seed as a flat array for the reference)."""
    if check.seed_kind == "tx" and "pytree" in scenario.tags:
        from diffinterface.tree import tree_spec

        spec = tree_spec(scenario.x)
        flat = rng.normal(size=spec.size)
        return spec.unravel(flat), flat
    shape = scenario.x_shape if check.seed_kind in ("tx",) else scenario.y_shape()
    seed = _random_like(shape, rng)
    return seed, seed


def _canonical(result: Any, x: Any, expected_shape: tuple) -> Any:
    """Pytree results as the flat arrays the references are written for."""
    from diffinterface.tree import flatten_jacobian, is_tree, tree_spec

    if not is_tree(result):
        return result
    if is_tree(x) and len(expected_shape) == 2 and expected_shape[1] == tree_spec(x).size:
        try:
            return np.asarray(flatten_jacobian(result, x)).reshape(expected_shape)
        except (ValueError, TypeError):
            pass
    leaves = tree_spec(result).leaves(result)
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in leaves])


def _compare(row_base: tuple, result: Any, expected: Any, tol: float) -> Row:
    err = relative_error(result, expected)
    if err <= tol:
        return Row(*row_base, OK)
    return Row(*row_base, WRONG, f"relative error {err:.2e} > {tol:.0e}")


def _variants(check: OperatorCheck, scenario: Scenario, backend: Any, rng) -> list[tuple[str, Callable[[], tuple]]]:
    """(variant name, thunk returning (result, expected)) pairs."""
    op = getattr(di, check.name)
    value_and_op = getattr(di, "value_and_" + check.name, None)
    prepare_op = getattr(di, "prepare_" + check.name)
    f = scenario.f_for(backend)
    ctx = scenario.contexts_for(backend)
    x, x2 = scenario.x, scenario.x2
    ref, ref2 = scenario.reference(x), scenario.reference(x2)
    seeded = check.seed_kind is not None
    s1, f1 = _seed(check, scenario, rng) if seeded else (None, None)
    s2, f2 = _seed(check, scenario, rng) if seeded else (None, None)
    args = (s1,) + ctx if seeded else ctx
    args2 = (s2,) + ctx if seeded else ctx
    canon = lambda r, e: (_canonical(r, x, np.shape(e)), e)

    def plain():
        return canon(op(f, backend, x, *args), check.expected(ref, f1))

    def value_and():
        y, r = value_and_op(f, backend, x, *args)
        if relative_error(_canonical(y, x, np.shape(ref["y"])), ref["y"]) > tolerance_for(backend) * 10 + 1e-14:
            return y, ref["y"]
        return canon(r, check.expected(ref, f1))

    def prepared():
        p = prepare_op(f, backend, x, *args)
        return canon(op(f, backend, x, *args, prep=p), check.expected(ref, f1))

    def reused():
        p = prepare_op(f, backend, x, *args)
        return canon(op(f, backend, x2, *args2, prep=p), check.expected(ref2, f2))

    def with_out():
        expected = np.asarray(check.expected(ref, f1))
        buffer = np.full(expected.shape, np.nan)
        p = prepare_op(f, backend, np.asarray(x) if expected.shape else x, *args)
        returned = op(f, backend, np.asarray(x) if expected.shape else x, *args, prep=p, out=buffer)
        return (buffer if returned is buffer else np.full_like(buffer, np.inf)), expected

    variants = [("plain", plain), ("prepared", prepared), ("reused", reused)]
    if value_and_op is not None:
        variants.insert(1, ("value_and", value_and))
    if check.combined is not None:
        combined_op = getattr(di, check.combined)

        def combined():
            outputs = combined_op(f, backend, x, *args)
            if check.combined.startswith("value_") and relative_error(outputs[0], ref["y"]) > tolerance_for(backend) * 10 + 1e-14:
                return outputs[0], ref["y"]
            gradient = _canonical(outputs[-2], x, np.shape(ref["jacobian"]))
            if relative_error(gradient, ref["jacobian"]) > tolerance_for(backend) * 10 + 1e-14:
                return gradient, ref["jacobian"]
            return canon(outputs[-1], check.expected(ref, f1))

        variants.insert(1, ("combined", combined))
    sparse_result = getattr(backend, "dense_backend", None) is not None and check.name in ("jacobian", "hessian")
    if np.ndim(check.expected(ref, f1)) > 0 and not sparse_result and "pytree" not in scenario.tags:
        variants.append(("out", with_out))
    if seeded:
        s3, f3 = _seed(check, scenario, rng)

        def batched():
            r1, r3 = op(f, backend, x, (s1, s3), *ctx)
            e1, e3 = check.expected(ref, f1), check.expected(ref, f3)
            return np.stack([np.asarray(_canonical(r1, x, np.shape(e1))), np.asarray(_canonical(r3, x, np.shape(e3)))]), \
                np.stack([np.asarray(e1), np.asarray(e3)])

        variants.append(("batched", batched))
    return variants


def check_backend(backend: Any, scenarios: list[Scenario] | None = None,
                  operators: list[OperatorCheck] | None = None, linear_operators: bool | None = None) -> Report:
    """Check ``backend`` against the reference derivatives of ``scenarios``.

    Every applicable operator is run in each variant: plain, ``value_and_``,
    prepared, prepared at one point and reused at another, with an ``out=``
    buffer, and with a batch of seeds.  Cells the engine cannot do in
    principle are ``not supported`` (with the engine's explanation).
    ``linear_operators`` (default: when ``operators`` is not given) adds the
    rows of the Jacobian and Gauss-Newton operators (``J @ v``, ``J.T @ w``,
    blocks, ``G @ v``, and the same after ``update``).

    >>> import diffinterface as di
    >>> from diffinterface.testing import check_backend
    >>> check_backend(di.AutoFiniteDiff(method="complex")).ok
    True
    """
    if linear_operators is None:
        linear_operators = operators is None
    scenarios = default_scenarios() if scenarios is None else scenarios
    operators = OPERATORS if operators is None else operators
    tol_first = tolerance_for(backend)
    # a single finite-difference backend does second order by differencing its own gradient
    base = getattr(backend, "dense_backend", backend)
    tol_second = tolerance_for(SecondOrder(base, base)) if isinstance(base, AutoFiniteDiff) else tol_first
    rng = np.random.default_rng(0)
    report = Report(backend)
    for scenario in scenarios:
        for check in operators:
            if not check.applies(scenario):
                continue
            if check.second_order and "scalar_y" not in scenario.tags:
                continue
            tol = tol_second if check.second_order else tol_first
            for variant, thunk in _variants(check, scenario, backend, rng):
                base = (scenario.name, check.name, variant)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", DenseFallbackWarning)
                        result, expected = thunk()
                except UnsupportedOperationError as error:
                    report.rows.append(Row(*base, UNSUPPORTED, str(error)))
                    continue
                except Exception as error:  # noqa: BLE001 - a report cell, not a crash
                    report.rows.append(Row(*base, ERROR, f"{type(error).__name__}: {error}"))
                    continue
                report.rows.append(_compare(base, result, expected, tol))
    if linear_operators:
        from diffinterface.testing._check_operators import check_linear_operators

        for name, operator, status, detail in check_linear_operators(backend, scenarios):
            report.rows.append(Row(name, operator, "operator", status, detail))
    return report

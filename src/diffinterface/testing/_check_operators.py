"""``check_linear_operators``: the Jacobian and Gauss-Newton operators against closed forms."""

from __future__ import annotations

from typing import Any

import numpy as np

from diffinterface._errors import UnsupportedOperationError
from diffinterface.gauss_newton import gauss_newton_operator
from diffinterface.jacobian_operators import jacobian_operator

__all__ = ["check_linear_operators"]


def check_linear_operators(backend: Any, scenarios: list | None = None) -> list[tuple[str, str, str, str]]:
    """Check the Jacobian and Gauss-Newton operators of ``backend`` on the test
    kit's scenarios: rows ``(scenario, operator, status, detail)`` with status
    ``"ok"``, ``"wrong"``, ``"error"`` or ``"not supported"``.

    Operators: ``J@v``, ``J.T@w``, ``J@V``, ``J.T@W`` (blocks of 2), and
    ``G@v`` (``JᵀJ v + 0.5 v``), each at ``scenario.x`` and again after
    ``update(scenario.x2)`` (``…@x2``), against the closed-form Jacobians.

    >>> import diffinterface as di
    >>> rows = check_linear_operators(di.AutoFiniteDiff(method="complex"))
    >>> all(status == "ok" for _, _, status, _ in rows)
    True
    """
    from diffinterface.testing import default_scenarios, tolerance_for
    from diffinterface.testing._check import relative_error

    tol = tolerance_for(backend)
    rows: list[tuple[str, str, str, str]] = []
    rng = np.random.default_rng(0)
    for scenario in default_scenarios() if scenarios is None else scenarios:
        f = scenario.f_for(backend)
        try:
            J = jacobian_operator(f, backend, scenario.x)
            G = gauss_newton_operator(f, backend, scenario.x, damping=0.5)
        except UnsupportedOperationError as error:
            rows.append((scenario.name, "J, G", "not supported", str(error)))
            continue
        except Exception as error:  # noqa: BLE001 - a report row, not a crash
            rows.append((scenario.name, "J, G", "error", f"{type(error).__name__}: {error}"))
            continue
        for point, suffix in ((scenario.x, ""), (scenario.x2, "@x2")):
            ref = np.asarray(scenario.reference(point)["jacobian"], dtype=float).reshape(J.m, J.n)
            v, w = rng.normal(size=J.n), rng.normal(size=J.m)
            V, W = rng.normal(size=(J.n, 2)), rng.normal(size=(J.m, 2))
            checks = [
                ("J@v", lambda: J @ v, ref @ v), ("J.T@w", lambda: J.T @ w, ref.T @ w),
                ("J@V", lambda: J @ V, ref @ V), ("J.T@W", lambda: J.T @ W, ref.T @ W),
                ("G@v", lambda: G @ v, ref.T @ (ref @ v) + 0.5 * v),
            ]
            if suffix:
                try:
                    J.update(point)
                    G.update(point)
                except Exception as error:  # noqa: BLE001
                    rows.append((scenario.name, "update", "error", f"{type(error).__name__}: {error}"))
                    break
            for name, thunk, expected in checks:
                try:
                    result = thunk()
                except UnsupportedOperationError as error:
                    rows.append((scenario.name, name + suffix, "not supported", str(error)))
                    continue
                except Exception as error:  # noqa: BLE001
                    rows.append((scenario.name, name + suffix, "error", f"{type(error).__name__}: {error}"))
                    continue
                if hasattr(result, "detach"):
                    result = result.detach().cpu().numpy()
                err = relative_error(np.asarray(result), expected)
                status = "ok" if err <= tol else "wrong"
                rows.append((scenario.name, name + suffix, status, f"relative error {err:.1e} (tolerance {tol:.0e})"))
    return rows

"""Every engine, every first-order operator and variant, against the closed-form
references of the default scenarios (``diffinterface.testing``)."""

from __future__ import annotations

import numpy as np
import pytest

from diffinterface.testing import check_backend, default_scenarios, tolerance_for
from diffinterface.testing._check import FIRST_ORDER, relative_error


def test_first_order_report_is_all_ok(backend):
    report = check_backend(backend, operators=FIRST_ORDER)
    assert report.failures() == [], report.table()
    counts = report.counts()
    # every engine can do every first-order operator: no cell is "not supported"
    assert set(counts) == {"ok"}, counts
    # every scenario and operator family was exercised
    assert {row.operator for row in report.rows} == {c.name for c in FIRST_ORDER}
    assert {row.scenario for row in report.rows} == {s.name for s in default_scenarios()}


def test_report_flags_a_wrong_derivative():
    """The kit must be able to fail: a function whose derivative disagrees with
    its scenario's reference is reported as wrong."""
    import diffinterface as di
    from diffinterface.testing import Scenario

    good = default_scenarios()[4]  # vector->scalar
    broken = Scenario("broken", lambda ns: (lambda x: ns.xp.sum(ns.xp.cos(x) * x**2)), good.x, good.x2,
                      good.reference, good.tags)
    report = check_backend(di.AutoFiniteDiff(), scenarios=[broken], operators=FIRST_ORDER)
    assert not report.ok
    assert {row.status for row in report.rows} == {"wrong"}


def test_references_agree_with_high_order_finite_differences():
    """The analytic references themselves, checked against a 4th-order stencil."""
    for scenario in default_scenarios():
        f = scenario.make_f(__import__("diffinterface.testing", fromlist=["x"]).namespace_for(
            __import__("diffinterface").AutoFiniteDiff()))
        x = np.asarray(scenario.x, dtype=float)
        h = 1e-3
        jac = np.zeros(np.shape(scenario.reference(x)["y"]) + x.shape)
        for i in np.ndindex(x.shape or (1,)):
            e = np.zeros(x.shape)
            e[i if x.shape else ()] = 1.0
            d = (-f(x + 2 * h * e) + 8 * f(x + h * e) - 8 * f(x - h * e) + f(x - 2 * h * e)) / (12 * h)
            if x.shape:
                jac[(Ellipsis,) + i] = d
            else:
                jac = np.asarray(d)
        assert relative_error(jac, scenario.reference(x)["jacobian"]) < 1e-9, scenario.name


@pytest.mark.parametrize("method,expected", [("central", 1e-6), ("complex", 1e-12), ("forward", 1e-5)])
def test_finite_difference_tolerances(method, expected):
    import diffinterface as di

    assert tolerance_for(di.AutoFiniteDiff(method=method)) == expected
    assert tolerance_for(di.AutoJAX()) == 1e-10


STRUCTURED_SUPPORT = {
    # engine -> scenarios it cannot do in principle (they must say so, not fail)
    "AutoJAX(mode='reverse')": {"cache", "in-place"},
    "AutoTorch(mode='reverse')": set(),
    "AutoTorch(mode='forward')": set(),
    "AutoAutograd()": {"cache", "in-place"},
    "AutoFiniteDiff(method='central',rel_step=None)": set(),
    "AutoFiniteDiff(method='complex',rel_step=None)": set(),
}


@pytest.mark.parametrize("name", list(STRUCTURED_SUPPORT))
def test_structured_scenarios(name):
    """Constant, Cache, pytrees, in-place functions and a custom rule, per engine."""
    import diffinterface as di
    from diffinterface.testing import structured_scenarios

    backends = [di.AutoJAX(), di.AutoTorch(), di.AutoTorch(mode="forward"), di.AutoAutograd(),
                di.AutoFiniteDiff(), di.AutoFiniteDiff(method="complex")]
    backend = next(b for b in backends if repr(b).replace(" ", "") == name)
    report = check_backend(backend, scenarios=structured_scenarios(), linear_operators=False)
    assert report.failures() == [], report.table()
    unsupported = {row.scenario for row in report.rows if row.status == "not supported"}
    assert unsupported == STRUCTURED_SUPPORT[name]
    for row in report.rows:
        if row.status == "not supported":
            assert "AutoTorch()" in row.detail or "AutoFiniteDiff()" in row.detail, row.detail
    assert {"dict(matrix, vector)", "tuple of vectors", "nested", "custom rule", "constant"} <= {
        row.scenario for row in report.rows if row.status == "ok"}

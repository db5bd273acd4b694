"""The CLI runs and reports agreement / capability."""

from __future__ import annotations

import pytest

from diffinterface import cli


def test_demo_prints_agreement(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "AutoJAX" in out and "AutoFiniteDiff" in out
    worst = float(out.split("largest disagreement between engines (incl. the Jacobian of g):")[1].split()[0])
    assert worst < 1e-8


@pytest.mark.slow
def test_doctor_matrix_is_all_ok(capsys):
    assert cli.main(["doctor"]) == 0
    assert "Capability matrix" in capsys.readouterr().out

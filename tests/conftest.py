"""Shared test set-up: JAX in float64 (inside tests only), engine fixtures."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("jax") is not None:
    import jax

    jax.config.update("jax_enable_x64", True)

import diffinterface as di

HAS = {name: importlib.util.find_spec(name) is not None for name in ("jax", "torch", "autograd")}


def _backends():
    out = []
    if HAS["jax"]:
        out += [di.AutoJAX(), di.AutoJAX(mode="forward")]
    if HAS["torch"]:
        out += [di.AutoTorch(), di.AutoTorch(mode="forward")]
    if HAS["autograd"]:
        out += [di.AutoAutograd()]
    out += [di.AutoFiniteDiff(), di.AutoFiniteDiff(method="forward"), di.AutoFiniteDiff(method="complex")]
    return out


ALL_BACKENDS = _backends()


def backend_id(backend) -> str:
    return repr(backend).replace(" ", "")


@pytest.fixture(params=ALL_BACKENDS, ids=backend_id)
def backend(request):
    return request.param

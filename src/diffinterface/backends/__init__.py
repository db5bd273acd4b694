"""Backend specs (public) and the engine registry (private).

Each engine lives in its own module and is imported only when a backend of
its kind is first used, so ``import diffinterface`` needs NumPy and SciPy only.
"""

from __future__ import annotations

import importlib

from diffinterface._errors import EngineNotInstalledError, InvalidInputError
from diffinterface.backends._engine import Engine, Example
from diffinterface.backends._specs import (
    AbstractBackend,
    AutoAutograd,
    AutoFiniteDiff,
    AutoJAX,
    AutoTorch,
    SecondOrder,
)

__all__ = [
    "AbstractBackend",
    "AutoJAX",
    "AutoTorch",
    "AutoAutograd",
    "AutoFiniteDiff",
    "SecondOrder",
    "Engine",
    "Example",
    "get_engine",
    "ENGINE_PACKAGES",
]

#: engine name -> (module holding the Engine subclass, import name, pip extra)
ENGINE_PACKAGES = {
    "jax": ("diffinterface.backends._jax", "jax", "jax"),
    "torch": ("diffinterface.backends._torch", "torch", "torch"),
    "autograd": ("diffinterface.backends._autograd", "autograd", "autograd"),
    "finite_diff": ("diffinterface.backends._finite_diff", "numpy", None),
}


def get_engine(backend: AbstractBackend) -> Engine:
    """The engine that carries out first-order operators for ``backend``."""
    if not isinstance(backend, AbstractBackend):
        raise InvalidInputError(
            f"backend must be a backend spec such as di.AutoJAX() or di.AutoTorch(), "
            f"not {type(backend).__name__}"
        )
    name = backend.engine_name
    module_name, package, extra = ENGINE_PACKAGES[name]
    try:
        importlib.import_module(package)
    except ImportError as error:
        raise EngineNotInstalledError(
            f"{type(backend).__name__} needs the '{package}' package, which is not installed: "
            f"pip install 'diffinterface[{extra}]'"
        ) from error
    module = importlib.import_module(module_name)
    if isinstance(backend, SecondOrder):
        backend = backend.inner
    dense = getattr(backend, "dense_backend", None)
    if dense is not None:  # AutoSparse: first-order operators other than jacobian are dense
        return get_engine(dense)
    return module.ENGINE(backend)

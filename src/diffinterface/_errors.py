"""Exception hierarchy.

Every error the library raises on purpose is a :class:`DifferentiationError`
whose message says what went wrong, which argument, and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "DifferentiationError",
    "InvalidInputError",
    "PreparationMismatchError",
    "EngineNotInstalledError",
    "UnsupportedOperationError",
    "WrongEngineError",
]


class DifferentiationError(Exception):
    """Base class of every error raised by diffinterface on purpose."""


class InvalidInputError(DifferentiationError, ValueError):
    """An argument has the wrong type, shape or dtype for the operator."""


class PreparationMismatchError(DifferentiationError, ValueError):
    """A call does not match the preparation it was given.

    The message names every argument that differs (function, backend, type,
    shape, dtype, device, contexts, tangents) and what the prep expected.
    """


class EngineNotInstalledError(DifferentiationError, ImportError):
    """An optional engine (JAX, PyTorch, autograd) is not installed."""


class UnsupportedOperationError(DifferentiationError, NotImplementedError):
    """The engine cannot do this in principle; the message names one that can."""


class WrongEngineError(DifferentiationError, TypeError):
    """``f`` is written for another engine than the backend traces with."""

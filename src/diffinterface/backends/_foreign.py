"""Recognising a function written for another engine, and saying so clearly."""

from __future__ import annotations

import traceback
from typing import Any

from diffinterface._errors import WrongEngineError

_LIBRARIES = ("torch", "jax", "autograd", "numpy")
_ADVICE = {
    "torch": "AutoTorch()",
    "jax": "AutoJAX()",
    "autograd": "AutoAutograd()",
    "numpy": "AutoFiniteDiff() (or AutoAutograd() with autograd.numpy)",
}


def library_of_type(obj: Any) -> str:
    module = type(obj).__module__.split(".")[0]
    return {"jaxlib": "jax"}.get(module, module)


def libraries_in_traceback(error: BaseException) -> list[str]:
    """The array libraries whose code appears in the traceback of ``error``."""
    found = []
    for frame in traceback.extract_tb(error.__traceback__):
        path = frame.filename.replace("\\", "/")
        for lib in _LIBRARIES:
            if f"/{lib}/" in path and lib not in found:
                found.append(lib)
    return found


def wrong_output_error(y: Any, display: str, native: str) -> WrongEngineError:
    lib = library_of_type(y)
    advice = _ADVICE.get(lib, "the backend of that library")
    return WrongEngineError(
        f"f returned a {type(y).__module__}.{type(y).__name__} but {display} traces with {native}; "
        f"use {advice}, or write f with {native}"
    )


_MESSAGE_HINTS = (("must be Tensor", "torch"), ("torch.", "torch"), ("Tracer", "jax"), ("jax", "jax"), ("ArrayBox", "autograd"))


def _library_named_in(message: str, own: str) -> str | None:
    for hint, lib in _MESSAGE_HINTS:
        if hint in message and lib != own:
            return lib
    return None


def foreign_code_error(error: BaseException, display: str, native: str, own: str) -> WrongEngineError | None:
    """A WrongEngineError if ``error`` came from another library's code, else None."""
    libs = [lib for lib in libraries_in_traceback(error) if lib != own]
    if own == "autograd":  # autograd.numpy wraps numpy: numpy frames are expected
        libs = [lib for lib in libs if lib != "numpy"]
    foreign = next((lib for lib in libs if lib in ("torch", "jax", "autograd")), None)
    if foreign is None:
        foreign = _library_named_in(str(error), own)
    if foreign is None:
        return None
    return WrongEngineError(
        f"f calls {foreign} code, but {display} traces with {native} "
        f"({type(error).__name__}: {error}); use {_ADVICE[foreign]}, or write f with {native}"
    )

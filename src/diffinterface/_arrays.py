"""Array kinds: which library an input belongs to, and conversions back to it.

Nothing here imports JAX or torch; their types are recognised through
``sys.modules`` so that ``import diffinterface`` stays light.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from diffinterface._errors import InvalidInputError

SCALAR = "scalar"  # a Python float (results come back as Python floats where 0-d)
NUMPY = "numpy"
JAX = "jax"
TORCH = "torch"

_LIBRARY_NAMES = {SCALAR: "a Python float", NUMPY: "a NumPy array", JAX: "a JAX array", TORCH: "a torch.Tensor"}


def library_name(kind: str) -> str:
    return _LIBRARY_NAMES.get(kind, kind)


def array_kind(x: Any) -> str | None:
    """The library of ``x`` (one of the constants above), or None if unknown."""
    if isinstance(x, np.ndarray):
        return NUMPY
    if isinstance(x, (float, int, np.floating, np.integer)) and not isinstance(x, bool):
        return SCALAR
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return TORCH
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.Array):
        return JAX
    return None


def signature(x: Any) -> tuple:
    """What a prep remembers of an argument: type, shape, dtype (and device)."""
    t = type(x)
    if t is float:
        return (t,)
    shape = getattr(x, "shape", None)
    if shape is None:
        return (t,)
    device = x.device if t.__module__.startswith("torch") else None
    return (t, tuple(shape), x.dtype, device)


def matches_signature(x: Any, sig: tuple) -> bool:
    """``signature(x) == sig`` for an array's signature, without building the tuple
    (operators check every ``update`` of a solver's loop)."""
    return (type(x) is sig[0] and len(sig) == 4 and x.shape == sig[1] and x.dtype == sig[2]
            and (sig[3] is None or x.device == sig[3]))


def describe_signature(sig: tuple) -> str:
    if len(sig) == 1:
        return sig[0].__name__
    t, shape, dtype, device = sig
    text = f"{t.__name__} of shape {shape} and dtype {str(dtype).replace('torch.', '')}"
    return text + (f" on {device}" if device is not None else "")


def check_differentiable(name: str, x: Any, allowed: tuple[str, ...], engine_hint: str) -> str:
    """Validate an input to differentiate; return its kind."""
    kind = array_kind(x)
    if kind is None:
        raise InvalidInputError(
            f"{name} has type {type(x).__name__}; pass a float, a NumPy array, or an array of "
            f"the engine's library ({engine_hint})"
        )
    if kind not in allowed:
        raise InvalidInputError(
            f"{name} is {library_name(kind)}, which {engine_hint} does not accept; pass a NumPy "
            f"array or use the backend of that library ({_BACKEND_FOR.get(kind, '?')})"
        )
    dtype = np.asarray(x).dtype if kind == SCALAR else x.dtype
    if kind == SCALAR:
        if isinstance(x, (int, np.integer)):
            raise InvalidInputError(
                f"{name}={x!r} is an integer; derivatives need floating point: pass float({x!r})"
            )
        return kind
    if not _is_floating(dtype):
        raise InvalidInputError(
            f"{name} has dtype {dtype}; derivatives need a floating dtype: convert it, "
            f"for example with .astype(float) or .to(torch.float64)"
        )
    return kind


_BACKEND_FOR = {JAX: "AutoJAX()", TORCH: "AutoTorch()", NUMPY: "any backend"}


def cast_tensor(t: Any, dtype: Any) -> Any:
    """A torch tensor in ``dtype``: itself when it already is one (``t.to(dtype)``
    costs a dispatcher round trip even then, 1-2% of a small product's backward)."""
    return t if t.dtype == dtype else t.to(dtype)


def _is_floating(dtype: Any) -> bool:
    name = str(dtype)
    return "float" in name or "complex" in name


def to_like(result: Any, kind: str) -> Any:
    """Convert an engine result to the library of an input of ``kind``."""
    if kind == NUMPY or kind == SCALAR:
        arr = np.asarray(result)
        if kind == SCALAR and arr.ndim == 0:
            return float(arr)
        # a JAX result viewed as NumPy is read-only: hand out an ordinary array
        # (SciPy's solvers, for one, write into the arrays they are given)
        return arr if arr.flags.writeable else arr.copy()
    return result


def write_out(out: Any, result: Any, name: str = "out") -> Any:
    """Write ``result`` into the buffer ``out`` (in place) and return ``out``."""
    if isinstance(out, tuple):
        if not isinstance(result, tuple) or len(out) != len(result):
            raise InvalidInputError(
                f"{name} is a tuple of {len(out)} buffers but the result is not a tuple of that length"
            )
        return tuple(write_out(o, r, f"{name}[{i}]") for i, (o, r) in enumerate(zip(out, result)))
    kind = array_kind(out)
    if kind == NUMPY:
        value = np.asarray(result)
        if out.shape != value.shape:
            raise InvalidInputError(f"{name} has shape {out.shape} but the result has shape {value.shape}")
        np.copyto(out, value)
        return out
    if kind == TORCH:
        if tuple(out.shape) != tuple(result.shape):
            raise InvalidInputError(
                f"{name} has shape {tuple(out.shape)} but the result has shape {tuple(result.shape)}"
            )
        out.copy_(result)
        return out
    if kind == JAX:
        raise InvalidInputError(
            f"{name} is a JAX array, which is immutable; drop out= and use the returned array"
        )
    raise InvalidInputError(f"{name} must be a NumPy array or torch.Tensor buffer, not {type(out).__name__}")

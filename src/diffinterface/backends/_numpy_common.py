"""Array helpers shared by the NumPy-based engines (autograd, finite differences)."""

from __future__ import annotations

import numpy as np

from diffinterface.backends._foreign import wrong_output_error


class NumPyArrays:
    """Mixin: NumPy as the native array type."""

    native_kind = "numpy"

    def to_native(self, x):
        if isinstance(x, np.ndarray):
            return x
        return np.asarray(x, dtype=np.float64)

    def copy_native(self, x):
        return np.array(x, copy=True)

    def stack(self, arrays):
        return np.stack(arrays)

    def basis(self, shape, dtype):
        return tuple(np.eye(int(np.prod(shape)), dtype=dtype).reshape((-1,) + tuple(shape)))

    def ones(self, shape, dtype):
        return np.ones(shape, dtype=dtype)


def as_numpy_output(y, display: str):
    """``y`` as a NumPy array, or a WrongEngineError if it belongs to another library."""
    if isinstance(y, np.ndarray):
        return y
    if isinstance(y, (float, int, complex, np.generic)):
        return np.asarray(y)
    raise wrong_output_error(y, display, "NumPy")

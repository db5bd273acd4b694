"""Finite differences on NumPy: derivatives of any black-box function.

A pushforward along ``t`` takes one (forward, complex) or two (central)
extra evaluations with the step ``h = rel_step * max(1, |x|_inf) / |t|_inf``.
Jacobians perturb one coordinate at a time with ``h_i = rel_step *
max(1, |x_i|)`` (as SciPy's ``approx_derivative``): ``n`` or ``2n``
evaluations.  There is no reverse mode, so a pullback builds the Jacobian
first; for many pullbacks of a large function prefer an AD engine.
"""

from __future__ import annotations

import numpy as np

from diffinterface._arrays import NUMPY, SCALAR
from diffinterface.backends._engine import Engine
from diffinterface.backends._foreign import foreign_code_error
from diffinterface.backends._numpy_common import NumPyArrays, as_numpy_output

_DEFAULT_STEP = {
    "forward": np.finfo(np.float64).eps ** 0.5,
    "central": np.finfo(np.float64).eps ** (1 / 3),
    "complex": 1e-20,
}


def _real_if_real_input(y, x):
    """A complex Cache buffer makes f complex-valued; at a real x the value is real."""
    return y.real if np.iscomplexobj(y) and not np.iscomplexobj(x) else y


class FiniteDiffEngine(NumPyArrays, Engine):
    accepts = (SCALAR, NUMPY)
    display = "AutoFiniteDiff()"
    mode = "forward"

    def __init__(self, backend):
        super().__init__(backend)
        self.method = backend.method
        self.rel_step = backend.rel_step or _DEFAULT_STEP[backend.method]

    def cache_buffer(self, value):
        dtype = np.result_type(value, complex) if self.method == "complex" else np.result_type(value, float)
        return np.zeros(np.shape(value), dtype=dtype)

    def output_info(self, f, x, ctx, compiled):
        try:
            y = f(np.array(x), *ctx)  # a copy: f may overwrite its argument
        except (TypeError, RuntimeError, AttributeError) as error:
            translated = foreign_code_error(error, self.display, "NumPy", "numpy")
            if translated is not None:
                raise translated from error
            raise
        y = _real_if_real_input(as_numpy_output(y, self.display), x)
        return tuple(y.shape), y.dtype

    def _difference(self, g, x, y, direction, h):
        """The directional derivative of ``g`` at ``x`` along ``direction`` with step ``h``."""
        if self.method == "forward":
            return (np.asarray(g(x + h * direction)) - y) / h
        if self.method == "central":
            return (np.asarray(g(x + h * direction)) - np.asarray(g(x - h * direction))) / (2 * h)
        return np.imag(np.asarray(g(x + 1j * h * direction))) / h

    def build_value_and_pushforward(self, f, ex, compiled):
        def value_and_pushforward(x, tangents, *ctx):
            g = lambda z: f(z, *ctx)
            x = np.array(x)  # f may overwrite its argument: never hand it the caller's array
            y = _real_if_real_input(np.asarray(g(x.copy())), x)
            scale = max(1.0, float(np.max(np.abs(x)))) if np.size(x) else 1.0
            results = []
            for t in tangents:
                t = np.asarray(t, dtype=np.result_type(x))
                size = float(np.max(np.abs(t))) if t.size else 0.0
                if size == 0.0:
                    results.append(np.zeros_like(y))
                    continue
                results.append(self._difference(g, x, y, t, self.rel_step * scale / size))
            return y, tuple(results)

        return value_and_pushforward

    def build_value_and_jacobian(self, f, ex, compiled):
        def value_and_jacobian(x, *ctx):
            g = lambda z: f(z, *ctx)
            x = np.array(x)  # f may overwrite its argument: never hand it the caller's array
            y = _real_if_real_input(np.asarray(g(x.copy())), x)
            flat = np.asarray(x, dtype=np.result_type(x, np.float64)).reshape(-1)
            steps = self.rel_step * np.maximum(1.0, np.abs(flat))
            columns = np.empty((flat.size, y.size), dtype=np.result_type(y, flat))
            for i in range(flat.size):
                direction = np.zeros_like(flat)
                direction[i] = 1.0
                columns[i] = self._difference(g, x, y, direction.reshape(np.shape(x)), steps[i]).reshape(-1)
            return y, columns.T.reshape(y.shape + np.shape(x))

        return value_and_jacobian

    def build_value_and_pullback(self, f, ex, compiled):
        vjac = self.build_value_and_jacobian(f, ex, compiled)
        nx = int(np.prod(ex.x_shape))

        def value_and_pullback(x, cotangents, *ctx):
            y, jac = vjac(x, *ctx)
            flat = jac.reshape(y.size, nx)
            return y, tuple((np.asarray(c).reshape(-1) @ flat).reshape(ex.x_shape) for c in cotangents)

        return value_and_pullback

    def build_value_and_gradient(self, f, ex, compiled):
        return self.build_value_and_jacobian(f, ex, compiled)


ENGINE = FiniteDiffEngine

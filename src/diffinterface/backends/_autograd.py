"""The HIPS autograd engine (reverse mode, with its forward mode for JVPs).

``f`` is written with ``autograd.numpy``.  Gradients use
``autograd.value_and_grad``; pullbacks ``make_vjp`` (one forward pass, then
a loop over cotangents: autograd has no vmap); pushforwards ``make_jvp``.
Preparation traces ``f`` once and refuses a function that silently drops
the trace (plain ``numpy`` calls on autograd's boxes give a zero derivative).
"""

from __future__ import annotations

import warnings

import numpy as np
from autograd import grad as autograd_grad
from autograd import make_jvp, make_vjp, value_and_grad
from autograd.core import VJPNode
from autograd.tracer import trace

from diffinterface._arrays import NUMPY, SCALAR
from diffinterface._errors import UnsupportedOperationError, WrongEngineError
from diffinterface.backends._engine import Engine
from diffinterface.backends._foreign import foreign_code_error
from diffinterface.backends._numpy_common import NumPyArrays, as_numpy_output


def _bind(f, ctx):
    return lambda z: f(z, *ctx)


def _perturbed(x):
    rng = np.random.default_rng(0)
    return x + 1e-3 * (1.0 + np.abs(x)) * rng.uniform(0.5, 1.0, size=np.shape(x))


class AutogradEngine(NumPyArrays, Engine):
    accepts = (SCALAR, NUMPY)
    display = "AutoAutograd()"
    mode = "reverse"

    def cache_buffer(self, value):
        raise UnsupportedOperationError(
            "AutoAutograd() cannot trace writes into a di.Cache buffer (autograd has no in-place "
            "operations); use AutoTorch() or AutoFiniteDiff(), or compute without the buffer"
        )

    def output_info(self, f, x, ctx, compiled):
        g = _bind(f, ctx)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Output seems independent of input")
                y, end_node = trace(VJPNode.new_root(), g, x)
        except (TypeError, ValueError, RuntimeError, AttributeError) as error:
            if "ArrayBox" in str(error) or "setting an array element with a sequence" in str(error):
                raise WrongEngineError(
                    "f turns autograd's traced array into a plain number or NumPy array (float(), "
                    "np.asarray(x, dtype=float), or writing x into a NumPy buffer), which autograd "
                    "cannot trace. Keep x an array in f (autograd.numpy functions), or use "
                    f"AutoFiniteDiff() for black-box NumPy code ({type(error).__name__}: {error})"
                ) from error
            translated = foreign_code_error(error, self.display, "autograd.numpy", "autograd")
            if translated is not None:
                raise translated from error
            raise
        y = as_numpy_output(y, self.display)
        if end_node is None and not np.array_equal(as_numpy_output(g(_perturbed(x)), self.display), y):
            raise WrongEngineError(
                "f depends on x but autograd lost track of it: f is probably written with plain "
                "numpy (or converts x with np.asarray/float), which autograd cannot trace. Write f "
                "with `import autograd.numpy as np`, or use AutoFiniteDiff() for black-box NumPy code"
            )
        return tuple(y.shape), y.dtype

    def build_value_and_pullback(self, f, ex, compiled):
        def value_and_pullback(x, cotangents, *ctx):
            pull, y = make_vjp(_bind(f, ctx))(x)
            return y, tuple(pull(c) for c in cotangents)

        return value_and_pullback

    def build_value_and_pushforward(self, f, ex, compiled):
        def value_and_pushforward(x, tangents, *ctx):
            push = make_jvp(_bind(f, ctx))(x)
            pairs = [push(np.asarray(t, dtype=np.result_type(x))) for t in tangents]
            return pairs[0][0], tuple(t for _, t in pairs)

        return value_and_pushforward

    def build_value_and_gradient(self, f, ex, compiled):
        return lambda x, *ctx: value_and_grad(_bind(f, ctx))(x)

    def build_tree_value_and_gradient(self, f, spec, compiled):
        """Gradient over the leaves of a pytree x (autograd differentiates lists)."""
        def value_and_gradient(leaves, *ctx):
            return value_and_grad(lambda ls: f(spec.unflatten(list(ls)), *ctx))(list(leaves))

        return value_and_gradient

    # --- second order -----------------------------------------------------
    def differentiable_gradient(self, f, outer):
        return lambda z, *ctx: autograd_grad(_bind(f, ctx))(z)

    def hessian_operator_strategies(self, f, ex):
        return [AutogradKeptTrace(f)]


class AutogradKeptTrace:
    """Hessian-operator strategy: ``make_vjp`` of the gradient at each x (one
    traced forward and backward pass, as ``autograd.make_hvp``); each product
    is one reverse pass through the kept trace of the gradient."""

    name = "kept_trace"

    def __init__(self, f):
        self.f = f

    def setup(self, x, ctx):
        g = _bind(self.f, ctx)
        value = {}

        def gradient_recording_value(z):
            y, grad_z = value_and_grad(g)(z)
            value["y"] = getattr(y, "_value", y)
            return grad_z

        pull, gradient = make_vjp(gradient_recording_value)(x)
        return {"pull": pull, "gradient": gradient, "value": value["y"]}

    def apply(self, state, tangents):
        if np.ndim(tangents) == np.ndim(state["gradient"]):
            return state["pull"](tangents)
        return np.stack([state["pull"](t) for t in tangents])

    def value_and_gradient(self, state):
        return state["value"], state["gradient"]


ENGINE = AutogradEngine

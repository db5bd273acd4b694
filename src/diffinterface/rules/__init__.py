"""Derivative rules written once, honoured by every engine.

``@custom_rule`` declares a function by its *primal*, written with NumPy (or
the array API), so that it may wrap a black box: a compiled library,
``scipy.integrate.solve_ivp``, an external simulator.  Its derivatives are
declared once::

    @di.custom_rule
    def sumsq(x):
        return np.sum(x * x)

    sumsq.def_jvp(lambda primals, tangents: 2 * np.sum(primals[0] * tangents[0]))
    sumsq.def_vjp(lambda primals, out, ybar: (2 * primals[0] * ybar,))

and the decorated function then works wherever it is called:

============================  ==============================================
argument types                what ``sumsq(x)`` does
============================  ==============================================
JAX arrays or tracers         ``jax.custom_jvp`` around ``jax.pure_callback``;
                              the tangent map is a linear JAX primitive whose
                              transpose is the VJP rule, so ``jax.jvp``,
                              ``jax.grad``, ``jax.vmap`` (sequential), ``jit``
                              and forward-over-reverse all work
torch tensors                 a ``torch.autograd.Function`` with ``backward``,
                              ``jvp`` (forward mode) and a ``vmap`` staticmethod
                              (``torch.func`` transforms, sequential batching)
autograd ``ArrayBox``         an autograd primitive with ``defvjp``/``defjvp``
the NumPy detection tracer    the declared Jacobian pattern (``def_sparsity``),
                              or every output on every input, with a warning
plain NumPy / Python numbers  the primal itself (finite differences call this)
============================  ==============================================

Rule signatures (``primals`` is the tuple of the function's arguments, as
NumPy arrays; the function returns one array):

* ``def_jvp(rule)``: ``rule(primals, tangents) -> output tangent``;
* ``def_vjp(rule)``: ``rule(primals, out, cotangent) -> tuple of input
  cotangents`` (one per argument);
* ``def_hvp(rule)``: ``rule(primals, tangents, cotangent) -> tuple``, the
  derivative of the VJP rule along ``tangents`` (for a scalar function and
  ``cotangent = 1`` that is the Hessian-vector product).  Without it,
  second-order derivatives through the rule are central finite differences
  of the VJP (or JVP) rule;
* ``def_sparsity(pattern)``: the Jacobian pattern.  One argument: a boolean
  matrix (scipy sparse or dense) of shape ``(y.size, x.size)``.  Several
  arguments: a tuple with one ``(y.size, x_i.size)`` block per argument, or
  one matrix of shape ``(y.size, x_1.size + ... + x_k.size)`` (the blocks side
  by side, in argument order).  A callable ``pattern(*shapes)`` returning any
  of these is accepted too, for functions of any size.  ``linear=True``
  declares the function linear (no Hessian entries); otherwise the Hessian
  pattern conservatively couples all inputs each output depends on.

Missing rules: a JVP is derived from the VJP rule (one call per output
element) and a VJP from the JVP rule (one call per input element) when that
is at most ``derive_limit`` calls (default 64); otherwise an
:class:`~diffinterface.UnsupportedOperationError` names the missing
``def_*``.

Second order: every engine differentiates the rules once more (the
``def_hvp`` rule, or central differences of the VJP/JVP rules), so
forward-over-reverse and reverse-over-reverse Hessian-vector products,
``jax.hessian``, ``torch.func.hessian`` and autograd's ``hessian`` work; a
third derivative through a rule raises ``UnsupportedOperationError``.

Mutation safety: every rule receives snapshots: the primal inputs and output
are copied when the function is called, so code that overwrites its inputs
afterwards (``s = sumsq(x); x[:] = 0; return s``) still gets the derivative
at the original ``x``.  With torch, overwriting a leaf that requires grad is
an error in torch itself; overwriting a clone or an intermediate works (the
snapshots are extra outputs of the ``autograd.Function``, so double backward
still reaches ``x``).  JAX arrays and autograd's boxes cannot be overwritten.
Under finite differences ``f`` itself must not overwrite the ``x`` it is
given if that is the caller's array (the engine evaluates ``f`` there).

Imports of JAX, torch and autograd happen only when the rule meets their
arrays: ``import diffinterface.rules`` needs NumPy and SciPy alone.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from typing import Callable

import numpy as np

from diffinterface._errors import InvalidInputError, UnsupportedOperationError

__all__ = ["CustomRule", "custom_rule", "rule_from_id"]

_REGISTRY: dict[int, "CustomRule"] = {}
_IDS = itertools.count(1)
_EPS3 = np.finfo(np.float64).eps ** (1 / 3)


def rule_from_id(rule_id: int) -> "CustomRule":
    """The rule registered under ``rule_id`` (used by the torch custom op)."""
    return _REGISTRY[int(rule_id)]


def custom_rule(fn: Callable | None = None, *, output_shape=None, derive_limit: int = 64):
    """Decorate a NumPy primal; declare its derivatives with ``def_jvp`` / ``def_vjp``.

    ``output_shape``: the output shape as a tuple, or a callable
    ``(*input_shapes) -> shape``.  JAX and torch's fake tensors need it before
    any value exists; without it the primal is run once on zeros (then ones)
    of the input shapes to learn it, and the result is cached per shape.
    """
    if fn is None:
        return lambda f: CustomRule(f, output_shape=output_shape, derive_limit=derive_limit)
    return CustomRule(fn, output_shape=output_shape, derive_limit=derive_limit)


def _snapshot(a):
    return np.array(a, copy=True)


def _kind(a) -> str:
    module = type(a).__module__
    if module.startswith(("jax", "jaxlib")):
        return "jax"
    if module.startswith("torch"):
        return "torch"
    if module.startswith("autograd"):
        return "autograd"
    if module == "diffinterface.sparse.detection._numpy_tracer":
        return "tracer"
    return "numpy"


def _zeros_tangent(t, x):
    return np.zeros(np.shape(x), dtype=np.result_type(x, float)) if t is None else np.asarray(t)


class CustomRule:
    """A NumPy primal with derivative rules; see the module docstring."""

    def __init__(self, fn: Callable, *, output_shape=None, derive_limit: int = 64) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = getattr(fn, "__name__", "custom_rule")
        self.output_shape = output_shape
        self.derive_limit = derive_limit
        self.jvp_rule: Callable | None = None
        self.vjp_rule: Callable | None = None
        self.hvp_rule: Callable | None = None
        self.sparsity = None
        self.linear = False
        self.id = next(_IDS)
        _REGISTRY[self.id] = self
        self._out_cache: dict = {}
        self._engines: dict = {}

    def __repr__(self) -> str:
        declared = [n for n, r in (("jvp", self.jvp_rule), ("vjp", self.vjp_rule), ("hvp", self.hvp_rule),
                                   ("sparsity", self.sparsity)) if r is not None]
        return f"custom_rule({self.name}, rules={declared})"

    def __reduce__(self):  # picklable by reference where the primal is
        return (rule_from_id, (self.id,))

    # --- declaring ---------------------------------------------------------
    def def_jvp(self, rule: Callable) -> Callable:
        """``rule(primals, tangents) -> output tangent``; returns ``rule`` (usable as a decorator)."""
        self.jvp_rule = rule
        return rule

    def def_vjp(self, rule: Callable) -> Callable:
        """``rule(primals, out, cotangent) -> tuple of input cotangents``."""
        self.vjp_rule = rule
        return rule

    def def_hvp(self, rule: Callable) -> Callable:
        """``rule(primals, tangents, cotangent) -> tuple``: the JVP of the VJP rule."""
        self.hvp_rule = rule
        return rule

    def def_sparsity(self, pattern, *, linear: bool = False):
        """The Jacobian pattern (see the module docstring for the multi-argument convention)."""
        self.sparsity = pattern
        self.linear = bool(linear)
        return pattern

    # --- calling -----------------------------------------------------------
    def __call__(self, *args):
        kinds = {_kind(a) for a in args}
        if "tracer" in kinds:
            return _trace_numpy(self, args)
        if "jax" in kinds:
            from diffinterface.rules._jax import call_jax

            return call_jax(self, args)
        if "torch" in kinds:
            from diffinterface.rules._torch import call_torch

            return call_torch(self, args)
        if "autograd" in kinds:
            from diffinterface.rules._autograd import call_autograd

            return call_autograd(self, args)
        return self.fn(*args)

    # --- NumPy-level rules (shared by every engine) --------------------------
    def primal(self, xs) -> np.ndarray:
        """The primal on snapshots of ``xs``, as an array of the inputs' float type."""
        xs = [_snapshot(x) for x in xs]
        y = np.asarray(self.fn(*xs))
        return y

    def out_struct(self, shapes, dtypes):
        """(shape, dtype) of the output for inputs of these shapes and dtypes."""
        key = (tuple(map(tuple, shapes)), tuple(str(np.dtype(d)) for d in dtypes))
        if key in self._out_cache:
            return self._out_cache[key]
        dtype = np.result_type(*[np.dtype(d) for d in dtypes], np.float16)
        if self.output_shape is not None:
            shape = self.output_shape(*shapes) if callable(self.output_shape) else self.output_shape
            shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        else:
            shape = None
            errors = []
            for fill in (np.zeros, np.ones):
                try:
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        shape = np.shape(self.fn(*[fill(s, dtype=d) for s, d in zip(shapes, dtypes)]))
                    break
                except Exception as error:  # noqa: BLE001 - reported below
                    errors.append(error)
            if shape is None:
                raise InvalidInputError(
                    f"custom_rule {self.name}: cannot learn the output shape (the primal failed on "
                    f"zeros and ones: {errors[-1]!r}); pass it: @custom_rule(output_shape=...)"
                )
        self._out_cache[key] = (tuple(shape), dtype)
        return self._out_cache[key]

    def _derive_check(self, calls: int, missing: str, have: str) -> None:
        if calls > self.derive_limit:
            raise UnsupportedOperationError(
                f"custom_rule {self.name} has no {missing} rule: deriving it from {have} "
                f"would take {calls} calls (more than derive_limit={self.derive_limit}); "
                f"declare it with {self.name}.{missing}(...)"
            )

    def _no_rules(self, what: str) -> UnsupportedOperationError:
        return UnsupportedOperationError(
            f"custom_rule {self.name} has no derivative rule for {what}: declare "
            f"{self.name}.def_jvp(rule) (forward mode) and/or {self.name}.def_vjp(rule) (reverse mode)"
        )

    def require(self, kind: str, size: int) -> None:
        """Raise now (at trace time) if the ``kind`` ("jvp"/"vjp") rule is missing and cannot
        be derived; ``size``: output elements (for "jvp") or input elements (for "vjp")."""
        if self.jvp_rule is None and self.vjp_rule is None:
            raise self._no_rules("a pushforward (JVP)" if kind == "jvp" else "a pullback (VJP)")
        if kind == "jvp" and self.jvp_rule is None:
            self._derive_check(size, "def_jvp", "def_vjp (one call per output element)")
        if kind == "vjp" and self.vjp_rule is None:
            self._derive_check(size, "def_vjp", "def_jvp (one call per input element)")

    def jvp(self, xs, ts) -> np.ndarray:
        """``J(xs) ts`` with the JVP rule, or derived from the VJP rule."""
        xs = [_snapshot(x) for x in xs]
        ts = [_zeros_tangent(t, x) for t, x in zip(ts, xs)]
        if self.jvp_rule is not None:
            return np.asarray(self.jvp_rule(tuple(xs), tuple(ts)))
        y = self.primal(xs)
        self.require("jvp", y.size)
        out = np.empty(y.size, dtype=np.result_type(y, *ts, float))
        for k in range(y.size):
            e = np.zeros(y.size, dtype=out.dtype)
            e[k] = 1.0
            rows = self._vjp_rule(xs, y, e.reshape(y.shape))
            out[k] = sum(np.vdot(np.asarray(r), t) for r, t in zip(rows, ts))
        return out.reshape(y.shape)

    def _vjp_rule(self, xs, y, ct):
        result = self.vjp_rule(tuple(xs), y, ct)
        if not isinstance(result, (tuple, list)):
            if len(xs) == 1:
                result = (result,)
            else:
                raise InvalidInputError(
                    f"custom_rule {self.name}: the VJP rule must return a tuple of {len(xs)} "
                    f"cotangents (one per argument), got {type(result).__name__}"
                )
        if len(result) != len(xs):
            raise InvalidInputError(
                f"custom_rule {self.name}: the VJP rule returned {len(result)} cotangents "
                f"for {len(xs)} arguments"
            )
        return tuple(_zeros_tangent(r, x).reshape(np.shape(x)) for r, x in zip(result, xs))

    def vjp(self, xs, y, ct) -> tuple:
        """``J(xs)^T ct`` per argument, with the VJP rule or derived from the JVP rule."""
        xs = [_snapshot(x) for x in xs]
        y = _snapshot(y)
        ct = np.asarray(ct)
        if self.vjp_rule is not None:
            return self._vjp_rule(xs, y, ct)
        self.require("vjp", sum(int(np.size(x)) for x in xs))
        result = []
        for i, x in enumerate(xs):
            g = np.empty(np.size(x), dtype=np.result_type(x, ct, float))
            for k in range(np.size(x)):
                ts = [np.zeros(np.shape(z), dtype=np.result_type(z, float)) for z in xs]
                ts[i].reshape(-1)[k] = 1.0
                g[k] = np.vdot(ct, np.asarray(self.jvp_rule(tuple(xs), tuple(ts))))
            result.append(g.reshape(np.shape(x)))
        return tuple(result)

    def _step(self, xs, ts):
        scale = max([1.0] + [float(np.max(np.abs(x))) for x in xs if np.size(x)])
        size = max([0.0] + [float(np.max(np.abs(t))) for t in ts if np.size(t)])
        return None if size == 0.0 else _EPS3 * scale / size

    def hvp(self, xs, ts, ct) -> tuple:
        """``d/de vjp(xs + e ts, ct)``: the ``def_hvp`` rule, or central differences."""
        xs = [_snapshot(x) for x in xs]
        ts = [_zeros_tangent(t, x) for t, x in zip(ts, xs)]
        if self.hvp_rule is not None:
            result = self.hvp_rule(tuple(xs), tuple(ts), np.asarray(ct))
            result = (result,) if not isinstance(result, (tuple, list)) else result
            return tuple(_zeros_tangent(r, x).reshape(np.shape(x)) for r, x in zip(result, xs))
        h = self._step(xs, ts)
        if h is None:
            return tuple(np.zeros(np.shape(x), dtype=np.result_type(x, float)) for x in xs)
        plus = [x + h * t for x, t in zip(xs, ts)]
        minus = [x - h * t for x, t in zip(xs, ts)]
        gp = self.vjp(plus, self.primal(plus), ct)
        gm = self.vjp(minus, self.primal(minus), ct)
        return tuple((a - b) / (2 * h) for a, b in zip(gp, gm))

    def jvp_of_jvp(self, xs, ts, dxs) -> np.ndarray:
        """``d/de J(xs + e dxs) ts`` by central differences of the JVP."""
        xs = [_snapshot(x) for x in xs]
        dxs = [_zeros_tangent(d, x) for d, x in zip(dxs, xs)]
        h = self._step(xs, dxs)
        if h is None:
            return np.zeros_like(self.jvp(xs, ts))
        plus = [x + h * d for x, d in zip(xs, dxs)]
        minus = [x - h * d for x, d in zip(xs, dxs)]
        return (self.jvp(plus, ts) - self.jvp(minus, ts)) / (2 * h)

    # --- sparsity ------------------------------------------------------------
    def pattern_blocks(self, shapes, m: int):
        """One boolean csr (m, x_i.size) per argument, or None if undeclared."""
        import scipy.sparse as sp

        pattern = self.sparsity
        if pattern is None:
            return None
        if callable(pattern) and not sp.issparse(pattern):
            pattern = pattern(*shapes)
        sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
        if isinstance(pattern, (tuple, list)):
            blocks = [sp.csr_matrix(b if sp.issparse(b) else np.asarray(b), dtype=bool) for b in pattern]
        else:
            whole = sp.csr_matrix(pattern if sp.issparse(pattern) else np.asarray(pattern), dtype=bool)
            if whole.shape[1] != sum(sizes):
                raise InvalidInputError(
                    f"custom_rule {self.name}: the declared pattern has {whole.shape[1]} columns but "
                    f"the arguments have {sum(sizes)} elements in all; pass shape (y.size, x.size) "
                    "or a tuple of (y.size, x_i.size) blocks"
                )
            edges = np.cumsum([0] + sizes)
            blocks = [whole[:, edges[i]:edges[i + 1]] for i in range(len(sizes))]
        if len(blocks) != len(sizes) or any(b.shape != (m, s) for b, s in zip(blocks, sizes)):
            raise InvalidInputError(
                f"custom_rule {self.name}: the declared pattern blocks have shapes "
                f"{[b.shape for b in blocks]}, expected {[(m, s) for s in sizes]}"
            )
        return blocks

    def pattern_node(self, trace, nodes, shapes, out_shape):
        """The output's dependency node in a detection ``trace`` (shared algebra)."""
        m = int(np.prod(out_shape, dtype=np.int64))
        blocks = self.pattern_blocks(shapes, m)
        if blocks is None:
            return trace.dense_op(
                f"custom_rule {self.name} (declare {self.name}.def_sparsity(pattern) for a sparse result)",
                nodes, out_shape, warn=True)
        parts = [(nd, b) for nd, b in zip(nodes, blocks) if nd is not None]
        out = trace._finish(out_shape, parts)
        if out is not None and not self.linear:
            trace._event(out, out.pat, out.pat)
        return out


def _trace_numpy(rule: CustomRule, args):
    """The NumPy detection tracer met the rule: its declared pattern (or dense)."""
    from diffinterface.sparse.detection._numpy_tracer import Tracer

    ctx = next(a._ctx for a in args if isinstance(a, Tracer))
    vals = [np.asarray(a._v) if isinstance(a, Tracer) else np.asarray(a) for a in args]
    value = np.asarray(rule.fn(*[_snapshot(v) for v in vals]))
    nodes = [a._nd if isinstance(a, Tracer) else None for a in args]
    node = rule.pattern_node(ctx.trace, nodes, [v.shape for v in vals], value.shape)
    dep = any(isinstance(a, Tracer) and a._dep for a in args)
    return ctx.wrap(value, node, dep)

"""Preparation: what can be built once for an operator, and the check that a
later call matches it.

``prepare_<op>(f, backend, x, ...)`` returns a :class:`Prep`.  Passing it back
as ``prep=`` skips every set-up step: the engine callables (traced, compiled
or transformed) are reused for any new ``x`` of the same type, shape, dtype
and device.  A call that differs raises :class:`PreparationMismatchError`
naming each argument that differs.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from diffinterface._arrays import check_differentiable, describe_signature, signature
from diffinterface._errors import InvalidInputError, PreparationMismatchError
from diffinterface.backends import Example, get_engine
from diffinterface.contexts import unwrap_contexts
from diffinterface.inplace import InPlace
from diffinterface.tree import is_tree, ravel_leaves, tree_spec

__all__ = ["Prep", "prepare", "context_kinds"]


def context_kinds(contexts: tuple) -> tuple:
    return tuple(type(c) for c in contexts)


class Prep:
    """Prepared state for one operator family (``op`` and ``value_and_op``).

    Holds the engine callables, the signature of the arguments it was built
    for, and a private copy of nothing the caller can mutate.
    """

    __slots__ = (
        "family", "f", "backend", "engine", "x_sig", "x_kind", "ctx_kinds",
        "seed_info", "example", "compiled", "_fns", "f_engine", "x_spec", "y_spec", "_fast", "__weakref__",
    )

    def __init__(self, family, f, backend, engine, x_sig, x_kind, ctx_kinds, seed_info, example, compiled):
        self.family = family
        self.f = f
        self.backend = backend
        self.engine = engine
        self.x_sig = x_sig
        self.x_kind = x_kind
        self.ctx_kinds = ctx_kinds
        self.seed_info = seed_info
        self.example = example
        self.compiled = compiled
        self._fns: dict[str, Callable] = {}
        self.f_engine = f  # what the engine differentiates (the flat version for pytrees)
        self.x_spec = None  # TreeSpec of a pytree x, else None
        self.y_spec = None
        # (type, shape, dtype, device, convert results, sparse results, x already native): the hot path's checks
        self._fast = None

    def __repr__(self) -> str:
        return (
            f"Prep({self.family}, backend={self.backend!r}, x={describe_signature(self.x_sig)}, "
            f"y shape={self.example.y_shape})"
        )

    def fn(self, op: str) -> Callable:
        """The engine callable for ``op``, built on first use."""
        fn = self._fns.get(op)
        if fn is None:
            fn = getattr(self.engine, "build_" + op)(self.f_engine, self.example, self.compiled)
            self._fns[op] = fn
        return fn

    def fast_path(self, op: str, f: Callable, family: str, backend: Any, x: Any, seed: Any = None,
                  seed_name: str = "") -> Any:
        """The result of ``op`` at ``x`` when the call needs no conversion work
        beyond the engine call (array x, no contexts, seeds or out), else None.
        Keeps a prepared call's Python overhead to a few attribute checks."""
        fast = self._fast
        if (fast is None or type(x) is not fast[0] or f is not self.f or family != self.family
                or not (backend is self.backend or backend == self.backend)
                or x.shape != fast[1] or x.dtype != fast[2]
                or (fast[3] is not None and x.device != fast[3])):
            return None
        if fast[5] and (seed is not None or not op.endswith(("jacobian", "hessian")) or op.startswith("value")):
            return None  # sparse results: only the plain jacobian/hessian take the hot path
        fn = self._fns.get(op) or self.fn(op)
        convert = fast[4]
        native = fast[6]  # x is already what the engine takes
        if seed is not None:
            if (type(seed) is not fast[0] or seed.shape != (fast[1] if seed_name == "tx" else self.example.y_shape)
                    or self.seed_info != 1):
                return None
            native_seed = (seed if native else self.engine.to_native(seed),)
            out = fn(x if native else self.engine.to_native(x), native_seed)
            if op.startswith("value_and_"):
                y, (result,) = out
                return (y, result) if convert is None else (_value(y), convert(result))
            if op == "gradient_and_hvp":
                g, (result,) = out
                return (g, result) if convert is None else (convert(g), convert(result))
            return out[0] if convert is None else convert(out[0])
        if op.startswith("value_and_"):
            y, result = fn(x if native else self.engine.to_native(x))
            if convert is None:
                return y, result
            return _value(y), convert(result)
        result = fn(x if native else self.engine.to_native(x))
        return result if convert is None else convert(result)

    def matches(self, family: str, f: Callable, backend: Any, x: Any, contexts: tuple) -> bool:
        return (
            (f is self.f or (isinstance(f, InPlace) and f == self.f))
            and family == self.family
            and (backend is self.backend or backend == self.backend)
            and _signature_of(x, self.x_spec) == self.x_sig
            and (not contexts and not self.ctx_kinds or context_kinds(contexts) == self.ctx_kinds)
        )

    def mismatch(self, family: str, f: Callable, backend: Any, x: Any, contexts: tuple) -> PreparationMismatchError:
        problems = []
        if family != self.family:
            problems.append(f"operator: the prep was made by prepare_{self.family}, not prepare_{family}")
        if not (f is self.f or (isinstance(f, InPlace) and f == self.f)):
            problems.append(f"f: the prep was made for {_name(self.f)}, this call passes {_name(f)}")
        if not (backend is self.backend or backend == self.backend):
            problems.append(f"backend: prepared with {self.backend!r}, called with {backend!r}")
        sig = _signature_of(x, self.x_spec)
        if sig != self.x_sig:
            if self.x_spec is not None or is_tree(x):
                problems.append(f"x: prepared for the pytree {self.x_sig}, called with {sig}")
            else:
                problems.append(
                    f"x: prepared for {describe_signature(self.x_sig)}, called with {describe_signature(sig)}"
                )
        kinds = context_kinds(contexts)
        if kinds != self.ctx_kinds:
            problems.append(
                "contexts: prepared with ("
                + ", ".join(k.__name__ for k in self.ctx_kinds)
                + "), called with ("
                + ", ".join(k.__name__ for k in kinds)
                + ")"
            )
        return PreparationMismatchError(
            "this call does not match its prep; prepare again for the new arguments or fix:\n  "
            + "\n  ".join(problems)
        )


def _writable_numpy(result: Any) -> Any:
    arr = np.asarray(result)
    return arr if arr.flags.writeable else arr.copy()


def check_update(prepared: tuple, ctx_kinds: tuple, x: Any, contexts: tuple, builder: str) -> None:
    """Raise PreparationMismatchError if an operator's ``update(x, *contexts)`` differs from
    the point and context kinds it was built for (``builder``: the function to call instead)."""
    sig = signature(x)
    if sig != prepared:
        raise PreparationMismatchError(
            f"x: the operator was prepared for {describe_signature(prepared)}, update got "
            f"{describe_signature(sig)}; build a new operator with di.{builder}"
        )
    if contexts and context_kinds(contexts) != ctx_kinds:
        raise PreparationMismatchError(
            "contexts: update got other context kinds than the operator was built with; pass "
            "the same di.Constant/di.Cache wrappers in the same order"
        )


def _value(y: Any) -> Any:
    y = np.asarray(y)
    return y[()] if y.ndim == 0 else y


def _fast_signature(x: Any, kind: str, engine: Any) -> tuple | None:
    """What the hot path compares, and how it converts results (None: as they are)."""
    if kind not in ("numpy", "jax", "torch"):
        return None
    result_like = getattr(engine, "result_like", None)
    if result_like is not None:  # sparse results: the engine builds them
        if not engine.compiles:  # only the jitted (JAX) sparse path gains from it
            return None
        device = x.device if kind == "torch" else None
        native = kind == getattr(engine, "native_kind", None)
        return (type(x), tuple(x.shape), x.dtype, device, lambda r: result_like(r, kind), True, native)
    native = kind == getattr(engine, "native_kind", None)
    if not native and kind != "numpy":
        return None
    convert = None if native else _writable_numpy
    device = x.device if kind == "torch" else None
    return (type(x), tuple(x.shape), x.dtype, device, convert, False, native)


def _signature_of(x: Any, spec: Any) -> tuple:
    if spec is None and not is_tree(x):
        return signature(x)
    try:
        return ("pytree",) + tree_spec(x).signature()
    except (ValueError, TypeError):
        return (type(x),)


def _name(f: Callable) -> str:
    return getattr(f, "__qualname__", None) or repr(f)


def prepare(
    family: str,
    f: Callable,
    backend: Any,
    x: Any,
    contexts: tuple,
    seeds: tuple | None = None,
    compiled: bool = True,
) -> Prep:
    """Build a :class:`Prep` for ``family`` (an operator name without ``value_and_``)."""
    if not callable(f) and not isinstance(f, InPlace):
        raise InvalidInputError(f"f must be callable, got {type(f).__name__}")
    if is_tree(x):
        return _prepare_tree(family, f, backend, x, contexts, seeds, compiled)
    if getattr(backend, "dense_backend", None) is not None:
        from diffinterface.sparse._autosparse import sparse_engine

        engine = sparse_engine(family, backend)
    elif family in SECOND_ORDER_FAMILIES:
        from diffinterface.backends._second_order import get_second_order_engine

        engine = get_second_order_engine(backend)
    else:
        engine = get_engine(backend)
    kind = check_differentiable("x", x, engine.accepts, engine.display)
    ctx = unwrap_contexts(contexts, engine)
    f_engine = f
    if isinstance(f, InPlace):
        f_engine = f.out_of_place(family, backend)
    xn = engine.to_native(x)
    if compiled:
        xn = engine.copy_native(xn)
    y_shape, y_dtype = engine.output_info(f_engine, xn, ctx, compiled)
    x_shape = tuple(getattr(xn, "shape", ()))
    _validate_family(family, backend, x_shape, y_shape)
    if seeds is not None:
        if family in ("pushforward", "hvp"):
            check_seed_shapes(seeds, "tx", x_shape, "x")
        else:
            check_seed_shapes(seeds, "ty", y_shape, "f(x)")
    batch = len(seeds) if seeds is not None else 1
    example = Example(x_shape, getattr(xn, "dtype", None), y_shape, y_dtype, batch)
    prep = Prep(family, f, backend, engine, signature(x), kind, context_kinds(contexts),
                seeds_info(seeds), example, compiled)
    prep.f_engine = f_engine
    prep._fast = None if contexts or is_tree(x) else _fast_signature(x, kind, engine)
    if compiled and engine.compiles:
        native_seeds = () if seeds is None else (tuple(engine.to_native(s) for s in seeds),)
        prep.fn(family)(xn, *native_seeds, *ctx)
    return prep


def seeds_info(seeds: tuple | None) -> Any:
    return None if seeds is None else len(seeds)


def check_seed_shapes(seeds: tuple, name: str, expected: tuple, against: str) -> None:
    for i, seed in enumerate(seeds):
        shape = tuple(np.shape(seed))
        if shape != expected:
            label = f"{name}[{i}]" if len(seeds) > 1 else name
            raise InvalidInputError(
                f"{label} has shape {shape} but must have the shape of {against}, {expected}"
            )


SECOND_ORDER_FAMILIES = frozenset({"hvp", "hessian", "second_derivative"})


def _validate_family(family: str, backend: Any, x_shape: tuple, y_shape: tuple) -> None:
    if family in SECOND_ORDER_FAMILIES and y_shape != ():
        raise InvalidInputError(
            f"{family} needs a scalar-valued f, but f returned an array of shape {y_shape}; "
            "second-order operators differentiate scalar functions"
        )
    if family == "second_derivative" and x_shape != ():
        raise InvalidInputError(
            f"second_derivative needs a scalar x, but x has shape {x_shape}; use di.hessian or di.hvp"
        )
    if family == "gradient" and y_shape != ():
        raise InvalidInputError(
            f"gradient needs a scalar-valued f, but f returned an array of shape {y_shape}; "
            "use di.jacobian, or di.pullback with a cotangent, for array outputs"
        )
    if family == "derivative" and x_shape != ():
        raise InvalidInputError(
            f"derivative needs a scalar x, but x has shape {x_shape}; use di.jacobian or "
            "di.pushforward for array inputs"
        )


def flat_function(f: Callable, x_spec: Any, tree_output: bool) -> Callable:
    """``f`` of a pytree as a function of its flat vector (and of a flat output)."""
    unravel = x_spec.unravel
    if not tree_output:
        return lambda v, *ctx: f(unravel(v), *ctx)

    def flat_f(v, *ctx):
        y = f(unravel(v), *ctx)
        return ravel_leaves(tree_spec(y).leaves(y))

    return flat_f


def _prepare_tree(family, f, backend, x, contexts, seeds, compiled) -> Prep:
    if family in ("derivative", "second_derivative"):
        raise InvalidInputError(f"{family} needs a scalar x, not a pytree; use gradient, jacobian or hessian")
    try:
        x_spec = tree_spec(x)
    except ValueError as error:
        raise InvalidInputError(f"x is a pytree with no array leaves: {error}") from error
    kinds = {k for k in x_spec.kinds if k != "scalar"}
    if len(kinds) > 1 or None in x_spec.kinds:
        raise InvalidInputError(
            f"x is a pytree whose leaves are {sorted(map(str, x_spec.kinds))}; all leaves must be "
            "arrays of one library (or floats)"
        )
    x_flat = x_spec.ravel(x)
    # the output structure, from one evaluation on the engine's own arrays
    y = f(x_spec.unravel(get_engine(backend).to_native(x_flat)), *unwrap_contexts(contexts))
    y_spec = tree_spec(y) if is_tree(y) else None
    flat_seeds = None
    if seeds is not None and family == "pullback" and y_spec is not None and len(seeds) == len(y_spec.shapes) \
            and tree_spec(tuple(seeds)).signature()[:2] == y_spec.signature()[:2]:
        seeds = (tuple(seeds),)  # one tuple-structured cotangent, not a batch
    if seeds is not None:
        spec = x_spec if family in ("pushforward", "hvp") else y_spec
        flat_seeds = tuple(spec.ravel(s) if spec is not None else s for s in seeds)
    prep = prepare(family, flat_function(f, x_spec, y_spec is not None), backend, x_flat, contexts,
                   flat_seeds, compiled)
    prep.f_engine = prep.f
    prep.f = f
    prep.x_spec, prep.y_spec = x_spec, y_spec
    prep.x_sig = ("pytree",) + x_spec.signature()
    return prep

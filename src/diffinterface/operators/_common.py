"""The single call path every operator goes through: prep lookup or check,
seed validation, the engine call, and conversion back to x's library."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from diffinterface._arrays import NUMPY, SCALAR, to_like, write_out
from diffinterface._errors import InvalidInputError, PreparationMismatchError
from diffinterface.contexts import unwrap_contexts
from diffinterface.prep import Prep, check_seed_shapes, prepare
from diffinterface.tree import is_tree, nest_jacobian


def seed_batch_for(seeds: Any, name: str, x: Any) -> tuple:
    """The batch of seeds of ``prepare_*``: a tuple-structured pytree x takes one tuple tangent."""
    if name == "tx" and is_tree(x) and _same_structure(seeds, x):
        return (seeds,)
    return as_seed_batch(seeds, name)[1]


def value_like(y: Any, kind: str) -> Any:
    """Convert a primal value: NumPy-kind 0-d values become NumPy scalars."""
    if kind == NUMPY or kind == SCALAR:
        y = np.asarray(y)
        return y[()] if y.ndim == 0 else y
    return y


def as_seed_batch(seeds: Any, name: str) -> tuple[bool, tuple]:
    """``(was_a_tuple, seeds as a tuple)``."""
    if isinstance(seeds, tuple):
        if not seeds:
            raise InvalidInputError(f"{name} is an empty tuple; pass a tangent or a tuple of tangents")
        return True, seeds
    if isinstance(seeds, list):
        raise InvalidInputError(
            f"{name} is a list; pass one array, or a tuple of arrays for a batch"
        )
    return False, (seeds,)


def run(
    op: str,
    family: str,
    f: Callable,
    backend: Any,
    x: Any,
    contexts: tuple,
    prep: Prep | None,
    out: Any,
    seeds: Any = None,
    seed_name: str = "",
    parts: tuple[str, ...] | None = None,
    _checked: bool = False,
) -> Any:
    """Evaluate operator ``op`` (e.g. ``value_and_gradient``) of ``family``.

    ``parts`` says what the engine returns: ``"value"`` (the primal),
    ``"array"`` (an array shaped like x, e.g. the gradient) and ``"result"``
    (the operator's result, the one ``out=`` receives); the default is
    ``("value", "result")`` for ``value_and_*`` operators, else ``("result",)``.
    """
    if prep is not None and not contexts and out is None and (parts is None or op == "gradient_and_hvp"):
        if not seed_name:
            fast = prep.fast_path(op, f, family, backend, x)
        elif not isinstance(seeds, tuple):
            fast = prep.fast_path(op, f, family, backend, x, seeds, seed_name)
        else:
            fast = None
        if fast is not None:
            return fast
    if parts is None:
        parts = ("value", "result") if op.startswith("value_and_") else ("result",)
    if not _checked and ((prep is None and is_tree(x)) or (prep is not None and prep.x_spec is not None)):
        return _run_tree(op, family, f, backend, x, contexts, prep, out, seeds, seed_name, parts)
    has_seeds = seed_name != ""
    if has_seeds:
        was_tuple, batch = as_seed_batch(seeds, seed_name)
    if prep is None:
        prep = prepare(family, f, backend, x, contexts, batch if has_seeds else None, compiled=False)
    elif not _checked and not prep.matches(family, f, backend, x, contexts):
        raise prep.mismatch(family, f, backend, x, contexts)
    engine = prep.engine
    ctx = unwrap_contexts(contexts, engine) if contexts else ()
    kind = prep.x_kind
    if has_seeds:
        if len(batch) != prep.seed_info:
            raise PreparationMismatchError(
                f"{seed_name}: the prep was made for {prep.seed_info} seed(s), this call passes "
                f"{len(batch)}; prepare again for the new batch size"
            )
        ex = prep.example
        if seed_name == "tx":
            check_seed_shapes(batch, seed_name, ex.x_shape, "x")
        else:
            check_seed_shapes(batch, seed_name, ex.y_shape, "f(x)")
        native = tuple(engine.to_native(s) for s in batch)
        result = prep.fn(op)(engine.to_native(x), native, *ctx)
    else:
        result = prep.fn(op)(engine.to_native(x), *ctx)
    outputs = result if len(parts) > 1 else (result,)
    converted = []
    for part, output in zip(parts, outputs):
        if part == "value":
            converted.append(value_like(output, kind))
        elif part == "array":
            converted.append(to_like(output, kind))
        else:
            converted.append(_convert_result(output, kind, has_seeds and not was_tuple, has_seeds, out, engine))
    return tuple(converted) if len(parts) > 1 else converted[0]


def _convert_result(result: Any, kind: str, single_seed: bool, has_seeds: bool, out: Any, engine: Any) -> Any:
    result_like = getattr(engine, "result_like", None)
    if result_like is not None:  # sparse results (AutoSparse)
        if out is not None:
            raise InvalidInputError("out= is not supported for sparse results; use the returned matrix")
        return result_like(result, kind)
    if has_seeds:
        result = tuple(to_like(r, kind) for r in result)
        if single_seed:
            result = result[0]
    else:
        result = to_like(result, kind)
    if out is not None:
        result = write_out(out, result)
    return result


def contexts_have_cache(contexts: tuple) -> bool:
    from diffinterface.contexts import Cache

    return any(isinstance(c, Cache) for c in contexts)


_MISSING = object()


def _tree_gradient(op, f, backend, x, contexts, prep):
    """Gradients of a pytree x straight through the engine's own pytree support
    (differentiating the leaves, no concatenation): None where the engine has none."""
    build = getattr(prep.engine, "build_tree_value_and_gradient", None)
    if build is None or f is not prep.f or not (backend is prep.backend or backend == prep.backend):
        return None
    leaves = prep.x_spec.matching_leaves(x)
    if leaves is None or (contexts and tuple(type(c) for c in contexts) != prep.ctx_kinds):
        return None
    fn = prep._fns.get("tree_value_and_gradient", _MISSING)
    if fn is _MISSING:
        fn = prep._fns["tree_value_and_gradient"] = build(f, prep.x_spec, prep.compiled)
    if fn is None:  # the engine has no leaf-wise gradient in this mode: flatten instead
        return None
    engine = prep.engine
    ctx = unwrap_contexts(contexts, engine) if contexts else ()
    y, grads = fn([engine.to_native(leaf) for leaf in leaves], *ctx)
    kind = prep.x_kind
    gradient = prep.x_spec.unflatten([to_like(g, kind) for g in grads])
    return (value_like(y, kind), gradient) if op.startswith("value_and_") else gradient


def _same_structure(seeds: Any, like: Any) -> bool:
    from diffinterface.tree import TreeSpec, tree_spec

    try:
        spec = like if isinstance(like, TreeSpec) else tree_spec(like)
        return isinstance(seeds, tuple) and tree_spec(seeds).signature()[:2] == spec.signature()[:2]
    except (ValueError, TypeError):
        return False


def _run_tree(op, family, f, backend, x, contexts, prep, out, seeds, seed_name, parts):
    """Pytree x (and/or y): flatten, run on the flat vector, rebuild the structures."""
    if out is not None:
        raise InvalidInputError("out= is not supported for pytree arguments; use the returned tree")
    if prep is not None and family == "gradient" and not contexts_have_cache(contexts):
        fast = _tree_gradient(op, f, backend, x, contexts, prep)
        if fast is not None:
            return fast
    has_seeds = seed_name != ""
    was_tuple, batch = as_seed_batch(seeds, seed_name) if has_seeds else (False, None)
    if has_seeds and seed_name == "tx" and is_tree(x) and _same_structure(seeds, x):
        was_tuple, batch = False, (seeds,)  # a tuple-structured x: one tangent, not a batch
    if prep is None:
        prep = prepare(family, f, backend, x, contexts, batch, compiled=False)
    if has_seeds and seed_name == "ty" and prep.y_spec is not None and isinstance(seeds, tuple) \
            and _same_structure(seeds, prep.y_spec):
        was_tuple, batch = False, (seeds,)
    elif not prep.matches(family, f, backend, x, contexts):
        raise prep.mismatch(family, f, backend, x, contexts)
    x_spec, y_spec = prep.x_spec, prep.y_spec
    flat_seeds = None
    if has_seeds:
        spec = x_spec if seed_name == "tx" else y_spec
        flat = tuple(spec.ravel(s) if spec is not None else s for s in batch)
        flat_seeds = flat if was_tuple else flat[0]
    outputs = run(op, family, prep.f_engine, backend, x_spec.ravel(x), contexts, prep, None, flat_seeds, seed_name,
                  parts, _checked=True)
    outputs = outputs if len(parts) > 1 else (outputs,)
    if getattr(prep.engine, "result_like", None) is not None:  # AutoSparse: 2-D on the flat vector
        rebuild_result = lambda r: r
    elif family == "jacobian":
        m = int(np.prod(prep.example.y_shape))
        rebuild_result = lambda r: nest_jacobian(r.reshape(m, x_spec.size), y_spec, prep.example.y_shape,
                                                 x_spec, ())
    elif family == "hessian":
        rebuild_result = lambda r: nest_jacobian(r.reshape(x_spec.size, x_spec.size), x_spec, (), x_spec, ())
    elif family == "pushforward":
        rebuild_result = (lambda r: y_spec.unravel(r)) if y_spec is not None else (lambda r: r)
    else:  # gradient, pullback, hvp: shaped like x
        rebuild_result = x_spec.unravel
    rebuilt = []
    for part, output in zip(parts, outputs):
        if part == "value":
            rebuilt.append(y_spec.unravel(np.asarray(output) if np.ndim(output) == 0 else output)
                           if y_spec is not None else output)
        elif part == "array":
            rebuilt.append(x_spec.unravel(output))
        elif has_seeds and was_tuple:
            rebuilt.append(tuple(rebuild_result(r) for r in output))
        else:
            rebuilt.append(rebuild_result(output))
    return tuple(rebuilt) if len(parts) > 1 else rebuilt[0]

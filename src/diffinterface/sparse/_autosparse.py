"""``AutoSparse``: sparse Jacobians and Hessians for every engine.

Preparation detects the sparsity pattern (``sparsity_detector``), colors it
(``coloring_algorithm``) and builds the engine's batched pushforward,
pullback or Hessian-vector product for the seed vectors of the colors.  Each
later call costs one compressed evaluation (``ncolors`` directions in one
vectorized pass where the engine can) and one precomputed decompression
gather.

* Jacobians: column coloring + pushforwards for forward engines (finite
  differences, ``mode="forward"``), row coloring + pullbacks for reverse
  engines (autograd); JAX and torch have both modes and take the partition
  with fewer colors (ties: column for JAX, row for torch, whose reverse mode
  is the faster one).  When both need too many
  colors (a dense row and a dense column), they try a bidirectional coloring:
  some rows by pullbacks, the other entries by pushforwards (an arrowhead
  Jacobian: 3 products instead of n).
* Hessians: star coloring (``decompression="direct"``, the default) or
  acyclic coloring (``"substitution"``) + batched HVPs of the dense
  backend's best second-order strategy.
* When coloring cannot pay off (a dense row or column forces colors close to
  n), the dense path is used instead and a warning says so once per prep.

Results are 2-D, ``(y.size, x.size)`` / ``(x.size, x.size)``, in the sparse
type of x's library: ``scipy.sparse.csr_array``, ``jax.experimental.sparse.BCOO``
or a torch sparse CSR tensor; :func:`to_scipy` converts any of them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from diffinterface._arrays import JAX, NUMPY, SCALAR, TORCH, array_kind
from diffinterface._errors import InvalidInputError
from diffinterface.backends._engine import Engine
from diffinterface.backends._specs import AbstractBackend, AutoAutograd, AutoFiniteDiff, AutoJAX, AutoTorch, SecondOrder
from diffinterface.sparse.coloring import GreedyColoringAlgorithm, coloring
from diffinterface.sparse.detection import TracerSparsityDetector

__all__ = ["AutoSparse", "DenseFallbackWarning", "sparsity_pattern", "ncolors", "column_colors", "row_colors", "to_scipy"]

#: colors above this fraction of the dimension make the dense path cheaper
DENSE_FRACTION = 0.5


class DenseFallbackWarning(UserWarning):
    """AutoSparse found a pattern too dense for coloring to pay off."""


@dataclass(frozen=True)
class AutoSparse(AbstractBackend):
    """Sparse Jacobians/Hessians with ``dense_backend``, a detector and a coloring.

    >>> import numpy as np, diffinterface as di
    >>> backend = di.AutoSparse(di.AutoFiniteDiff(method="complex"))
    >>> J = di.jacobian(lambda x: x[1:] * x[:-1], backend, np.arange(1.0, 6.0))
    >>> J.shape, J.nnz
    ((4, 5), 8)
    """

    dense_backend: AbstractBackend
    sparsity_detector: Any = field(default_factory=TracerSparsityDetector)
    coloring_algorithm: GreedyColoringAlgorithm = field(default_factory=GreedyColoringAlgorithm)

    def __post_init__(self) -> None:
        if not isinstance(self.dense_backend, AbstractBackend) or isinstance(self.dense_backend, AutoSparse):
            raise InvalidInputError(
                f"AutoSparse(dense_backend={self.dense_backend!r}) needs a dense backend such as "
                "di.AutoJAX(), di.AutoTorch(), di.AutoAutograd() or di.AutoFiniteDiff()"
            )
        for name in ("jacobian_sparsity", "hessian_sparsity"):
            if not hasattr(self.sparsity_detector, name):
                raise InvalidInputError(
                    f"AutoSparse(sparsity_detector={self.sparsity_detector!r}) has no {name} method; use "
                    "di.TracerSparsityDetector(), di.TracerLocalSparsityDetector() or di.KnownSparsity(pattern)"
                )

    @property
    def engine_name(self) -> str:
        return self.dense_backend.engine_name


def _frontend(backend: AbstractBackend) -> str:
    if isinstance(backend, SecondOrder):
        backend = backend.inner
    if isinstance(backend, AutoJAX):
        return "jax"
    if isinstance(backend, AutoTorch):
        return "torch"
    return "numpy"


def _directions(backend: AbstractBackend) -> tuple[str, ...]:
    """The partitions the engine can evaluate cheaply: column (forward) and/or row
    (reverse), the one preferred on ties first.  torch prefers rows: its batched
    pullbacks (vmap of torch.func.vjp) cost a third to a half of its batched
    pushforwards on the Brusselator (N = 16 ... 64, 11-12 colors)."""
    if isinstance(backend, AutoTorch):
        return ("row", "column")
    if isinstance(backend, AutoJAX):
        return ("column", "row")
    if isinstance(backend, AutoAutograd):
        return ("row",)
    if isinstance(backend, AutoFiniteDiff):
        return ("column",)
    return ("column",)


def to_sparse_like(dense2d: Any, kind_of: Any) -> Any:
    """A dense 2-D native array as the sparse type of its library."""
    kind = array_kind(dense2d)
    if kind == JAX:
        from jax.experimental import sparse as jsparse

        return jsparse.BCOO.fromdense(dense2d)
    if kind == TORCH:
        return dense2d.to_sparse_csr()
    return sp.csr_array(np.asarray(dense2d))


def to_scipy(result: Any) -> sp.csr_array:
    """Any sparse result (scipy, JAX BCOO, torch sparse) as a ``scipy.sparse.csr_array``."""
    if sp.issparse(result):
        return sp.csr_array(result)
    kind = type(result).__module__
    if kind.startswith("jax"):
        data, indices = np.asarray(result.data), np.asarray(result.indices)
        return sp.csr_array(sp.coo_array((data, (indices[:, 0], indices[:, 1])), shape=result.shape))
    if kind.startswith("torch"):
        r = result.to_sparse_csr().cpu()
        return sp.csr_array((r.values().numpy(), r.col_indices().numpy(), r.crow_indices().numpy()),
                            shape=tuple(r.shape))
    return sp.csr_array(np.asarray(result))


class _SparseEngine(Engine):
    """Shared parts of the sparse Jacobian and Hessian engines."""

    hessian = False

    def __init__(self, spec: AutoSparse, dense: Engine) -> None:
        super().__init__(spec)
        self.spec = spec
        self.dense = dense
        self.accepts = dense.accepts
        self.compiles = dense.compiles
        self.display = f"AutoSparse({dense.display})"
        self.mode = dense.mode
        self.native_kind = getattr(dense, "native_kind", None)
        self.pattern = None
        self.result = None  # the ColoringResult, or None on the dense path
        self.partition = None
        self._device = None  # a torch x's device: seeds are made there (JAX places its constants itself)

    def to_native(self, x):
        return self.dense.to_native(x)

    def copy_native(self, x):
        return self.dense.copy_native(x)

    def stack(self, arrays):
        return self.dense.stack(arrays)

    def cache_buffer(self, value):
        return self.dense.cache_buffer(value)

    def _seed(self, column, shape, dtype):
        """One seed vector (a NumPy column of the seed matrix) as the engine's array, on x's device."""
        native = self.dense.to_native(np.ascontiguousarray(column).reshape(shape).astype(_np_dtype(dtype)))
        return native if self._device is None else native.to(self._device)

    def _seed_vectors(self, matrix, shape, dtype) -> tuple:
        """The columns of a seed matrix as seed vectors (see ``_seed``)."""
        return tuple(self._seed(matrix[:, c], shape, dtype) for c in range(matrix.shape[1]))

    def _detect_and_color(self, f, x, ctx, m: int, n: int) -> None:
        if hasattr(x, "is_cuda"):  # torch
            self._device = x.device
        detector = self.spec.sparsity_detector
        contexts = tuple(_Wrapped(c) for c in ctx)
        frontend = _frontend(self.spec.dense_backend)
        method = detector.hessian_sparsity if self.hessian else detector.jacobian_sparsity
        try:
            pattern = method(f, x, *contexts, frontend=frontend)
        except TypeError:
            pattern = method(f, x, *contexts)
        pattern = sp.csr_array(pattern, dtype=bool)
        if pattern.shape != (m, n):
            raise InvalidInputError(
                f"the sparsity pattern has shape {pattern.shape} but the "
                f"{'Hessian' if self.hessian else 'Jacobian'} has shape {(m, n)}; check the detector's pattern"
            )
        self.pattern = pattern
        self.result = None
        candidates = ["symmetric"] if self.hessian else list(_directions(self.spec.dense_backend))
        # a dense row (column) forces as many colors as its nonzeros: skip the coloring
        row_counts = np.diff(pattern.indptr)
        col_counts = np.bincount(pattern.indices, minlength=n)
        bound = {"column": row_counts.max(initial=0), "row": col_counts.max(initial=0),
                 "symmetric": row_counts.max(initial=0) if self.hessian else 0}
        size = {"column": n, "row": m, "symmetric": n}
        best = None
        for partition in candidates:
            if bound[partition] > DENSE_FRACTION * size[partition] and not self.hessian:
                continue
            result = coloring(pattern, structure="symmetric" if self.hessian else "nonsymmetric",
                              partition="column" if partition == "symmetric" else partition,
                              algorithm=self.spec.coloring_algorithm)
            if best is None or result.ncolors < best[1].ncolors:
                best = (partition, result)
        if self._too_many(best, size) and len(candidates) == 2:
            # dense rows and dense columns: rows by pullbacks, the rest by pushforwards
            result = coloring(pattern, structure="nonsymmetric", partition="bidirectional",
                              algorithm=self.spec.coloring_algorithm)
            size["bidirectional"] = min(m, n)
            if best is None or result.ncolors < best[1].ncolors:
                best = ("bidirectional", result)
        if self._too_many(best, size):
            warnings.warn(
                f"AutoSparse: the {'Hessian' if self.hessian else 'Jacobian'} pattern ({pattern.nnz} nonzeros "
                f"in {m} x {n}) needs "
                + (f"{best[1].ncolors} colors" if best else "about as many colors as columns")
                + "; coloring does not pay off, using the dense path",
                DenseFallbackWarning, stacklevel=6,
            )
            return
        self.partition, self.result = best

    @staticmethod
    def _too_many(best, size) -> bool:
        return best is None or best[1].ncolors > DENSE_FRACTION * size[best[0]] and best[1].ncolors > 2

    # --- JAX: detection-free hot path, one jitted function from x to the values ---
    def _fusable(self, compiled: bool) -> bool:
        return (compiled and getattr(self.dense, "compiles", False) and self.result is not None
                and self.result.decompression == "direct")

    def _stacked_gather(self) -> np.ndarray:
        """The decompression gather remapped from ``compressed_shape`` to the stacked
        layout: (ncolors, k) blocks, column products first for a bidirectional coloring."""
        result = self.result
        gather = np.asarray(result._plan_for_gather().gather, dtype=np.int64)
        if result.problem == "row":
            return gather
        if result.problem == "bidirectional":  # concat(B_cols (m, kc), B_rows (kr, n)), flat
            (_, _), (m, kc) = result.compressed_shape
            by_columns = gather < m * kc
            remapped = gather.copy()
            if kc:
                remapped[by_columns] = (gather[by_columns] % kc) * m + gather[by_columns] // kc
            return remapped
        k, c = result.compressed_shape
        return (gather % c) * k + gather // c if c else gather

    def _fused(self, stacked_fn, ex, extras: int):
        """jit(x -> values in CSR order), or (*extras, values) when ``stacked_fn``
        returns extras: the compressed evaluation and the decompression gather in
        one XLA program.  ``stacked_fn`` returns the products stacked as (ncolors, k);
        the gather indices are remapped to that layout, so no transpose is made.
        The values leave the program (with the products, see below), not the
        indices: ``result_like`` wraps the values with index arrays held once on
        the device (returning them from jit would copy them on every call)."""
        import jax
        import jax.numpy as jnp

        from diffinterface.backends._jax import needs_x64, with_x64

        gather = self._stacked_gather()
        gather = _on_device(gather.astype(np.int32) if gather.size and gather.max() < 2**31 else gather)
        struct = self.result._plan_for_gather().struct
        self._csr = (struct.indices, struct.indptr, struct.shape)
        self._bcoo = None

        # with two colors or more the 2-D products are outputs too, so XLA materializes
        # them in one vectorized loop; otherwise it fuses their computation into the
        # gather's loop, which recomputes it per gathered entry without vectorizing (2x
        # slower for Hessians with transcendentals such as EDENSCH or FREUROTH).  With one
        # color each row has at most one nonzero and the values are a permuted copy of the
        # one product: the fused loop is measured faster there (DQDRTIC 13.5 vs 16.6 us)
        materialize = self.result.ncolors > 1

        def values_and_products(x, *ctx):
            *extras, products = stacked_fn(x, *ctx)
            parts = products if isinstance(products, tuple) else (products,)  # bidirectional: 2
            flat = jnp.concatenate([p.reshape(-1) for p in parts]) if len(parts) > 1 else parts[0].reshape(-1)
            return (*extras, flat.at[gather].get(mode="promise_in_bounds"), parts if materialize else ())

        jitted = jax.jit(values_and_products)
        jitted = with_x64(jitted) if needs_x64(ex.x_dtype) else jitted
        self.fused = True
        if extras:
            return lambda x, *ctx: jitted(x, *ctx)[:-1]
        return lambda x, *ctx: jitted(x, *ctx)[0]

    def _bcoo_of(self, data):
        if self._bcoo is None:  # (treedef, device indices), built at the first call
            import jax
            from jax.experimental import sparse as jsparse

            indices, indptr, shape = self._csr
            rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
            coords = _on_device(np.stack([rows, indices], axis=1).astype(np.int32))
            template = jsparse.BCOO((data, coords), shape=shape, indices_sorted=True, unique_indices=True)
            self._bcoo = (jax.tree_util.tree_structure(template), coords)
        treedef, coords = self._bcoo
        return treedef.unflatten((data, coords))  # the pytree protocol: no re-validation per call

    def result_like(self, result: Any, kind: str) -> Any:
        if getattr(self, "fused", False):
            if kind in (NUMPY, SCALAR):
                indices, indptr, shape = self._csr
                return sp.csr_array((np.asarray(result), indices, indptr), shape=shape)
            return self._bcoo_of(result)
        if self.result is None:  # dense path: the dense 2-D array
            result = np.asarray(result) if kind in (NUMPY, SCALAR) else result
            return to_sparse_like(result, kind)
        if kind in (NUMPY, SCALAR):
            result = tuple(map(np.asarray, result)) if isinstance(result, tuple) else np.asarray(result)
        return self.result.decompress(result)

    def _assemble(self, stacked_fn, ex, fuse: bool, extras: int):
        """The builder's result from ``stacked_fn``: fused (JAX), or the compressed
        matrix in ``compressed_shape`` for ``result_like`` to decompress."""
        if fuse:
            return self._fused(stacked_fn, ex, extras)
        transpose = self.result.problem != "row"

        def compressed(x, *ctx):
            *rest, stacked = stacked_fn(x, *ctx)
            if isinstance(stacked, tuple):  # bidirectional: (B_rows, B_cols) for decompress
                matrix = (stacked[1], stacked[0].T)
            else:
                matrix = stacked.T if transpose else stacked
            return (*rest, matrix) if extras else matrix

        return compressed


class _Wrapped:
    """A context value re-wrapped for the detectors (they unwrap ``.value``)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


Constant = _Wrapped  # the detectors look for a class named Constant
_Wrapped.__name__ = "Constant"


class SparseJacobianEngine(_SparseEngine):
    def output_info(self, f, x, ctx, compiled):
        self.input_kind = array_kind(x)
        y_shape, y_dtype = self.dense.output_info(f, x, ctx, compiled)
        m, n = int(np.prod(y_shape)), int(np.prod(np.shape(x)))
        self._detect_and_color(f, x, ctx, m, n)
        return y_shape, y_dtype

    def _build(self, f, ex, compiled, with_value: bool):
        m, n = int(np.prod(ex.y_shape)), int(np.prod(ex.x_shape))
        if self.result is None:
            dense = self.dense.build_value_and_jacobian(f, ex, compiled)
            if with_value:
                return lambda x, *ctx: (lambda y, j: (y, j.reshape(m, n)))(*dense(x, *ctx))
            return lambda x, *ctx: dense(x, *ctx)[1].reshape(m, n)
        from diffinterface.backends._engine import Example

        fuse = self._fusable(compiled)
        if self.partition == "bidirectional":
            return self._assemble(self._mixed(f, ex, compiled and not fuse, with_value), ex, fuse, int(with_value))
        column = self.partition == "column"
        seed_shape, seed_dtype = (ex.x_shape, ex.x_dtype) if column else (ex.y_shape, ex.y_dtype)
        seeds = self._seed_vectors(self.result.seed_matrix(), seed_shape, seed_dtype)  # one per color
        bex = Example(ex.x_shape, ex.x_dtype, ex.y_shape, ex.y_dtype, len(seeds))
        size = m if column else n
        stack = self.dense.stack
        if with_value:  # pushforwards (forward mode, column colors) or pullbacks (reverse, rows)
            batched = (self.dense.build_value_and_pushforward if column else self.dense.build_value_and_pullback)(
                f, bex, compiled and not fuse)

            def stacked(x, *ctx):
                y, products = batched(x, seeds, *ctx)
                return y, stack([p.reshape(size) for p in products])
        else:
            batched = (self.dense.build_pushforward if column else self.dense.build_pullback)(
                f, bex, compiled and not fuse)

            def stacked(x, *ctx):
                return (stack([p.reshape(size) for p in batched(x, seeds, *ctx)]),)

        return self._assemble(stacked, ex, fuse, int(with_value))

    def _mixed(self, f, ex, compiled, with_value):
        """(x, *ctx) -> ([y], (column products (kc, m), row products (kr, n))):
        pushforwards of the column colors' seeds and pullbacks of the row colors'."""
        from diffinterface.backends._engine import Example

        m, n = int(np.prod(ex.y_shape)), int(np.prod(ex.x_shape))
        s_rows, s_cols = self.result.seed_matrix()
        dense, stack = self.dense, self.dense.stack

        col_seeds = self._seed_vectors(s_cols, ex.x_shape, ex.x_dtype)
        row_seeds = self._seed_vectors(s_rows, ex.y_shape, ex.y_dtype)

        def batch(k):
            return Example(ex.x_shape, ex.x_dtype, ex.y_shape, ex.y_dtype, k)

        # the value comes with the pushforwards, or with the pullbacks when no column is colored
        push = (dense.build_value_and_pushforward if with_value else dense.build_pushforward)(
            f, batch(len(col_seeds)), compiled) if col_seeds else None
        pull = (dense.build_value_and_pullback if with_value and not col_seeds else dense.build_pullback)(
            f, batch(len(row_seeds)), compiled) if row_seeds else None

        def stacked(x, *ctx):
            extras, cols, rows = (), None, None
            if push is not None:
                out = push(x, col_seeds, *ctx)
                extras, products = ((out[0],), out[1]) if with_value else ((), out)
                cols = stack([p.reshape(m) for p in products])
            if pull is not None:
                out = pull(x, row_seeds, *ctx)
                if with_value and push is None:
                    extras, out = (out[0],), out[1]
                rows = stack([p.reshape(n) for p in out])
            cols = rows[:0].reshape(0, m) if cols is None else cols
            rows = cols[:0].reshape(0, n) if rows is None else rows
            return (*extras, (cols, rows))

        return stacked

    def build_value_and_jacobian(self, f, ex, compiled):
        return self._build(f, ex, compiled, with_value=True)

    def build_jacobian(self, f, ex, compiled):
        return self._build(f, ex, compiled, with_value=False)


def _on_device(array: np.ndarray):
    """A NumPy array as a JAX array on the default device.  ``jax.device_put``, not
    ``jnp.asarray``: the latter compiles a small program per new shape (8-40 ms at
    preparation, measured with JAX 0.10)."""
    import jax

    if array.dtype.itemsize == 8:
        with jax.enable_x64(True):
            return jax.device_put(array)
    return jax.device_put(array)


def _np_dtype(dtype):
    name = str(dtype).replace("torch.", "")
    return np.dtype(name)


class SparseHessianEngine(_SparseEngine):
    hessian = True

    def __init__(self, spec: AutoSparse, second_order: Engine) -> None:
        super().__init__(spec, second_order)

    def output_info(self, f, x, ctx, compiled):
        self.input_kind = array_kind(x)
        y_shape, y_dtype = self.dense.output_info(f, x, ctx, compiled)
        n = int(np.prod(np.shape(x)))
        if y_shape == ():
            self._detect_and_color(f, x, ctx, n, n)
        return y_shape, y_dtype

    def _build(self, f, ex, compiled, with_value: bool):
        n = int(np.prod(ex.x_shape))
        if self.result is None:
            dense = self.dense.build_value_gradient_and_hessian(f, ex, compiled)
            if with_value:
                return lambda x, *ctx: (lambda y, g, h: (y, g, h.reshape(n, n)))(*dense(x, *ctx))
            return lambda x, *ctx: dense(x, *ctx)[2].reshape(n, n)
        from diffinterface.backends._engine import Example

        ncolors = self.result.ncolors
        seed = self.result.seed_matrix()
        # a pattern without nonzeros has no colors: one zero tangent keeps the shapes
        columns = [seed[:, c] for c in range(ncolors)] or [np.zeros(n)]
        tangents = tuple(self._seed(c, ex.x_shape, ex.x_dtype) for c in columns)
        fuse = self._fusable(compiled) and ncolors > 0
        bex = Example(ex.x_shape, ex.x_dtype, ex.y_shape, ex.y_dtype, len(tangents))
        stack = self.dense.stack

        def stack_products(products):
            return stack([p.reshape(n) for p in products])[:ncolors]

        if with_value:
            batched = self.dense.build_gradient_and_hvp(f, bex, compiled and not fuse)
            value = self.dense.inner.build_value(f, ex, compiled and not fuse)
            to_inner = self.dense.inner.to_native

            def stacked(x, *ctx):
                g, products = batched(x, tangents, *ctx)
                return value(to_inner(x), *ctx), g, stack_products(products)
        else:
            hvps = self.dense.build_hvp(f, bex, compiled and not fuse)

            def stacked(x, *ctx):
                return (stack_products(hvps(x, tangents, *ctx)),)

        return self._assemble(stacked, ex, fuse, 2 if with_value else 0)

    def build_value_gradient_and_hessian(self, f, ex, compiled):
        return self._build(f, ex, compiled, with_value=True)

    def build_hessian(self, f, ex, compiled):
        return self._build(f, ex, compiled, with_value=False)


def sparse_engine(family: str, spec: AutoSparse) -> Engine:
    """The engine ``prepare`` uses for ``family`` with an AutoSparse backend."""
    from diffinterface.backends import get_engine
    from diffinterface.backends._second_order import get_second_order_engine

    if family == "jacobian":
        return SparseJacobianEngine(spec, get_engine(spec.dense_backend))
    if family == "hessian":
        return SparseHessianEngine(spec, get_second_order_engine(spec.dense_backend))
    if family in ("hvp", "second_derivative"):
        return get_second_order_engine(spec.dense_backend)
    return get_engine(spec.dense_backend)


def _sparse_engine_of(prep) -> _SparseEngine:
    engine = getattr(prep, "engine", None)
    if not isinstance(engine, _SparseEngine):
        raise InvalidInputError(
            "this prep was not made with an AutoSparse backend by prepare_jacobian or prepare_hessian"
        )
    return engine


def sparsity_pattern(prep) -> sp.csr_array:
    """The boolean sparsity pattern an AutoSparse prep found."""
    return _sparse_engine_of(prep).pattern


def ncolors(prep) -> int:
    """The number of colors (compressed directions) of an AutoSparse prep; n on the dense path."""
    engine = _sparse_engine_of(prep)
    if engine.result is None:
        return engine.pattern.shape[1]
    return engine.result.ncolors


def column_colors(prep) -> np.ndarray:
    """The color of each column (Jacobians with forward mode, and Hessians; -1 for a
    column left to the row products of a bidirectional coloring)."""
    engine = _sparse_engine_of(prep)
    if engine.result is None or engine.partition == "row":
        raise InvalidInputError(
            "this prep colored rows (reverse mode) or fell back to the dense path; use di.row_colors(prep)"
            if engine.result is not None else "this prep fell back to the dense path: there are no colors"
        )
    return engine.result.colors


def row_colors(prep) -> np.ndarray:
    """The color of each row (Jacobians with reverse mode; -1 for a row left to the
    column products of a bidirectional coloring)."""
    engine = _sparse_engine_of(prep)
    if engine.result is None or engine.partition not in ("row", "bidirectional"):
        raise InvalidInputError("this prep did not color rows; use di.column_colors(prep)")
    return engine.result.row_colors if engine.partition == "bidirectional" else engine.result.colors

"""Decompression plans, built once per coloring, applied to NumPy / JAX / torch arrays.

Direct decompression (column, row and star colorings) is one gather from the
flattened compressed matrix.  Substitution (acyclic colorings) is a schedule:
the diagonal is one gather, then one gather and one scatter-subtract per round
of leaf peeling of the 2-colored trees, then one gather puts the values in the
pattern's order.  Nothing loops over entries in Python; JAX and torch are
imported only when such an array comes in, and every index array is moved to
the input's device once and cached.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..._arrays import array_kind
from ..._errors import DifferentiationError, InvalidInputError
from ._result import PatternStructure

__all__ = ["build_plan", "postprocess_star", "InvalidColoringError"]


class InvalidColoringError(DifferentiationError):
    """A coloring does not have the property its decompression needs."""


def postprocess_star(struct: PatternStructure, colors: np.ndarray) -> np.ndarray:
    """Give color -1 to the vertices whose color direct decompression never reads."""
    from ._decomp_kernels import needed_star_colors

    ncolors = int(colors.max()) + 1 if colors.size else 0
    used = needed_star_colors(struct.shape[0], struct.indptr, struct.indices, colors, ncolors)
    new = np.full(ncolors + 1, -1, dtype=np.int64)
    new[:ncolors][used] = np.arange(int(used.sum()), dtype=np.int64)
    return new[colors]  # colors are >= 0 here; new[-1] is never reached


def star_gather_or_raise(struct: PatternStructure, colors: np.ndarray, ncolors: int):
    from ._decomp_kernels import star_gather

    gather = star_gather(struct.shape[0], struct.indptr, struct.indices, colors, ncolors)
    bad = np.flatnonzero(gather < 0)
    if bad.size:
        i, j = int(struct.rows()[bad[0]]), int(struct.indices[bad[0]])
        raise InvalidColoringError(
            f"entry ({i}, {j}) cannot be read from the compressed matrix: neither is "
            f"column {j} (color {colors[j]}) alone in its color in row {i}, nor column "
            f"{i} (color {colors[i]}) in row {j}; this is not a star coloring."
        )
    return gather


def substitution_schedule(struct: PatternStructure, colors: np.ndarray, ncolors: int):
    """(diag gather, per-round (src, dst) flat indices, output permutation)."""
    from ._decomp_kernels import peel_trees

    n = struct.shape[0]
    ptr, idx, src_slot = struct.adjacency()
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(ptr))
    same = np.flatnonzero(colors[rows] == colors[idx])
    if same.size:
        i, j = int(rows[same[0]]), int(idx[same[0]])
        raise InvalidColoringError(
            f"vertices {i} and {j} are adjacent and share color {colors[i]}; "
            "an acyclic coloring must be a proper coloring."
        )
    level, slot, twin, ok = peel_trees(n, ptr, idx, colors, ncolors)
    if not ok:
        raise InvalidColoringError(
            "the coloring has a cycle colored with only two colors; it is not an "
            "acyclic coloring, and substitution cannot recover the entries."
        )
    leaf, parent = rows[slot], idx[slot]
    src = leaf * ncolors + colors[parent]
    dst = parent * ncolors + colors[leaf]
    bounds = np.searchsorted(level, np.arange(int(level[-1]) + 2 if level.size else 1))
    step_of_slot = np.empty(idx.size, dtype=np.int64)
    steps = np.arange(slot.size, dtype=np.int64)
    step_of_slot[slot] = steps
    step_of_slot[twin[slot]] = steps
    perm = np.empty(struct.nnz, dtype=np.int64)
    pat_rows = struct.rows()
    diag = np.flatnonzero(pat_rows == struct.indices)
    perm[diag] = pat_rows[diag]
    perm[src_slot] = n + step_of_slot
    diag_gather = np.arange(n, dtype=np.int64) * ncolors + colors
    rounds = [(src[a:b], dst[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return diag_gather, rounds, perm


class _NumPy:
    @staticmethod
    def device(x):
        return None

    @staticmethod
    def put(arr, device):
        return arr

    @staticmethod
    def flat(x):
        return np.asarray(x).reshape(-1)

    @staticmethod
    def take(flat, idx):
        return flat.take(idx)

    @staticmethod
    def copy(flat):
        return flat.copy()

    @staticmethod
    def sub_at(r, idx, vals):
        np.subtract.at(r, idx, vals)
        return r

    @staticmethod
    def concat(parts):
        return np.concatenate(parts)

    @staticmethod
    def build(data, out, shape):
        return sp.csr_array((data, out["indices"], out["indptr"]), shape=shape, copy=False)

    @staticmethod
    def out_indices(struct):
        dtype = np.int32 if max(max(struct.shape), struct.nnz) < 2**31 - 1 else np.int64
        return {
            "indices": struct.indices.astype(dtype),
            "indptr": struct.indptr.astype(dtype),
        }


class _Indexable:
    """What JAX arrays and torch tensors share."""

    @staticmethod
    def flat(x):
        return x.reshape(-1)

    @staticmethod
    def take(flat, idx):
        return flat[idx]


class _JAX(_Indexable):
    @staticmethod
    def device(x):
        try:
            return next(iter(x.devices()))
        except Exception:  # a tracer: index arrays become constants of the trace
            return None

    @staticmethod
    def put(arr, device):
        if device is None:
            return arr
        import jax

        if arr.dtype == np.int64 and arr.size and arr.max() < 2**31 - 1:
            arr = arr.astype(np.int32)
        return jax.device_put(arr, device)

    @staticmethod
    def copy(flat):
        return flat

    @staticmethod
    def sub_at(r, idx, vals):
        return r.at[idx].add(-vals)

    @staticmethod
    def concat(parts):
        import jax.numpy as jnp

        return jnp.concatenate(parts)

    @staticmethod
    def build(data, out, shape):
        from jax.experimental import sparse as jsparse

        return jsparse.BCOO(
            (data, out["coords"]), shape=shape, indices_sorted=True, unique_indices=True
        )

    @staticmethod
    def out_indices(struct):
        coords = np.stack([struct.rows(), struct.indices], axis=1).astype(np.int32)
        return {"coords": coords}


class _Torch(_Indexable):
    @staticmethod
    def device(x):
        return x.device

    @staticmethod
    def put(arr, device):
        import torch

        return torch.as_tensor(arr, device=device)

    @staticmethod
    def copy(flat):
        return flat.clone()

    @staticmethod
    def sub_at(r, idx, vals):
        return r.index_add_(0, idx, vals, alpha=-1)

    @staticmethod
    def concat(parts):
        import torch

        return torch.cat(parts)

    @staticmethod
    def build(data, out, shape):
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                out["crow"], out["col"], data, size=shape, check_invariants=False
            )

    @staticmethod
    def out_indices(struct):
        return {"crow": struct.indptr.astype(np.int64), "col": struct.indices.astype(np.int64)}


_LIBRARIES = {"numpy": _NumPy, "jax": _JAX, "torch": _Torch}


class DecompressionPlan:
    """Index arrays of a decompression, computed once, cached per library and device."""

    def __init__(self, struct: PatternStructure, gather=None, schedule=None) -> None:
        self.struct = struct
        self.gather = gather
        self.schedule = schedule
        self._cache: dict = {}

    def _on(self, lib, device):
        key = (lib.__name__, str(device))
        got = self._cache.get(key)
        if got is None:
            got = {k: lib.put(v, device) for k, v in lib.out_indices(self.struct).items()}
            if self.schedule is None:
                got["gather"] = lib.put(self.gather, device)
            else:
                diag, rounds, perm = self.schedule
                got["diag"] = lib.put(diag, device)
                got["rounds"] = [(lib.put(s, device), lib.put(d, device)) for s, d in rounds]
                got["perm"] = lib.put(perm, device)
            if device is not None or lib is _NumPy:
                self._cache[key] = got
        return got

    def apply(self, compressed, expected_shape):
        """``compressed``: one array, or (B_rows, B_cols) for a bidirectional coloring."""
        parts = compressed if isinstance(compressed, tuple) else (compressed,)
        shapes = expected_shape if isinstance(compressed, tuple) else (expected_shape,)
        for part, expected in zip(parts, shapes):
            shape = tuple(getattr(part, "shape", ()))
            if shape != tuple(expected):
                raise InvalidInputError(
                    f"decompress: compressed has shape {shape}, expected {tuple(expected)} "
                    "(pattern @ seed_matrix() by column, seed_matrix().T @ pattern by row)."
                )
        lib = _LIBRARIES.get(array_kind(parts[0]), _NumPy)
        idx = self._on(lib, lib.device(parts[0]))
        flats = [lib.flat(p) for p in parts[::-1]]  # (B_cols, B_rows) for two parts
        flat = flats[0] if len(flats) == 1 else lib.concat(flats)
        if self.schedule is None:
            data = lib.take(flat, idx["gather"])
        else:
            parts = [lib.take(flat, idx["diag"])]
            residual = lib.copy(flat)
            for src, dst in idx["rounds"]:
                vals = lib.take(residual, src)
                parts.append(vals)
                residual = lib.sub_at(residual, dst, vals)
            data = lib.take(lib.concat(parts), idx["perm"])
        return lib.build(data, idx, self.struct.shape)


def build_plan(struct: PatternStructure, problem: str, colors: np.ndarray, ncolors: int):
    """The decompression plan of a coloring of ``struct`` for ``problem``."""
    if problem == "column":
        return DecompressionPlan(struct, gather=struct.rows() * ncolors + colors[struct.indices])
    if problem == "row":
        n = struct.shape[1]
        return DecompressionPlan(struct, gather=colors[struct.rows()] * n + struct.indices)
    if problem == "star":
        return DecompressionPlan(struct, gather=star_gather_or_raise(struct, colors, ncolors))
    return DecompressionPlan(struct, schedule=substitution_schedule(struct, colors, ncolors))

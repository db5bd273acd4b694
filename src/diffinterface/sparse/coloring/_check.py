"""``check_coloring``: verify the defining property of a coloring."""

from __future__ import annotations

import numpy as np

from ..._errors import InvalidInputError
from ._api import _structure
from ._decompression import InvalidColoringError, star_gather_or_raise, substitution_schedule
from ._result import ColoringResult

__all__ = ["check_coloring"]


def _check_orthogonal(ptr, idx, n_lines, colors, ncolors, what: str) -> None:
    from ._decomp_kernels import first_repeated_color

    k = first_repeated_color(n_lines, ptr, idx, colors, ncolors)
    if k >= 0:
        line = int(np.searchsorted(ptr, k, side="right")) - 1
        c = int(colors[idx[k]])
        other = [int(j) for j in idx[ptr[line]:k] if colors[j] == c][0]
        raise InvalidColoringError(
            f"{what} {other} and {int(idx[k])} share color {c} and both have an entry "
            f"in {'row' if what == 'columns' else 'column'} {line}: they are not "
            "structurally orthogonal."
        )


def check_coloring(pattern, result: ColoringResult) -> None:
    """Raise if ``result`` is not a valid coloring of ``pattern`` for its problem.

    column / row: no two columns (rows) of one color share a row (column);
    every column (row) is colored.
    star (direct symmetric): every entry (i, j) is read from the compressed
    matrix without cancellation: j is alone in its color in row i, or i alone
    in its color in row j (for a proper coloring, this is the star property:
    no path on four vertices uses only two colors).
    acyclic (substitution): a proper coloring with no cycle using only two colors.
    bidirectional: every entry (i, j) is read from the column products (j alone
    in its column color in row i) or the row products (i alone in its row color
    in column j).
    Raises ``InvalidColoringError`` (a ``DifferentiationError``) on a violation.
    """
    if not isinstance(result, ColoringResult):
        raise InvalidInputError(
            f"check_coloring: result must be a ColoringResult from di.coloring, got "
            f"{type(result).__name__}."
        )
    struct = _structure(pattern)
    if struct.shape != result.shape:
        raise InvalidInputError(
            f"check_coloring: pattern has shape {struct.shape} but the coloring was made "
            f"for shape {result.shape}."
        )
    colors = np.asarray(result.colors, dtype=np.int64)
    ncolors = result.ncolors
    m, n = struct.shape
    expected = m if result.problem == "row" else n
    if colors.shape != (expected,) or (colors.size and colors.max() >= ncolors):
        raise InvalidColoringError(
            f"colors must be {expected} integers below ncolors={ncolors}, got shape "
            f"{colors.shape}."
        )
    uncolored = colors < 0
    if result.problem in ("column", "row", "acyclic") and uncolored.any():
        raise InvalidColoringError(
            f"vertex {int(np.flatnonzero(uncolored)[0])} has no color; every "
            f"{'row' if result.problem == 'row' else 'column'} must have one."
        )
    if result.problem == "bidirectional":
        result.check()
    elif result.problem == "column":
        _check_orthogonal(struct.indptr, struct.indices, m, colors, ncolors, "columns")
    elif result.problem == "row":
        ptr, idx = struct.csc()
        _check_orthogonal(ptr, idx, n, colors, ncolors, "rows")
    else:
        if m != n or not struct.is_symmetric():
            raise InvalidInputError(
                "check_coloring: a symmetric coloring needs a square, structurally "
                "symmetric pattern (both triangles stored)."
            )
        if result.problem == "star":
            star_gather_or_raise(struct, colors, ncolors)
        else:
            substitution_schedule(struct, colors, ncolors)

"""Graph coloring and decompression: properties on random patterns, API and errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffinterface._errors import DifferentiationError, InvalidInputError, UnsupportedOperationError
from diffinterface.sparse.coloring import (
    ColoringResult,
    GreedyColoringAlgorithm,
    InvalidColoringError,
    check_coloring,
    coloring,
)
from diffinterface.sparse.coloring._orders import ORDERS

PROBLEMS = {
    "column": dict(structure="nonsymmetric", partition="column", decompression="direct"),
    "row": dict(structure="nonsymmetric", partition="row", decompression="direct"),
    "star": dict(structure="symmetric", partition="column", decompression="direct"),
    "acyclic": dict(structure="symmetric", partition="column", decompression="substitution"),
}
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def color(pattern, problem, order="largest_first", **kw):
    p = PROBLEMS[problem]
    alg = GreedyColoringAlgorithm(order=order, decompression=p["decompression"], **kw)
    return coloring(pattern, structure=p["structure"], partition=p["partition"], algorithm=alg)


def compress(matrix, result):
    seed = result.seed_matrix()
    return seed.T @ matrix if result.problem == "row" else matrix @ seed


def assert_roundtrip(pattern, result, rng):
    """check_coloring passes and decompress(compressed) gives back random values exactly."""
    check_coloring(pattern, result)
    a = sp.csr_array(pattern, dtype=np.float64)
    a.sum_duplicates()
    a.data = rng.uniform(-2.0, 2.0, a.nnz)
    if result.problem in ("star", "acyclic"):
        a = sp.csr_array(sp.triu(a) + sp.triu(a, k=1).T)
    out = result.decompress(np.asarray(compress(a, result)))
    assert isinstance(out, sp.csr_array)
    assert out.shape == a.shape
    diff = abs(out - a)
    assert diff.nnz == 0 or diff.max() <= 1e-14 * max(1.0, abs(a).max()) * 8
    assert out.nnz == a.nnz
    return out


# ----------------------------------------------------------------------------
# random patterns


@st.composite
def patterns(draw, square=False, symmetric=False):
    m = draw(st.integers(0, 25))
    n = m if square or symmetric else draw(st.integers(0, 25))
    density = draw(st.sampled_from([0.0, 0.05, 0.15, 0.4, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dense = rng.random((m, n)) < density
    special = draw(st.sampled_from(["none", "dense_row", "dense_col", "empty_row", "diag"]))
    if m and n:
        if special == "dense_row":
            dense[rng.integers(m)] = True
        elif special == "dense_col":
            dense[:, rng.integers(n)] = True
        elif special == "empty_row":
            dense[rng.integers(m)] = False
            dense[:, rng.integers(n)] = False
    if symmetric:
        dense = dense | dense.T
        if special == "diag":
            np.fill_diagonal(dense, True)
    return sp.csr_array(dense)


@SETTINGS
@given(patterns(), st.sampled_from(ORDERS), st.sampled_from(["column", "row"]))
def test_nonsymmetric_roundtrip(pattern, order, problem):
    res = color(pattern, problem, order)
    assert_roundtrip(pattern, res, np.random.default_rng(0))
    vertices = pattern.shape[0] if problem == "row" else pattern.shape[1]
    assert res.colors.shape == (vertices,)
    assert res.ncolors <= max(vertices, 0)


@SETTINGS
@given(patterns(symmetric=True), st.sampled_from(ORDERS), st.sampled_from(["star", "acyclic"]),
       st.booleans())
def test_symmetric_roundtrip(pattern, order, problem, post):
    res = color(pattern, problem, order, postprocessing=post)
    assert_roundtrip(pattern, res, np.random.default_rng(1))
    if problem == "star" and post:
        plain = color(pattern, problem, order)
        assert res.ncolors <= plain.ncolors


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (3, 0), (0, 3)])
def test_degenerate_shapes(problem, shape):
    if problem in ("star", "acyclic") and shape[0] != shape[1]:
        pytest.skip("symmetric problems need square patterns")
    pattern = sp.csr_array(np.ones(shape, dtype=bool))
    res = color(pattern, problem)
    assert_roundtrip(pattern, res, np.random.default_rng(2))


def test_empty_pattern_has_one_color_per_nothing():
    res = coloring(sp.csr_array((4, 3)))
    assert res.ncolors == 1 and list(res.colors) == [0, 0, 0]
    out = res.decompress(np.zeros((4, 1)))
    assert out.nnz == 0 and out.shape == (4, 3)


def bidirectional_roundtrip(pattern, order, rng):
    res = coloring(pattern, partition="bidirectional", algorithm=GreedyColoringAlgorithm(order=order))
    check_coloring(pattern, res)
    a = sp.csr_array(pattern, dtype=np.float64)
    a.sum_duplicates()
    a.data = rng.uniform(-2.0, 2.0, a.nnz)
    s_r, s_c = res.seed_matrix()
    assert s_r.shape == (a.shape[0], res.ncolors_rows) and s_c.shape == (a.shape[1], res.ncolors_columns)
    assert res.compressed_shape == ((res.ncolors_rows, a.shape[1]), (a.shape[0], res.ncolors_columns))
    out = res.decompress((s_r.T @ a, a @ s_c))
    assert out.shape == a.shape and out.nnz == a.nnz
    assert out.nnz == 0 or abs(out - a).max() <= 1e-14 * 8 * max(1.0, abs(a).max())
    assert len(res.groups) == res.ncolors
    return res


@SETTINGS
@given(patterns(), st.sampled_from(ORDERS))
def test_bidirectional_roundtrip(pattern, order):
    res = bidirectional_roundtrip(pattern, order, np.random.default_rng(12))
    # never worse than coloring only the columns or only the rows
    alg = GreedyColoringAlgorithm(order=order)
    one_sided = min(coloring(pattern, partition=p, algorithm=alg).ncolors for p in ("column", "row"))
    assert res.ncolors <= max(one_sided, 0) or pattern.nnz == 0


def test_bidirectional_arrowhead_needs_three_products():
    res = bidirectional_roundtrip(arrowhead(200), "largest_first", np.random.default_rng(13))
    assert res.ncolors == 3
    assert color(arrowhead(200), "column").ncolors == 200


# ----------------------------------------------------------------------------
# structured patterns


def arrowhead(n):
    r = np.concatenate([np.arange(n), np.zeros(n, dtype=int), np.arange(n)])
    c = np.concatenate([np.arange(n), np.arange(n), np.zeros(n, dtype=int)])
    a = sp.csr_array((np.ones(r.size, dtype=bool), (r, c)), shape=(n, n))
    a.sum_duplicates()
    return a


def test_arrowhead_colors():
    a = arrowhead(50)
    rng = np.random.default_rng(3)
    for order in ORDERS:
        assert color(a, "column", order).ncolors == 50
        for problem in ("star", "acyclic"):
            res = color(a, problem, order)
            assert res.ncolors == 2
            assert_roundtrip(a, res, rng)


def test_arrowhead_large():
    # the speed (linear, where ColPack's acyclic coloring is quadratic) is measured in
    # benchmarks/coloring.py, not asserted here: tests hold no wall-clock thresholds
    a = arrowhead(100_000)
    for problem in ("star", "acyclic", "column"):
        for order in ("largest_first", "smallest_last", "natural"):
            res = color(a, problem, order)
            assert res.ncolors == (100_000 if problem == "column" else 2)


@pytest.mark.parametrize("problem", ["star", "acyclic"])
def test_larger_symmetric_patterns(problem):
    # vertices with many distinct neighbor colors use the hash-table path
    rng = np.random.default_rng(11)
    for density in (0.05, 0.3):
        a = sp.random(300, 300, density=density, rng=rng, format="csr")
        a = sp.csr_array(a + a.T)
        for order in ("natural", "smallest_last", "random"):
            assert_roundtrip(a, color(a, problem, order), rng)


def test_dense_pattern():
    a = sp.csr_array(np.ones((300, 300), dtype=bool))
    for problem in PROBLEMS:
        res = color(a, problem)
        assert res.ncolors == 300
        assert_roundtrip(a, res, np.random.default_rng(4))


def test_tridiagonal_star_and_acyclic():
    n = 40
    a = sp.csr_array(sp.diags_array([np.ones(n - 1), np.ones(n), np.ones(n - 1)], offsets=[-1, 0, 1]))
    assert color(a, "column", "natural").ncolors == 3
    assert color(a, "star", "natural").ncolors == 3
    res = color(a, "acyclic", "natural")
    assert res.ncolors == 2  # a path is a tree: two colors and substitution
    assert_roundtrip(a, res, np.random.default_rng(5))


def test_tuple_of_orders_keeps_fewest():
    rng = np.random.default_rng(6)
    a = sp.csr_array(rng.random((60, 60)) < 0.08)
    each = {o: color(a, "column", o).ncolors for o in ORDERS}
    res = color(a, "column", ORDERS)
    assert res.ncolors == min(each.values())
    assert each[res.order] == res.ncolors


def test_postprocessing_neutralizes_unneeded_colors():
    # a star graph without diagonal: the leaves' color is never read
    n = 6
    r = np.r_[np.zeros(n - 1, int), np.arange(1, n)]
    c = np.r_[np.arange(1, n), np.zeros(n - 1, int)]
    a = sp.csr_array((np.ones(r.size, dtype=bool), (r, c)), shape=(n, n))
    res = color(a, "star", "natural", postprocessing=True)
    assert res.ncolors == 1
    assert (res.colors >= 0).sum() == 1
    assert_roundtrip(a, res, np.random.default_rng(7))


# ----------------------------------------------------------------------------
# result object


def test_result_groups_and_seed():
    rng = np.random.default_rng(8)
    a = sp.csr_array(rng.random((30, 20)) < 0.2)
    res = color(a, "column")
    assert isinstance(res, ColoringResult)
    assert sorted(np.concatenate(res.groups).tolist()) == list(range(20))
    for c, g in enumerate(res.groups):
        assert (res.colors[g] == c).all()
    seed = res.seed_matrix()
    assert seed.shape == (20, res.ncolors)
    assert (seed.sum(axis=1) == 1).all()
    assert (res.seed_matrix(sparse=True).toarray() == seed).all()
    assert res.compressed_shape == (30, res.ncolors)
    assert "ncolors" in repr(res)
    row = color(a, "row")
    assert row.compressed_shape == (row.ncolors, 20)
    assert row.seed_matrix().shape == (30, row.ncolors)


def test_decompress_rejects_wrong_shape():
    res = color(sp.csr_array(np.eye(3, dtype=bool)), "column")
    with pytest.raises(InvalidInputError, match="shape"):
        res.decompress(np.zeros((3, 5)))


def test_decompress_accepts_noncontiguous_and_matrix_input():
    a = sp.csr_array(np.array([[1, 0, 2], [0, 3, 0], [4, 0, 0]], dtype=float))
    res = color(a, "column")
    b = np.asfortranarray(a @ res.seed_matrix())
    assert abs(res.decompress(b) - a).max() == 0


# ----------------------------------------------------------------------------
# checks


def _result_with(colors, like: ColoringResult) -> ColoringResult:
    return ColoringResult(like._struct, like.problem, np.asarray(colors), algorithm=like.algorithm,
                          order=like.order, structure=like.structure, partition=like.partition)


def test_check_coloring_rejects_column_conflict():
    a = sp.csr_array(np.array([[1, 1, 0], [0, 1, 1]], dtype=bool))
    res = color(a, "column")
    with pytest.raises(InvalidColoringError, match="structurally orthogonal"):
        check_coloring(a, _result_with([0, 0, 1], res))
    with pytest.raises(DifferentiationError):
        check_coloring(a, _result_with([0, 1, 1], res))
    row = color(a, "row")
    with pytest.raises(InvalidColoringError):
        check_coloring(a, _result_with([0, 0], row))


def test_check_coloring_rejects_non_star_and_cycle():
    # path 0-1-2-3 with colors a b a b is not a star coloring
    n = 4
    path = sp.csr_array(sp.diags_array([np.ones(n - 1), np.ones(n), np.ones(n - 1)], offsets=[-1, 0, 1]))
    res = color(path, "star")
    with pytest.raises(InvalidColoringError, match="star"):
        check_coloring(path, _result_with([0, 1, 0, 1], res))
    # a 4-cycle with two colors is not acyclic
    cyc = np.eye(4, dtype=bool)
    for i in range(4):
        cyc[i, (i + 1) % 4] = cyc[(i + 1) % 4, i] = True
    cyc = sp.csr_array(cyc)
    res = color(cyc, "acyclic")
    with pytest.raises(InvalidColoringError, match="cycle"):
        check_coloring(cyc, _result_with([0, 1, 0, 1], res))
    with pytest.raises(InvalidColoringError, match="proper"):
        check_coloring(cyc, _result_with([0, 0, 1, 2], res))


def test_check_coloring_argument_errors():
    a = sp.csr_array(np.eye(3, dtype=bool))
    res = color(a, "column")
    with pytest.raises(InvalidInputError, match="shape"):
        check_coloring(sp.csr_array(np.eye(4, dtype=bool)), res)
    with pytest.raises(InvalidInputError, match="ColoringResult"):
        check_coloring(a, [0, 1, 2])
    with pytest.raises(InvalidColoringError):
        check_coloring(a, _result_with([0, -1, 0], res))


# ----------------------------------------------------------------------------
# arguments


def test_argument_errors():
    a = sp.csr_array(np.eye(3, dtype=bool))
    with pytest.raises(InvalidInputError, match="structure"):
        coloring(a, structure="hermitian")
    with pytest.raises(InvalidInputError, match="partition"):
        coloring(a, partition="diagonal")
    with pytest.raises(UnsupportedOperationError, match="bidirectional"):
        coloring(a, partition="bidirectional",
                 algorithm=GreedyColoringAlgorithm(decompression="substitution"))
    with pytest.raises(InvalidInputError, match="by column"):
        coloring(a, structure="symmetric", partition="bidirectional")
    with pytest.raises(InvalidInputError, match="B_rows"):
        coloring(a, partition="bidirectional").decompress(np.zeros((3, 1)))
    with pytest.raises(InvalidInputError, match="symmetric"):
        coloring(a, structure="symmetric", partition="row")
    with pytest.raises(InvalidInputError, match="square"):
        coloring(sp.csr_array((2, 3)), structure="symmetric")
    with pytest.raises(InvalidInputError, match="symmetric"):
        coloring(sp.csr_array(np.triu(np.ones((3, 3)))), structure="symmetric")
    with pytest.raises(InvalidInputError, match="scipy.sparse"):
        coloring([[1, 0], [0, 1]])
    with pytest.raises(InvalidInputError, match="2-D"):
        coloring(np.ones(3))
    with pytest.raises(InvalidInputError, match="GreedyColoringAlgorithm"):
        coloring(a, algorithm="largest_first")
    with pytest.raises(InvalidInputError, match="order"):
        GreedyColoringAlgorithm(order="biggest_first")
    with pytest.raises(InvalidInputError, match="order"):
        GreedyColoringAlgorithm(order=())
    with pytest.raises(InvalidInputError, match="decompression"):
        GreedyColoringAlgorithm(decompression="indirect")
    with pytest.raises(InvalidInputError, match="seed"):
        GreedyColoringAlgorithm(seed=1.5)
    with pytest.raises(InvalidInputError, match="postprocessing"):
        GreedyColoringAlgorithm(postprocessing="yes")


def test_algorithm_is_frozen_and_hashable():
    alg = GreedyColoringAlgorithm(order=("natural", "smallest_last"))
    assert hash(alg) == hash(GreedyColoringAlgorithm(order=("natural", "smallest_last")))
    with pytest.raises(AttributeError):
        alg.order = "natural"


def test_inputs_of_every_scipy_format_and_dense():
    rng = np.random.default_rng(9)
    dense = rng.random((12, 9)) < 0.3
    ref = color(sp.csr_array(dense), "column").colors
    for fmt in ("csr", "csc", "coo", "lil", "dok"):
        assert (color(sp.csr_array(dense).asformat(fmt), "column").colors == ref).all()
    assert (color(sp.csr_matrix(dense), "column").colors == ref).all()
    assert (color(dense.astype(float), "column").colors == ref).all()
    # duplicates and unsorted indices count once
    coo = sp.coo_array((np.ones(4), ([0, 0, 1, 1], [2, 2, 0, 1])), shape=(2, 3))
    res = color(coo, "column")
    assert_roundtrip(coo, res, rng)


def test_random_order_is_seeded():
    rng = np.random.default_rng(10)
    a = sp.csr_array(rng.random((40, 40)) < 0.1)
    c1 = color(a, "column", "random", seed=3).colors
    assert (c1 == color(a, "column", "random", seed=3).colors).all()


def test_import_does_not_load_heavy_modules():
    code = (
        "import sys, diffinterface; before = set(sys.modules);"
        "import diffinterface.sparse.coloring;"
        "new = set(sys.modules) - before;"
        "bad = [m for m in new if m.split('.')[0] in ('jax', 'torch', 'numba')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""Color counts against ColPack's on the reference patterns (shared/reference).

For each pattern and problem: the fewest colors over the orders is at most
ColPack's fewest, and per order at most ColPack's count + 1.  The small
Brusselator patterns run in CI; the large ones are marked slow.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "colpack_colors.csv"
LARGE = ["bruss2d_N512", "lap2d_1000", "lap3d_64", "banded_1e5_bw10", "rand_1e5",
         "randsym_1e5", "arrow_1e5"]

pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason="shared/reference not present")


def _bench():
    spec = importlib.util.spec_from_file_location("_coloring_bench", ROOT / "benchmarks" / "coloring.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _reference(pattern):
    out = {}
    with open(REFERENCE) as f:
        for row in csv.DictReader(f):
            if row["pattern"] == pattern:
                out.setdefault(row["problem"], {})[row["order"]] = row["colpack_colors"]
    return out


def _compare(pattern):
    bench = _bench()
    a = bench.build(pattern)
    for problem, by_order in _reference(pattern).items():
        ours = {}
        for order, theirs in by_order.items():
            kw, alg = bench.algorithm(problem, order)
            res = bench.coloring(a, algorithm=alg, **kw)
            bench.check_coloring(a, res)
            ours[order] = res.ncolors
            if theirs:
                assert res.ncolors <= int(theirs) + 1, (pattern, problem, order, res.ncolors, theirs)
        known = [int(v) for v in by_order.values() if v]
        if known:
            assert min(ours.values()) <= min(known), (pattern, problem, ours, by_order)


@pytest.mark.parametrize("pattern", ["bruss2d_N32", "bruss2d_N128"])
def test_small_reference_patterns(pattern):
    _compare(pattern)


@pytest.mark.slow
@pytest.mark.parametrize("pattern", LARGE)
def test_large_reference_patterns(pattern):
    _compare(pattern)

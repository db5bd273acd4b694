"""Graph coloring: diffinterface against ColPack (reference file) and networkx.

Question: does diffinterface color the reference patterns with at most
ColPack's number of colors, and at least as fast?  Prints, per pattern,
problem and order: colors and median coloring time for diffinterface, next to
ColPack's figures from shared/reference/colpack_colors.csv, and networkx's
greedy coloring of the column-intersection (or adjacency) graph where it
finishes in reasonable time.  Then the first-call compile cost, a dense
2,000 x 2,000 pattern, and decompression against a plain NumPy gather.

    python benchmarks/coloring.py            # all patterns (about 10 minutes)
    python benchmarks/coloring.py --quick    # the small patterns only
    python benchmarks/coloring.py --patterns arrow_1e5 lap2d_1000

Times: median of ``--repeat`` runs of ``di.coloring`` (input already CSR),
which includes building the CSC / adjacency structure; ColPack's exclude
graph building.  So each cell also splits a run into its two parts, timed
separately (median of ``--repeat`` each): building the structure (canonical
CSR, CSC for column/row problems, adjacency and symmetry check for symmetric
ones) and ordering + coloring (degrees, order, coloring), the like-for-like
figure next to ColPack's.  The first call's compile (or cache load) is
measured in a fresh process and reported separately.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from diffinterface.sparse.coloring import GreedyColoringAlgorithm, check_coloring, coloring  # noqa: E402
from diffinterface.sparse.coloring._api import _color_structure, build_structure  # noqa: E402

REFERENCE = HERE.parent.parent / "shared" / "reference" / "colpack_colors.csv"
COL_ORDERS = ("natural", "largest_first", "smallest_last", "incidence_degree")
SYM_ORDERS = COL_ORDERS + ("dynamic_largest_first",)
SMALL = ("bruss2d_N32", "bruss2d_N128")


def tridiag(n: int) -> sp.csr_array:
    return sp.diags_array([np.ones(n - 1), np.ones(n), np.ones(n - 1)], offsets=[-1, 0, 1])


def brusselator(N: int) -> sp.csr_array:
    """2-D Brusselator Jacobian pattern: periodic 5-point stencil per species + coupling."""
    s, i, j = np.meshgrid(np.arange(2), np.arange(N), np.arange(N), indexing="ij")
    s, i, j = s.ravel(), i.ravel(), j.ravel()
    row = s * N * N + i * N + j
    cols = [row, s * N * N + ((i + 1) % N) * N + j, s * N * N + ((i - 1) % N) * N + j,
            s * N * N + i * N + (j + 1) % N, s * N * N + i * N + (j - 1) % N,
            (1 - s) * N * N + i * N + j]
    rows = np.concatenate([row] * 6)
    n = 2 * N * N
    a = sp.csr_array((np.ones(rows.size, dtype=bool), (rows, np.concatenate(cols))), shape=(n, n))
    a.sum_duplicates()
    return a


def build(name: str) -> sp.csr_array:
    """The reference patterns of shared/reference/PATTERNS.md."""
    if name.startswith("bruss2d_N"):
        return brusselator(int(name.split("N")[1]))
    if name == "lap2d_1000":
        t, eye = tridiag(1000), sp.eye_array(1000)
        return sp.csr_array(sp.kron(eye, t) + sp.kron(t, eye))
    if name == "lap3d_64":
        t, eye = tridiag(64), sp.eye_array(64)
        return sp.csr_array(sp.kron(eye, sp.kron(eye, t)) + sp.kron(eye, sp.kron(t, eye))
                            + sp.kron(t, sp.kron(eye, eye)))
    if name == "banded_1e5_bw10":
        n = 100_000
        return sp.csr_array(sp.diags_array([np.ones(n - abs(k)) for k in range(-10, 11)],
                                           offsets=list(range(-10, 11))))
    if name in ("rand_1e5", "randsym_1e5"):
        a = sp.random(100_000, 100_000, density=1e-4, format="coo", rng=np.random.default_rng(0))
        a = sp.csr_array(a)
        if name == "randsym_1e5":
            a = sp.csr_array(a + a.T + sp.eye_array(100_000))
        return a
    if name == "arrow_1e5":
        n = 100_000
        r = np.concatenate([np.arange(n), np.zeros(n, dtype=int), np.arange(n)])
        c = np.concatenate([np.arange(n), np.arange(n), np.zeros(n, dtype=int)])
        a = sp.csr_array((np.ones(r.size, dtype=bool), (r, c)), shape=(n, n))
        a.sum_duplicates()
        return a
    if name == "dense_2000":
        return sp.csr_array(np.ones((2000, 2000), dtype=bool))
    raise KeyError(name)


def reference() -> dict:
    out = {}
    with open(REFERENCE) as f:
        for row in csv.DictReader(f):
            out[(row["pattern"], row["problem"], row["order"])] = row
    return out


def algorithm(problem: str, order: str) -> tuple[dict, GreedyColoringAlgorithm]:
    dec = "substitution" if problem == "acyclic" else "direct"
    kw = {"structure": "symmetric"} if problem in ("star", "acyclic") else {"partition": problem}
    return kw, GreedyColoringAlgorithm(order=order, decompression=dec)


def time_coloring(a, problem, order, repeat):
    """(colors, median wall time, median CPU time, median CPU time of the structure
    building, median CPU time of ordering + coloring) of this process."""
    kw, alg = algorithm(problem, order)
    structure = kw.get("structure", "nonsymmetric")
    partition = kw.get("partition", "column")
    times, cpu, build, rest, res = [], [], [], [], None
    k = min(50, *a.shape)
    coloring(a[:k, :k], algorithm=alg, **kw)  # kernels loaded (compiled) before timing
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = coloring(a, algorithm=alg, **kw)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        c0 = time.process_time()
        struct = build_structure(a, structure, partition)
        c1 = time.process_time()
        res2 = _color_structure(struct, structure, partition, alg)
        c2 = time.process_time()
        build.append(c1 - c0)
        rest.append(c2 - c1)
        assert res2.ncolors == res.ncolors
    check_coloring(a, res)
    med = statistics.median
    return res.ncolors, med(times), med(cpu), med(build), med(rest)


def networkx_colors(a, problem, limit_edges=1e6):
    """networkx's greedy largest-first coloring, where the graph is small enough.

    column / row: the column (row) intersection graph; star: the square of the
    adjacency graph (a distance-2 coloring is a star coloring; networkx has no
    star coloring).  Times: coloring only (plus squaring the graph for star).
    """
    import networkx as nx

    b = sp.csr_array(a, dtype=np.float64, copy=True)  # setdiag/eliminate_zeros below work in place
    if problem == "row":
        b = b.T.tocsr()
    sizes = np.diff(b.indptr).astype(float)
    if float((sizes**2).sum()) / 2 > 4 * limit_edges:  # its graph would be too large
        return None, None
    if problem in ("column", "row"):
        b = sp.csr_array(b.T @ b)
    b.setdiag(0)
    b.eliminate_zeros()
    if b.nnz / 2 > limit_edges:
        return None, None
    graph = nx.from_scipy_sparse_array(b)
    t0 = time.perf_counter()
    if problem == "star":
        graph = nx.power(graph, 2)
    col = nx.greedy_color(graph, strategy="largest_first")
    return max(col.values()) + 1 if col else 0, time.perf_counter() - t0


def problems_of(name, ref):
    return sorted({p for (pat, p, _) in ref if pat == name},
                  key=["column", "row", "star", "acyclic"].index)


def compile_cost() -> str:
    """First coloring in a fresh process: compile (no cache) and cache load."""
    code = """
import time, numpy as np, scipy.sparse as sp
t = time.perf_counter()
from diffinterface.sparse.coloring import coloring, GreedyColoringAlgorithm as G
a = sp.random(30, 30, density=.2, rng=np.random.default_rng(0), format='csr')
a = a + a.T
for s, d in [('nonsymmetric', 'direct'), ('symmetric', 'direct'), ('symmetric', 'substitution')]:
    for o in ['largest_first', 'smallest_last']:
        r = coloring(a, structure=s, algorithm=G(order=o, decompression=d))
        r.decompress(np.zeros(r.compressed_shape))
print(time.perf_counter() - t)
"""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    out = []
    for label, extra in (("no cache", {"NUMBA_CACHE_DIR": "/tmp/di_numba_nocache_%d" % os.getpid()}),
                         ("cached", {})):
        if label == "cached":  # warm the default cache first
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
        r = subprocess.run([sys.executable, "-c", code], env={**env, **extra},
                           capture_output=True, text=True)
        out.append(f"{label}: {float(r.stdout.strip().splitlines()[-1]):.2f} s")
    return ", ".join(out)


def decompression_bench(repeat: int) -> list[str]:
    a = brusselator(707)  # 999,698 columns
    res = coloring(a, algorithm=GreedyColoringAlgorithm(order="natural"))
    rng = np.random.default_rng(0)
    vals = sp.csr_array((rng.standard_normal(a.nnz), a.indices, a.indptr), shape=a.shape)
    b = vals @ res.seed_matrix(sparse=True)
    b = np.ascontiguousarray(b.toarray() if sp.issparse(b) else b)
    res.decompress(b)  # builds the plan
    flat = b.reshape(-1)
    rand_idx = np.random.default_rng(1).integers(0, b.size, a.nnz)
    same_idx = res._plan.gather  # the very indices decompress gathers with

    # the three are timed in alternating rounds (single runs of 20-80 ms are at the
    # mercy of whatever else the machine does), medians over the rounds
    fns = [lambda: res.decompress(b), lambda: flat[same_idx], lambda: flat[rand_idx]]
    times = [[] for _ in fns]
    for _ in range(max(repeat, 9)):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    t_dec, t_same, t_rand = (statistics.median(ts) for ts in times)
    out = res.decompress(b)
    assert abs(out - vals).max() == 0
    return [
        f"Brusselator N=707: {a.shape[1]:,} columns, {a.nnz:,} nonzeros, {res.ncolors} colors "
        f"(median of {max(repeat, 9)} alternating rounds)",
        f"- decompress (compressed {b.shape} -> csr_array): {t_dec * 1e3:.1f} ms",
        f"- plain NumPy gather x[idx] of {a.nnz:,} values, same indices: {t_same * 1e3:.1f} ms "
        f"(ratio {t_dec / t_same:.2f})",
        f"- plain NumPy gather x[idx] of {a.nnz:,} values, random indices: {t_rand * 1e3:.1f} ms "
        f"(ratio {t_dec / t_rand:.2f})",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--patterns", nargs="*")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-networkx", action="store_true")
    args = ap.parse_args()
    ref = reference()
    names = list(dict.fromkeys(p for (p, _, _) in ref))
    if args.quick:
        names = list(SMALL)
    if args.patterns:
        names = args.patterns
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    print(f"command: python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    print(f"first call (compile + run, fresh process): {compile_cost()}\n")
    print("| pattern | n | nnz | problem | order | colors | ColPack colors | time (s) | CPU (s) "
          "| build CPU (s) | order+color CPU (s) | ColPack (s) | networkx LF colors / s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    tally = {"cells": 0, "colpack_colors": 0, "colors": 0, "total": 0, "l4l": 0}
    misses = []
    for name in names:
        a = build(name)
        coloring(a[:50, :50] if a.shape[0] > 50 else a)  # load kernels
        for problem in problems_of(name, ref) if name in {p for p, _, _ in ref} else ["column", "star"]:
            orders = SYM_ORDERS if problem in ("star", "acyclic") else COL_ORDERS
            nx_cell = ""
            if not args.no_networkx and problem != "acyclic" and name != "dense_2000":
                c, t = networkx_colors(a, problem)
                nx_cell = "skipped (graph too large)" if c is None else f"{c} / {t:.2f}"
            for order in orders:
                ncol, t, cpu, t_build, t_rest = time_coloring(a, problem, order, args.repeat)
                r = ref.get((name, problem, order), {})
                cp, ct = r.get("colpack_colors") or "-", r.get("colpack_seconds") or "-"
                if r.get("note", "").startswith("did not finish"):
                    ct = "> 60 (did not finish)"
                    if a.shape[1] >= 100_000:  # met: ColPack took more than 60 s
                        tally["cells"] += 1
                        tally["total"] += cpu <= 60
                        tally["l4l"] += t_rest <= 60
                elif ct != "-" and a.shape[1] >= 100_000:
                    tally["cells"] += 1
                    tally["colpack_colors"] += cp != "-"
                    tally["colors"] += cp != "-" and ncol <= int(cp)
                    tally["total"] += cpu <= float(ct)
                    tally["l4l"] += t_rest <= float(ct)
                    if cpu > float(ct):
                        misses.append(f"{name} {problem} {order}: CPU {cpu:.4f} s "
                                      f"(order+color {t_rest:.4f} s) vs ColPack {float(ct):.4g} s")
                print(f"| {name} | {a.shape[1]:,} | {a.nnz:,} | {problem} | {order} | {ncol} "
                      f"| {cp} | {t:.4f} | {cpu:.4f} | {t_build:.4f} | {t_rest:.4f} | {ct} "
                      f"| {nx_cell if order == 'largest_first' else ''} |",
                      flush=True)
    if tally["cells"]:
        print(f"\ncells with >= 1e5 columns: {tally['cells']} (ColPack did not finish "
              f"{tally['cells'] - tally['colpack_colors']} of them in 60 s); colors <= ColPack's: "
              f"{tally['colors']} of {tally['colpack_colors']}; CPU time <= ColPack's: total "
              f"(everything di.coloring does) {tally['total']}, ordering + coloring "
              f"(like ColPack's figure) {tally['l4l']}")
        for line in misses:
            print(f"- total above ColPack's: {line}")
    print()
    dense = np.random.default_rng(0).random((2000, 2000)) < 0.9
    for label, a in (("dense 2,000 x 2,000", build("dense_2000")),
                     ("90% dense 2,000 x 2,000 (symmetric)", sp.csr_array(dense | dense.T))):
        for problem in ("column", "star", "acyclic"):
            ncol, t, cpu, _, _ = time_coloring(a, problem, "largest_first", args.repeat)
            print(f"- {label} ({a.nnz:,} nonzeros), {problem}, largest_first: "
                  f"{ncol} colors, {t:.3f} s (CPU {cpu:.3f} s)")
    print()
    for line in decompression_bench(max(args.repeat, 5)):
        print(line)


if __name__ == "__main__":
    main()

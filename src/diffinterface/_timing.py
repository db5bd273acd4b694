"""Timing helpers the operators use to choose a strategy by measurement."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np


def block(result: Any) -> Any:
    """Wait for asynchronous results (JAX arrays, torch tensors on a CUDA device), nested
    in tuples, lists or dicts, or inside other JAX pytrees (a linearization's
    ``Partial`` holds its residual arrays), so a strategy is timed by what it
    computes, not by how fast it is queued."""
    leaves = result if isinstance(result, (tuple, list)) else (result,)
    for leaf in leaves:
        if isinstance(leaf, dict):
            block(tuple(leaf.values()))
        elif isinstance(leaf, (tuple, list)):
            block(leaf)
        elif hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
        elif getattr(leaf, "is_cuda", False):  # torch on a GPU: kernels run asynchronously
            import torch

            torch.cuda.synchronize(leaf.device)
        elif type(leaf).__module__.startswith("jax"):
            import jax

            jax.block_until_ready(leaf)
    return result


def fastest_time(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs of ``fn``: the least disturbed by other load."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - start)
    return float(np.min(times))


#: rounds of a measurement that alternates between candidates: at least the first number,
#: at most the second, more than the minimum while the rounds so far took under
#: ``ROUND_BUDGET_S`` (up to 0.2 s once per choice: construction, and the first block of a size).
ROUNDS = (5, 15)
ROUND_BUDGET_S = 0.2


def median_of_rounds(runs: Sequence[Callable[[], float]]) -> list[float]:
    """The median result of each of ``runs`` (callables returning the seconds they
    measured) over rounds that alternate between them, so a burst of load elsewhere on
    the machine hits all of them alike and, shorter than half the rounds, decides
    nothing; ``ROUNDS`` and ``ROUND_BUDGET_S`` set how many rounds.

    The median, not the fastest: the fastest of many runs catches the rare run with
    everything in cache, more often for strategies that keep more memory.  A JAX MLP's
    vmapped VJP block against a linearization's set-up plus block (the block alone is as
    fast; whole, 10-20% slower), the same rounds of twelve constructions judged both
    ways: the fastest of fifteen rounds chose the linearization in 3 of 12, the median of
    fifteen in none, with the tightest ratios (1.10-1.23; the fastest of five:
    1.04-1.22)."""
    fewest, most = ROUNDS
    samples: list[list[float]] = [[] for _ in runs]
    start = time.perf_counter()
    for done in range(1, most + 1):
        for position, run in enumerate(runs):
            samples[position].append(run())
        elapsed = time.perf_counter() - start
        if done >= fewest and elapsed * (done + 1) / done > ROUND_BUDGET_S:  # the next round would overrun
            break
    return [float(np.median(seconds)) for seconds in samples]

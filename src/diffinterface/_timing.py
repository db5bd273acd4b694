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


#: rounds of a measurement that alternates between candidates
ROUNDS = 5


def fastest_of_rounds(runs: Sequence[Callable[[], float]]) -> list[float]:
    """The fastest result of each of ``runs`` (callables returning the seconds they
    measured) over ``ROUNDS`` rounds that alternate between them, so a burst of load
    elsewhere on the machine hits all of them alike instead of deciding the choice.

    The fastest, not the median (tried 2026-11-26): the median of 5-15 rounds judged
    a JAX MLP's VJP blocks better (the linearization is 10-20% slower whole; in twelve
    constructions judged on the same rounds the fastest of fifteen chose it 3 times, the
    median of fifteen never) but chose the linearization for a JAX stencil's VJP blocks
    in 2 of 4 benchmark runs, 1.4-1.7x slower: there the measurement's interleaving
    inflates the vmapped VJP's typical time (large temporaries), while its fastest run
    matches the solver loop, where the same product repeats."""
    best = [float("inf")] * len(runs)
    for _ in range(ROUNDS):
        for position, run in enumerate(runs):
            best[position] = min(best[position], run())
    return best

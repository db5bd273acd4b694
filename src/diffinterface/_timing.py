"""Timing helpers the operators use to choose a strategy by measurement."""

from __future__ import annotations

import time
from typing import Any, Callable

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

"""Small timing helpers shared by the benchmarks.

    from _timing import block, first_call, interleaved

* :func:`block` waits for asynchronous results (JAX's ``block_until_ready``),
  recursing into tuples, lists and dicts; anything else is returned as is.
* :func:`first_call` times one call (a JIT compile, say) in seconds.
* :func:`interleaved_samples` times several callables fairly against each
  other: each runs in batches sized to about ``batch_s`` seconds, the batches
  alternate (A, B, B, A, A, B, ...: one batch of each per round, the order
  flipped every round, so drift and load from other processes hit every side
  alike) until each has run at least ``min_s`` seconds; it returns, per
  callable, the per-call time of each batch (round ``i`` of every callable
  ran back to back).  The garbage collector is off during a batch.
* :func:`interleaved` is the median over batches of each callable's per-call
  time; :func:`paired_ratio` the median over rounds of ``b[i] / a[i]``, a
  ratio that shrugs off phases when the machine is busy.

The callables take no arguments and must block on their own results (wrap
them with :func:`block`); warm them up before timing.
"""

from __future__ import annotations

import gc
import os
import platform
import re
import statistics
import subprocess
import time
from typing import Any, Callable, Sequence

__all__ = ["block", "first_call", "calibrate", "interleaved_samples", "interleaved", "paired_ratio",
           "THREAD_ENV", "cpu_model", "machine", "package_version", "emit", "write_section"]

#: environment that pins XLA and the BLAS libraries to one thread (set before importing them)
THREAD_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def cpu_model() -> str:
    """The CPU model as lscpu names it (else what platform knows)."""
    try:
        for ln in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if ln.startswith("Model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """CPU model, core count, OS and Python, for the results header."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def package_version(name: str) -> str:
    """The installed version of a distribution, or "not installed"."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def emit(text: str, out: str | None) -> None:
    """Print a results table and, with ``out``, also write it there."""
    print(text)
    if out:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        with open(out, "w") as fh:
            fh.write(text + "\n")


def write_section(path: str, head: str, section: str, text: str) -> str:
    """Replace (or append) the marked ``section`` of the results file at ``path``."""
    body = open(path).read() if os.path.exists(path) else head
    start, end = f"<!-- {section} -->", f"<!-- /{section} -->"
    block_ = f"{start}\n{text}\n{end}"
    if start in body:
        body = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block_, body, flags=re.S)
    else:
        body = body.rstrip() + "\n\n" + block_ + "\n"
    with open(path, "w") as fh:
        fh.write(body)
    return path


def block(out: Any) -> Any:
    """Wait until ``out`` (or every array inside it) is computed; return it."""
    if isinstance(out, (tuple, list)):
        for o in out:
            block(o)
    elif isinstance(out, dict):
        for o in out.values():
            block(o)
    elif hasattr(out, "block_until_ready"):
        out.block_until_ready()
    return out


def first_call(fn: Callable[[], Any]) -> float:
    """Seconds taken by one call of ``fn``."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _batch(fn: Callable[[], Any], k: int) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        t = time.perf_counter()
        for _ in range(k):
            fn()
        return time.perf_counter() - t
    finally:
        if enabled:
            gc.enable()


def calibrate(fn: Callable[[], Any], batch_s: float = 0.005, max_k: int = 1 << 20) -> int:
    """Calls per batch so that one batch of ``fn`` takes about ``batch_s`` seconds."""
    k = 1
    while k < max_k:
        t = _batch(fn, k)
        if t >= batch_s / 4:
            return max(1, min(max_k, int(k * batch_s / t)))
        k *= 4
    return max_k


def interleaved_samples(
    fns: Sequence[Callable[[], Any]],
    min_s: float = 0.2,
    batch_s: float = 0.005,
    min_batches: int = 7,
    max_s: float = 5.0,
) -> list[list[float]]:
    """Per-call seconds of each batch of each callable, in alternating batches.

    Stops once every callable has run ``min_s`` seconds and ``min_batches``
    batches, or after ``max_s`` seconds per callable at the latest.
    """
    ks = [calibrate(fn, batch_s) for fn in fns]
    per_call: list[list[float]] = [[] for _ in fns]
    spent = [0.0 for _ in fns]
    order = list(range(len(fns)))
    while True:
        for i in order:
            t = _batch(fns[i], ks[i])
            spent[i] += t
            per_call[i].append(t / ks[i])
        order.reverse()
        done = all(s >= min_s and len(p) >= min_batches for s, p in zip(spent, per_call))
        if done or any(s >= max_s for s in spent):
            break
    return per_call


def interleaved(fns: Sequence[Callable[[], Any]], **kwargs: Any) -> list[float]:
    """Median per-call seconds of each callable (see :func:`interleaved_samples`)."""
    return [statistics.median(p) for p in interleaved_samples(fns, **kwargs)]


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of ``b[i] / a[i]`` (samples from :func:`interleaved_samples`)."""
    return statistics.median(y / x for x, y in zip(a, b))

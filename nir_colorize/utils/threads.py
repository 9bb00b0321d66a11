"""Torch threads that suit the machine's current load: no more threads than other processes leave cores free.

For a process whose OpenMP threads spin at barriers (libgomp's default; ``utils.openmp`` keeps it when an entry
point starts on a quiet machine): two spinning threads beside a process that keeps both cores busy wait for each
other at every barrier (docs/fusion.md: the exact WLS 3x slower than quiet, 5-20x before the fused kernels),
one thread does not. So the fusion and inference entry points measure the other processes' CPU use
(``utils.cpu_load``, over its ``WINDOW``, at most every ``RECHECK`` seconds) and use at most as many threads as
that leaves cores free, rounded, and at least one (on 2 cores: one thread once the others use more than half a
core). Where the threads sleep at barriers (``OMP_WAIT_POLICY=PASSIVE``) the count is kept: two sleeping threads
were as fast as one for the WLS and faster for inference. ``NIR_COLORIZE_ADAPTIVE_THREADS=0`` turns it off.
Hand-written: neither torch nor the standard library offers a load-adaptive thread count. On systems without
``/proc`` nothing changes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

import torch

from nir_colorize.utils.cpu_load import other_load
from nir_colorize.utils.hardware import cpu_count
from nir_colorize.utils.openmp import threads_sleep

RECHECK = 2.0  # seconds a measurement is reused
ENV = "NIR_COLORIZE_ADAPTIVE_THREADS"  # "0": never change the thread count
_state = threading.local()
_last: dict[str, float] = {}


def free_cores() -> float | None:
    """Cores that other processes leave free now (measured at most every ``RECHECK`` s; None without /proc)."""
    now = time.monotonic()
    if now - _last.get("at", -1e9) > RECHECK:
        load = other_load()
        _last.update(at=time.monotonic(), free=None if load is None else cpu_count() - load)  # affinity CPUs
    return _last["free"]


@contextlib.contextmanager
def load_adaptive_threads() -> Iterator[int]:
    """Run the block on at most as many torch threads as other processes leave cores free (``free_cores``,
    rounded, at least 1), else on torch's current count. Off where OpenMP threads sleep at barriers
    (``utils.openmp.threads_sleep``: two sleeping threads were as fast as one for the WLS there, faster for inference).

    Re-entrant (an inner block keeps the outer choice); yields the thread count used. CPU only: the count
    of CUDA work does not depend on it.
    """
    if (getattr(_state, "depth", 0) or torch.get_num_threads() == 1 or os.environ.get(ENV) == "0"
            or threads_sleep()):
        _state.depth = getattr(_state, "depth", 0) + 1
        try:
            yield torch.get_num_threads()
        finally:
            _state.depth -= 1
        return
    before = torch.get_num_threads()
    free = free_cores()
    threads = before if free is None else max(1, min(before, int(free + 0.5)))
    _state.depth = 1
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
        _state.depth = 0

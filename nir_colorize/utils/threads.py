"""Torch threads that suit the machine's current load: no more threads than other processes leave cores free.

Measured (``python -m nir_colorize.bench.threads``, 2-core CPU, exact WLS of a 1024x680 frame): quiet, two
threads take 0.53-0.56 s and one thread 0.95 s; beside a process that keeps both cores busy, two threads take
7.8-9.8 s (OpenMP threads spin at every barrier and wait for each other) and one thread 0.97 s; no OpenMP wait
policy is fast in both cases (PASSIVE: 1.2 s quiet, 1.0 s busy; a short spin count of 10000: 0.55 s quiet,
2.7 s busy). So the fusion and inference entry points measure the other processes' CPU use (from
``/proc/stat``, minus this process's own time, over ``WINDOW`` seconds, at most every ``RECHECK`` seconds) and
use at most as many threads as that leaves cores free, rounded, and at least one (on 2 cores: one thread once
the others use more than half a core). ``NIR_COLORIZE_ADAPTIVE_THREADS=0`` turns it off.
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

from nir_colorize.utils.hardware import cpu_count

WINDOW = 0.05  # seconds of CPU accounting per measurement (jiffies are 10 ms: +-0.2 cores)
RECHECK = 2.0  # seconds a measurement is reused
ENV = "NIR_COLORIZE_ADAPTIVE_THREADS"  # "0": never change the thread count
_state = threading.local()
_last: dict[str, float] = {}


def _busy_jiffies() -> tuple[int, int] | None:
    """(non-idle jiffies of the CPUs this process may run on, this process's jiffies), or None without /proc.
    Only the CPUs of the affinity mask count: a container's or a big machine's other CPUs are no one's
    competition here."""
    try:
        mine = os.sched_getaffinity(0)
        with open("/proc/stat") as f:
            lines = [ln.split() for ln in f if ln.startswith("cpu") and ln[3].isdigit()]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
        busy = 0
        for name, *values in lines:
            if int(name[3:]) in mine:
                fields = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
                busy += sum(fields) - fields[3] - fields[4]
        return busy, int(own[11]) + int(own[12])  # utime + stime
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def other_load(window: float = WINDOW) -> float | None:
    """CPU cores that other processes used over the next ``window`` seconds (None where /proc is missing)."""
    first = _busy_jiffies()
    if first is None:
        return None
    time.sleep(window)
    second = _busy_jiffies()
    if second is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((second[0] - first[0]) - (second[1] - first[1])) / ticks / window)


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
    rounded, at least 1), else on torch's current count.

    Re-entrant (an inner block keeps the outer choice); yields the thread count used. CPU only: the count
    of CUDA work does not depend on it.
    """
    if getattr(_state, "depth", 0) or torch.get_num_threads() == 1 or os.environ.get(ENV) == "0":
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

"""Timing and peak memory of one benchmark case: warm-up, repetitions, median and spread.

Hand-written because ``torch.utils.benchmark.Timer`` reports no spread per call of a Python
callable with its own device synchronisation and gives no peak memory; this is ~40 lines.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch


@dataclass(frozen=True)
class Timing:
    """Seconds per call over ``n`` timed calls: median, quartiles (spread = q3 - q1), min and max.
    ``cpu_share`` (CPU only): process CPU time over wall time x torch threads during the timed calls;
    well below 1 means the threads did not get their cores (a machine shared with other jobs)."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    n: int
    cpu_share: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels on ``device`` (no-op on the CPU) so a wall-clock time covers the work."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def summarize(seconds: list[float]) -> Timing:
    """Median, quartiles (``statistics.quantiles``, inclusive method) and extremes of ``seconds``."""
    if not seconds:
        raise ValueError("summarize needs at least one time")
    if len(seconds) == 1:
        q1 = q3 = seconds[0]
    else:
        q1, _, q3 = statistics.quantiles(seconds, n=4, method="inclusive")
    return Timing(statistics.median(seconds), q1, q3, min(seconds), max(seconds), len(seconds))


def measure(fn: Callable[[], object], warmup: int = 1, repeat: int = 5,
            device: torch.device | str = "cpu") -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times timed (device synchronised
    before and after each call); returns the summary of the timed calls (with ``cpu_share`` on the CPU)."""
    if warmup < 0 or repeat < 1:
        raise ValueError(f"measure needs warmup >= 0 and repeat >= 1 (got warmup={warmup}, repeat={repeat})")
    for _ in range(warmup):
        fn()
    seconds = []
    cpu_start = time.process_time()
    for _ in range(repeat):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu_start
    t = summarize(seconds)
    if torch.device(device).type != "cpu" or sum(seconds) <= 0:
        return t
    return replace(t, cpu_share=cpu / (sum(seconds) * torch.get_num_threads()))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB: ``VmHWM`` of ``/proc/self/status`` on Linux,
    else ``ru_maxrss`` (KiB on Linux, bytes on macOS). Not ``ru_maxrss`` first: Linux carries it over
    ``exec``, so a subprocess started (vfork + exec) from a large process would report the parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def reset_cuda_peak(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def cuda_peak_mb(device: torch.device | str) -> float | None:
    """``torch.cuda.max_memory_allocated`` since the last reset, in MiB; None on the CPU."""
    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20

"""CPU priority (niceness) of this process: ``train`` runs as a batch job, so work started beside it keeps its speed.

Hand-written: ``os.nice`` changes only the calling thread on Linux (each thread has its own nice value), so the
threads that already run (torch's OpenMP pool, loggers) are reniced one by one from ``/proc/self/task``.
Threads and processes started later (data-loader workers, DDP ranks, a sweep's jobs) inherit the value.
"""

from __future__ import annotations

import os


def niceness() -> int:
    """This thread's nice value (0 where the platform has none)."""
    return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0


def lower_priority(nice: int) -> int:
    """Raise every thread's nice value to at least ``nice`` (never lowers it: that needs privileges, and a
    user's ``nice -n 15`` stays); returns this thread's nice value afterwards."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return niceness()
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: this thread only (its later threads inherit it)
        tids = [0]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:  # the thread ended meanwhile, or the system refuses: priority is a courtesy
            pass
    return niceness()

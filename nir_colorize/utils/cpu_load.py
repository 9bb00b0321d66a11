"""CPU cores that other processes use now, from ``/proc/stat`` (no torch: ``utils.openmp`` needs it before torch loads).

Hand-written: neither torch nor the standard library measures other processes' load. On systems without ``/proc``
the functions return None.
"""

from __future__ import annotations

import os
import time

WINDOW = 0.05  # seconds of CPU accounting per measurement (jiffies are 10 ms: +-0.2 cores)


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

"""libgomp's wait policy, chosen from other processes' CPU load when an entry point starts, before torch loads libgomp.

Importing this module sets ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads sleep at a barrier instead of spinning)
when other processes keep at least ``BUSY_CORES`` cores busy at that moment, and leaves libgomp's default
(spin ~300k iterations, then sleep) on a quiet machine; a user's ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` wins.
libgomp reads it once, when torch loads it, so ``predict``, ``eval`` and ``bench`` import this module before
anything imports torch. Why by load (``python -m nir_colorize.bench.threads``; experiments/bench/wait_policy/): beside a
busy process spinning threads ran the exact WLS 2.8-5.3x slower than quiet and the default 1.6-2.8x; quiet, PASSIVE
cost the WLS 8-30% and training steps 3% to 3x (a sleeping thread's wake-up is slow on a virtual machine), so
``train`` keeps libgomp's default. No torch here.
"""

from __future__ import annotations

import os
import sys

from nir_colorize.utils.cpu_load import other_load

START_WINDOW = 0.1  # seconds measured once at import (+-0.1 cores)
BUSY_CORES = 0.5  # other processes' cores from which OpenMP threads sleep at barriers
USER_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def choose_wait_policy(window: float = START_WINDOW) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` where other processes use at least ``BUSY_CORES`` cores now, the user set
    neither ``USER_VARS`` and torch is not loaded yet (later it would not take effect); returns the policy in the
    environment afterwards (None: libgomp's default)."""
    if not any(var in os.environ for var in USER_VARS) and "torch" not in sys.modules:
        load = other_load(window)
        if load is not None and load >= BUSY_CORES:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return os.environ.get("OMP_WAIT_POLICY")


def threads_sleep() -> bool:
    """Whether OpenMP threads sleep at barriers (``OMP_WAIT_POLICY=PASSIVE``): then two threads beside a busy
    process lose little, and ``utils.threads`` keeps torch's thread count."""
    return os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"


CHOSEN = choose_wait_policy()

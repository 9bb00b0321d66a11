"""Busy / quiet ratio of the exact WLS per round, quiet and busy measured back to back (paired against the host's drift).

``python experiments/bench/wait_policy/interleaved.py [ROUNDS]`` (default 5): each round times the default and the
default before (load-adaptive, spinning) quiet, then beside ``busy()``, each in a fresh process (``measure_policy``,
urban 1024x680, median of 5); writes ``interleaved.json`` beside this file.
"""

import json
import statistics
import sys
from pathlib import Path

from nir_colorize.bench.threads import POLICIES, busy, measure_policy

NAMES = ["wait policy and threads by load (nir_colorize default)", "load-adaptive threads, libgomp default (before)"]
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ratios: dict[str, list[float]] = {name: [] for name in NAMES}
raw = []
for rnd in range(rounds):
    quiet = {name: measure_policy(POLICIES[name], "urban", 5)["wls"]["median_s"] for name in NAMES}
    with busy():
        loaded = {name: measure_policy(POLICIES[name], "urban", 5)["wls"]["median_s"] for name in NAMES}
    for name in NAMES:
        ratios[name].append(loaded[name] / quiet[name])
    raw.append({"quiet": quiet, "busy": loaded})
    print(rnd, {n: f"{quiet[n]:.3f} / {loaded[n]:.3f} = {ratios[n][-1]:.2f}x" for n in NAMES}, flush=True)
summary = {n: {"median": statistics.median(r), "min": min(r), "max": max(r)} for n, r in ratios.items()}
print(json.dumps(summary, indent=1))
(Path(__file__).resolve().parent / "interleaved.json").write_text(json.dumps({"rounds": raw, "ratios": ratios,
                                                                            "summary": summary}, indent=1) + "\n")

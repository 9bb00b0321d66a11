"""Loaded / quiet ratio of the exact WLS per round, every state measured back to back (paired against the host's drift).

``python experiments/bench/wait_policy/interleaved.py [ROUNDS] [OUT]`` (default 5, ``interleaved.json``): each round
times the default and the default before (load-adaptive, spinning) quiet, then beside each ``busy()`` neighbour of
``STATES`` (a process at normal priority; the same at the priority ``train`` takes), each in a fresh process
(``measure_policy``, urban 1024x680, median of 5); writes OUT beside this file.
"""

import json
import statistics
import sys
from pathlib import Path

from nir_colorize.bench.threads import POLICIES, STATES, busy, measure_policy

NAMES = ["wait policy and threads by load (nir_colorize default)", "load-adaptive threads, libgomp default (before)"]
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
out = Path(__file__).resolve().parent / (sys.argv[2] if len(sys.argv) > 2 else "interleaved.json")
loaded_states = [s for s in STATES if STATES[s] is not None]
ratios = {state: {name: [] for name in NAMES} for state in loaded_states}
raw = []
for rnd in range(rounds):
    times = {"quiet": {name: measure_policy(POLICIES[name], "urban", 5)["wls"]["median_s"] for name in NAMES}}
    for state in loaded_states:
        with busy(**STATES[state]):
            times[state] = {name: measure_policy(POLICIES[name], "urban", 5)["wls"]["median_s"] for name in NAMES}
        for name in NAMES:
            ratios[state][name].append(times[state][name] / times["quiet"][name])
    raw.append(times)
    print(rnd, {s: {n[:12]: f"{times['quiet'][n]:.3f} / {times[s][n]:.3f} = {ratios[s][n][-1]:.2f}x" for n in NAMES}
                for s in loaded_states}, flush=True)
summary = {s: {n: {"median": statistics.median(r), "min": min(r), "max": max(r)} for n, r in by.items()}
           for s, by in ratios.items()}
print(json.dumps(summary, indent=1))
out.write_text(json.dumps({"rounds": raw, "ratios": ratios, "summary": summary}, indent=1) + "\n")

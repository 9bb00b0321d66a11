"""Training steps under libgomp's default and under OMP_WAIT_POLICY=PASSIVE, paired: fresh processes, alternating.

``python experiments/bench/wait_policy/train_pairs.py [ROUNDS]`` from the repository root (quiet machine; default 3
rounds); prints each pair and writes ``train_pairs.json`` beside this file.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = [("unet_vgg16_frozen", "bf16"), ("linknet", "fp32")]
POLICIES = {"libgomp default": {"GOMP_SPINCOUNT": "300000"}, "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}}
base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
results: dict[str, list] = {}
for rnd in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    for model, precision in CASES:
        for policy, env in POLICIES.items():
            proc = subprocess.run([sys.executable, str(HERE / "train_step.py"), model, precision], env=base | env,
                                  capture_output=True, text=True)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            r = json.loads(line[7:]) if line else {"error": proc.stderr[-300:]}
            results.setdefault(f"{model} {precision} | {policy}", []).append(r)
            print(rnd, model, precision, policy, r, flush=True)
(HERE / "train_pairs.json").write_text(json.dumps(results, indent=1) + "\n")

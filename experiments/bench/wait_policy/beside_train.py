"""The exact WLS (default policy, fresh process, urban 1024x680) quiet, then beside a real `python -m nir_colorize.train`
at its default priority (nice 10) and at `nice=0`, back to back per round.

``python experiments/bench/wait_policy/beside_train.py [ROUNDS]`` (default 2); writes ``beside_train.json`` here.
The training: LinkNet on the embedded sample, batch 4 of 256x256 crops, no validation, until killed.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nir_colorize import PROJECT_ROOT
from nir_colorize.bench.threads import POLICIES, measure_policy

DEFAULT = POLICIES["wait policy and threads by load (nir_colorize default)"]
TRAIN = [sys.executable, "-m", "nir_colorize.train", "trainer.max_epochs=100000", "trainer.limit_val_batches=0",
         "data.batch_size=4", "data.crop_size=256", "data.num_workers=0", "test=false", "logger=none"]


def wls() -> float:
    return measure_policy(DEFAULT, "urban", 5)["wls"]["median_s"]


def beside_training(nice: int, log_dir: str) -> float:
    with open(Path(log_dir) / f"train_nice{nice}.log", "w") as log:
        proc = subprocess.Popen([*TRAIN, f"nice={nice}", f"paths.log_dir={log_dir}"], cwd=PROJECT_ROOT, stdout=log,
                                stderr=subprocess.STDOUT, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    try:
        time.sleep(25)  # imports, data checks, first steps
        assert proc.poll() is None, f"training ended (rc {proc.returncode}): see {log.name}"
        return wls()
    finally:
        proc.kill()
        proc.wait()


rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
raw = []
with tempfile.TemporaryDirectory() as tmp:
    for rnd in range(rounds):
        times = {"quiet": wls(), "train nice 10 (default)": beside_training(10, tmp), "train nice=0": beside_training(0, tmp)}
        raw.append(times)
        print(rnd, {k: f"{v:.3f} s ({v / times['quiet']:.2f}x)" for k, v in times.items()}, flush=True)
ratios = {k: [r[k] / r["quiet"] for r in raw] for k in raw[0] if k != "quiet"}
summary = {k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in ratios.items()}
print(json.dumps(summary, indent=1))
(Path(__file__).resolve().parent / "beside_train.json").write_text(
    json.dumps({"rounds": raw, "ratios": ratios, "summary": summary}, indent=1) + "\n")

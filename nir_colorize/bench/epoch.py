"""Real ``train`` steps on real data, before and after the speed work, in one run (issue 15).

``python -m nir_colorize.bench.epoch [--data-root DIR] [--models linknet colornet] [--steps 8] [--out experiments/bench]``

Each case is ``python -m nir_colorize.train`` in a fresh process on VCIP 2020 (batch 16, 256x256 crops, no
validation, no test) for ``--steps`` steps, timed per step by ``nir_colorize.callbacks.StepTimes``; the first
two steps are warm-up and left out. Cases per model:

- ``before``: the pipeline as it was: PNGs decoded by 2 loader workers at every step, fp32, NCHW;
- ``memory``: the dataset held in memory (no workers), fp32, NCHW;
- ``fast_nchw``: held in memory, the fastest accurate precision of this machine (``fast_precision``), NCHW;
- ``after``: the same with channels_last (the defaults now).

Prints a table (median s/step, images/s, epoch time of 372 pairs, speed-up over ``before``) and writes
``<out>/epoch-<machine>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nir_colorize import PROJECT_ROOT
from nir_colorize.utils.hardware import cpu_bf16_support, cpu_count, cpu_model, fast_precision

CASES = {
    "before": ["data.in_memory=false", "data.num_workers=2", "trainer.precision=32-true", "module.channels_last=false"],
    "memory": ["data.in_memory=true", "trainer.precision=32-true", "module.channels_last=false"],
    "fast_nchw": ["data.in_memory=true", "trainer.precision=${fast_precision:}", "module.channels_last=false"],
    "after": ["data.in_memory=true", "trainer.precision=${fast_precision:}", "module.channels_last=true"],
}
WARMUP = 2
EPOCH_PAIRS = 372


def run_case(model: str, case: str, root: str, steps: int, batch: int, threads: int, crop: int = 256) -> dict:
    """One ``train`` process; returns its step times and the wall time of the whole command."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "nir_colorize.train", f"model={model}", "data=vcip2020",
               f"data.source.root={root}", f"data.batch_size={batch}", f"data.crop_size={crop}", "trainer=cpu",
               "trainer.max_epochs=1", f"trainer.limit_train_batches={steps}", "trainer.limit_val_batches=0",
               "+trainer.num_sanity_val_steps=0", "test=false", "logger=none", "callbacks=none",
               "+callbacks.step_times._target_=nir_colorize.callbacks.StepTimes", "trainer.enable_progress_bar=false",
               f"hydra.run.dir={tmp}", *CASES[case]]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "OMP_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode:
            raise RuntimeError(f"{model}/{case} failed:\n{proc.stderr[-3000:]}")
        times = json.loads((Path(tmp) / "step_times.json").read_text())
    timed = times["steps"][WARMUP:]
    return {"model": model, "case": case, "overrides": CASES[case], "precision": times["precision"],
            "steps": times["steps"], "median_s": statistics.median(timed), "min_s": min(timed), "max_s": max(timed),
            "images_per_s": batch / statistics.median(timed), "wall_s": wall,
            "epoch_s": statistics.median(timed) * EPOCH_PAIRS / batch}


def table(results: list[dict]) -> str:
    lines = ["| model | case | precision | s/step median (min-max) | images/s | epoch of 372 pairs, s | speed-up over before |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in results:
        mine = [b for b in results if b["model"] == r["model"]]
        base = next((b for b in mine if b["case"] == "before"), mine[0])  # speed-up over `before` (or the first)
        lines.append(f"| {r['model']} | {r['case']} | {r['precision']} | {r['median_s']:.2f} ({r['min_s']:.2f}-"
                     f"{r['max_s']:.2f}) | {r['images_per_s']:.1f} | {r['epoch_s']:.0f} | "
                     f"{base['median_s'] / r['median_s']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.bench.epoch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data_dir = os.environ.get("NIR_COLORIZE_DATA") or str(PROJECT_ROOT / "data")  # as paths.data_dir
    parser.add_argument("--data-root", default=str(Path(data_dir) / "vcip2020"),
                        help="VCIP 2020 folder (default $NIR_COLORIZE_DATA/vcip2020, else data/vcip2020)")
    parser.add_argument("--models", nargs="+", default=["linknet", "colornet"])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--steps", type=int, default=8, help="steps per case, the first 2 untimed (default 8)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--threads", type=int, default=cpu_count())
    parser.add_argument("--out", default=str(PROJECT_ROOT / "experiments" / "bench"))
    args = parser.parse_args(argv)
    if not Path(args.data_root).is_dir():
        print(f"error: VCIP 2020 data root {args.data_root} does not exist (--data-root or NIR_COLORIZE_DATA)",
              file=sys.stderr)
        return 2
    results = []
    for model in args.models:
        for case in args.cases:
            results.append(run_case(model, case, args.data_root, args.steps, args.batch, args.threads, args.crop))
            r = results[-1]
            print(f"{model:9s} {case:7s} {r['precision']:11s} {r['median_s']:.2f} s/step", flush=True)
    meta = {"cpu": cpu_model(), "cpus": cpu_count(), "threads": args.threads, "bf16": cpu_bf16_support(),
            "fast_precision": fast_precision("cpu"), "batch": args.batch, "steps": args.steps, "warmup": WARMUP,
            "crop": args.crop, "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")}
    text = table(results)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"epoch-cpu-{cpu_count()}c-" + "-".join(cpu_model().lower().replace("(r)", "").split()[:3])
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    (out / f"{name}.md").write_text(f"# Real `train` steps on VCIP 2020 ({meta['cpu']}, {meta['cpus']} CPUs, "
                                    f"{meta['date']})\n\nBatch {args.batch}, {args.crop}x{args.crop} crops; median of steps "
                                    f"{WARMUP + 1}-{args.steps} of a fresh `python -m nir_colorize.train`.\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

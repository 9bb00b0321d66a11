"""`make demo`: train on the embedded sample, evaluate the best checkpoint, colorize images.

Runs the three public entry points one after the other, exactly as a user would type them,
and prints where everything went.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time

from nir_colorize import PROJECT_ROOT

DEMO_DIR = PROJECT_ROOT / "logs" / "demo"


def sh(args: list[str]) -> None:
    print(f"\n$ {shlex.join(args)}", flush=True)
    subprocess.run(args, check=True, cwd=PROJECT_ROOT)


def input_sets() -> dict[str, str]:
    """Output sub-folder -> input glob (relative to the project root): the test images, then one per
    nirscene1 category of the sample."""
    sets = {"testing": "data/sample/Testing/testing_*_nir_reg.png"}
    for category in sorted(p.name for p in (PROJECT_ROOT / "data" / "sample" / "nirscene1").iterdir() if p.is_dir()):
        sets[f"nirscene1/{category}"] = f"data/sample/nirscene1/{category}/*_nir.tiff"
    return sets


def main() -> None:
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    run_dir = DEMO_DIR / stamp
    py = [sys.executable, "-m"]
    sh(py + ["nir_colorize.train", "+experiment=demo", f"hydra.run.dir={run_dir}/train"])
    ckpt = run_dir / "train" / "checkpoints" / "best.ckpt"
    sh(py + ["nir_colorize.eval", f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}/eval"])
    # the test NIR images (256x256), then the full-resolution nirscene1 originals (any size works), each set
    # into its own folder: nirscene1 categories reuse file names, and predict refuses clashing outputs
    for name, inputs in input_sets().items():
        sh(py + ["nir_colorize.predict", f"ckpt_path={ckpt}", f"input={inputs}",
                 f"output={run_dir}/predictions/{name}", f"hydra.run.dir={run_dir}/predict/{name}"])
    print(f"\nDemo finished. Everything is under {run_dir}:")
    print(f"  training run, checkpoints, metrics.csv: {run_dir / 'train'}")
    print(f"  evaluation (metrics.md/json, per_image.csv): {run_dir / 'eval'}")
    print(f"  colorized PNGs: {run_dir / 'predictions'}")


if __name__ == "__main__":
    main()

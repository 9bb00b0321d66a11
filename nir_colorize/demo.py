"""`make demo`: colorize with the shipped model, score it, then show the training pipeline.

Runs the public entry points one after the other, exactly as a user would type them, and prints where
everything went:
1. ``eval`` of the shipped reference model (``nir_colorize/weights``) on the sample's two test sets, with and
   without BFWLS (all/clean rows, intervals);
2. ``predict`` with it: the sample's test images and the two full-resolution RGB-NIR Scene images, with and
   without BFWLS, and a figure NIR | ours | ground truth;
3. a short training run on the sample (4 CPU epochs of LinkNet: the pipeline, not a good model), its eval.
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
    # 1. the shipped model, scored on the sample's test sets (VCIP 2020 Validation/ pairs: never trained on)
    sh(py + ["nir_colorize.eval", "fusion=bfwls", f"hydra.run.dir={run_dir}/eval_shipped"])
    # 2. colorized images, with and without BFWLS; each set into its own folder (nirscene1 categories reuse
    # file names, and predict refuses clashing outputs)
    for fusion in ("none", "bfwls"):
        for name, inputs in input_sets().items():
            sh(py + ["nir_colorize.predict", f"input={inputs}", f"fusion={fusion}",
                     f"output={run_dir}/predictions/{fusion}/{name}", f"hydra.run.dir={run_dir}/predict/{fusion}/{name}"])
    figure = run_dir / "figure.png"
    sh(py + ["nir_colorize.report.showcase", *sorted(str(p) for p in (PROJECT_ROOT / "data" / "sample").glob(
        "Testing/testing_000[0-3]_nir_reg.png")), *sorted(str(p) for p in (PROJECT_ROOT / "data" / "sample").glob(
        "nirscene1/*/*_nir.tiff")), "--out", str(figure)])
    # 3. the training pipeline: a few CPU epochs on the sample, then the eval of its best checkpoint
    sh(py + ["nir_colorize.train", "+experiment=demo", f"hydra.run.dir={run_dir}/train"])
    ckpt = run_dir / "train" / "checkpoints" / "best.ckpt"
    sh(py + ["nir_colorize.eval", f"ckpt_path={ckpt}", "metrics=[mae,psnr,ssim,ae_deg]", f"hydra.run.dir={run_dir}/eval"])
    print(f"\nDemo finished. Everything is under {run_dir}:")
    print(f"  shipped model's metrics (with and without BFWLS): {run_dir / 'eval_shipped' / 'metrics.md'}")
    print(f"  colorized PNGs (none = network only, bfwls = + BFWLS): {run_dir / 'predictions'}")
    print(f"  figure NIR | ours | ground truth: {figure}")
    print(f"  short training run, checkpoints, metrics.csv: {run_dir / 'train'}; its eval: {run_dir / 'eval'}")


if __name__ == "__main__":
    main()

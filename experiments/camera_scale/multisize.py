"""Averaging over several working sizes at camera scale (issue 29): does it pay for its cost?

The shipped model on the validation split upsized 2.67x (the camera-scale check A, on val: no test image decides a
default), colorized at the defaults (384-pixel long side, band restoration, flip-averaged) and averaged over the
restored outputs of several working long sides. Writes each variant's results under ``OUT`` (``results.write_results``)
and the paired comparisons against the single size, also split by source (VCIP crops, whole scene frames:
``report.compare --groups``); run:

    NIR_COLORIZE_DATA=... python experiments/camera_scale/multisize.py experiments/camera_scale/multisize
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from nir_colorize import loading
from nir_colorize.data.dataset import to_unit
from nir_colorize.metrics.functional import per_image
from nir_colorize.report import compare
from nir_colorize.results import write_results
from nir_colorize.scale import colorize_at_scale

ROOT = Path(__file__).resolve().parents[2]
METRICS = ["mae", "psnr", "ssim", "delta_e_ab", "lpips"]
VARIANTS = {"single_384": (384,), "sizes_320_384": (320, 384), "sizes_384_448": (384, 448),
            "sizes_320_384_448": (320, 384, 448)}


def main(out: Path) -> None:
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        cfg = compose("eval", overrides=["data=vcip2020_scenes", "data.test_resize=2.6667"])
    data = instantiate(cfg.data)
    data.setup("validate")
    net = loading.load_shipped().net.eval()
    rows: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    seconds = {side: 0.0 for side in (320, 384, 448)}
    with torch.inference_mode():
        for batch in data.val_dataloader():
            nir, rgb = to_unit(batch["nir"]), to_unit(batch["rgb"])
            outputs = {}
            for side in seconds:
                start = time.perf_counter()
                outputs[side] = colorize_at_scale(net, nir, max(nir.shape[-2:]) / side, "band", True)
                seconds[side] += time.perf_counter() - start
            for variant, sides in VARIANTS.items():
                pred = torch.stack([outputs[s] for s in sides]).mean(0)
                scores = per_image(pred, rgb, METRICS)
                rows[variant].append({"set": "val", "name": batch["name"][0], "stage": "raw", "clean": "True",
                                      **{m: float(v[0]) for m, v in scores.items()}})
    for variant, table in rows.items():
        write_results(out / variant, table, {"title": f"Camera scale, validation split: working long sides "
                                                      f"{VARIANTS[variant]}"})
    groups = out / "sources.csv"  # VCIP crops or whole scene frames, from the data module's image names
    groups.write_text("name,source\n" + "".join(f"{row['name']},{row['name'].split('_')[0]}\n"
                                                 for row in rows["single_384"]))
    for variant in list(VARIANTS)[1:]:
        compare.main([str(out / "single_384"), str(out / variant), "--metrics", *METRICS, "--groups", str(groups),
                      "--out", str(out / f"{variant}_vs_single.md")])
    total = sum(seconds.values())
    print("network + restore seconds per long side (whole val split): "
          + ", ".join(f"{s}: {t:.1f} ({t / total:.0%})" for s, t in seconds.items()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

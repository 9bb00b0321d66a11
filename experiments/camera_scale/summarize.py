"""Tables of the camera-scale study (issue 29): every pipeline against the NIR copy, paired, per test set and per
scene type. ``python experiments/camera_scale/summarize.py RUNS_DIR > experiments/camera_scale/table.md``.

RUNS_DIR holds one eval output folder per (check, pipeline), named ``<check>_<pipeline>`` (``A_copy``,
``A_auto_band``, ...; see run.sh); ``<check>_copy`` is the NIR copy of that check.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nir_colorize import PROJECT_ROOT
from nir_colorize.report.compare import compare, per_image_file, read_groups, read_rows, with_groups

GROUPS = PROJECT_ROOT / "data" / "scene_types" / "nirscene1_scenes_test.csv"
METRICS = ("psnr", "ssim", "lpips", "delta_e_ab")
CHECKS = {
    "A": "Colour at camera scale: the test frames upsized 2.67x (scenes 1024x683, VCIP 683x683), colorized as whole "
         "frames; ground truth upsized alike (objects at camera scale, no camera detail)",
    "B": "Detail restoration with real detail: the stored frames shrunk 2.67x for colorizing (scale=2.6667), "
         "restored to their stored size from the real NIR; ground truth as stored",
}


def cell(r: dict) -> str:
    return "{:+.2f} [{:+.2f}, {:+.2f}]".format(r["diff"], *r["ci95"]) if r["metric"] == "psnr" else \
        "{:+.3f} [{:+.3f}, {:+.3f}]".format(r["diff"], *r["ci95"])


def table(runs: Path, check: str) -> str:
    groups = read_groups(GROUPS)
    copy = with_groups(read_rows(per_image_file(runs / f"{check}_copy")), groups)
    lines = [f"### Check {check}", "", CHECKS[check], "",
             "| pipeline | set | images | PSNR | Δ PSNR vs copy | SSIM | Δ SSIM | LPIPS | Δ LPIPS | ΔE ab | Δ ΔE ab |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in sorted(p for p in runs.iterdir() if p.is_dir() and p.name.startswith(f"{check}_")):
        if run.name == f"{check}_copy":
            continue
        rows = with_groups(read_rows(per_image_file(run)), groups)
        records = compare(copy, rows, "raw", list(METRICS))
        for test_set in dict.fromkeys(r["set"] for r in records):
            by = {r["metric"]: r for r in records if r["set"] == test_set and r["subset"] == "clean"}
            if "psnr" not in by:
                continue
            cells = []
            for m in METRICS:
                cells += [f"{by[m]['b']:.3f}" if m != "psnr" else f"{by[m]['b']:.2f}", cell(by[m])]
            lines.append(f"| {run.name.removeprefix(check + '_')} | `{test_set}` | {by['psnr']['images']} | "
                         + " | ".join(cells) + " |")
    copy_means = compare(copy, copy, "raw", list(METRICS))
    lines += ["", "NIR copy, for reference: " + "; ".join(
        f"`{r['set']}` PSNR {r['a']:.2f}" for r in copy_means if r["metric"] == "psnr" and r["subset"] == "clean"), ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    runs = Path(argv[0])
    print("\n".join(table(runs, check) for check in CHECKS if (runs / f"{check}_copy").is_dir()))
    print("Clean images only (none of them duplicates a training or validation pair); B - A = pipeline - NIR copy on "
          "the same images, mean [seeded 95 % bootstrap interval]. PSNR and SSIM higher, LPIPS (RGB, AlexNet) and "
          "ΔE ab (the paper's S-CIELAB, Eq. 15) lower is better. Scene types: data/scene_types/nirscene1_scenes_test.csv.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

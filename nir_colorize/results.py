"""Metric tables: per-image CSV, summary JSON and Markdown (laid out like the paper's tables)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from nir_colorize.metrics.color import SAMPLES_PER_DEGREE

# Column order and headers of the paper's Table 1 / Table 2 (Method | MAE | PSNR | SSIM | S-CIELAB | LPIPS, where
# the paper's "S-CIELAB" is Eq. 15, our delta_e_ab, and its "LPIPS" is Eq. 16, our lpips_ab), then the extra metrics.
COLUMNS = {
    "mae": "MAE", "psnr": "PSNR", "ssim": "SSIM", "delta_e_ab": "S-CIELAB", "lpips_ab": "LPIPS",
    "s_cielab": "S-CIELAB (Zhang-Wandell)", "lpips": "LPIPS (RGB)", "ae_deg": "AE (deg)",
}
NOTES = {
    "delta_e_ab": "S-CIELAB: the paper's Eq. 15, mean CIELAB (a, b) distance (`delta_e_ab`)",
    "lpips_ab": "LPIPS: the paper's Eq. 16, LPIPS (AlexNet v0.1) of the images with L* set to 50 (`lpips_ab`)",
    "s_cielab": f"S-CIELAB (Zhang-Wandell): true S-CIELAB at {SAMPLES_PER_DEGREE:g} pixels/degree (`s_cielab`)",
    "lpips": "LPIPS (RGB): LPIPS (AlexNet v0.1) of the RGB images (`lpips`)",
    "ae_deg": "AE: VCIP 2020 challenge mean angular error between RGB vectors, degrees (`ae_deg`)",
}


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean over images of every metric, per ``stage`` (``raw``, ``bfwls``, ...)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row.get("stage", "raw")].append(row)
    summary = {}
    for stage, items in groups.items():
        keys = [k for k in items[0] if k not in ("name", "stage")]
        summary[stage] = {k: sum(float(r[k]) for r in items) / len(items) for k in keys}
        summary[stage]["images"] = len(items)
    return summary


def markdown_table(summary: dict[str, dict[str, float]], labels: dict[str, str] | None = None) -> str:
    """One row per stage, columns in the paper's order."""
    labels = labels or {}
    metrics = [m for m in COLUMNS if any(m in s for s in summary.values())]
    lines = ["| Method | " + " | ".join(COLUMNS[m] for m in metrics) + " | Images |",
             "|---|" + "---:|" * (len(metrics) + 1)]
    for stage, values in summary.items():
        cells = [f"{values[m]:.4f}" if m in values else "" for m in metrics]
        lines.append(f"| {labels.get(stage, stage)} | " + " | ".join(cells) + f" | {int(values['images'])} |")
    notes = [NOTES[m] for m in metrics if m in NOTES]
    if notes:
        lines += ["", "Mean over images. " + "; ".join(notes) + ". Definitions: docs/metrics.md."]
    return "\n".join(lines) + "\n"


def write_results(out_dir: str | Path, rows: list[dict[str, Any]], meta: dict[str, Any],
                  labels: dict[str, str] | None = None) -> dict[str, Path]:
    """Write ``per_image.csv``, ``metrics.json`` and ``metrics.md`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    paths = {"csv": out_dir / "per_image.csv", "json": out_dir / "metrics.json", "md": out_dir / "metrics.md"}
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(paths["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    paths["json"].write_text(json.dumps({"meta": meta, "summary": summary}, indent=2, default=str))
    title = meta.get("title", "Results")
    paths["md"].write_text(f"# {title}\n\n{markdown_table(summary, labels)}")
    return paths

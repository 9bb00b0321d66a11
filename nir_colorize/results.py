"""Metric tables: per-image CSV, summary JSON and Markdown (laid out like the paper's tables)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import bootstrap

from nir_colorize.metrics.color import SAMPLES_PER_DEGREE

NON_METRIC = {"set", "name", "stage", "clean", "duplicates"}
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


SUBSETS = ("all", "clean")
BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 2000
SUBSET_NOTE = ("all: every image of the test set; clean: only images that duplicate (exactly or nearly, NIR or RGB, also "
               "mirrored) no train or val pair of the data config (design section 6; `duplicates` in per_image.csv)")


def bootstrap_ci(values: Sequence[float], seed: int = BOOTSTRAP_SEED, resamples: int = BOOTSTRAP_RESAMPLES,
                 level: float = 0.95) -> tuple[float, float]:
    """Seeded percentile bootstrap interval of the mean of ``values`` (over images); one value: (v, v)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2 or np.ptp(arr) == 0:
        return float(arr.mean()), float(arr.mean())
    res = bootstrap((arr,), np.mean, n_resamples=resamples, confidence_level=level, method="percentile",
                    rng=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def metric_keys(rows: list[dict[str, Any]]) -> list[str]:
    return [k for k in dict.fromkeys(k for r in rows for k in r) if k not in NON_METRIC]


def summarize(rows: list[dict[str, Any]], seed: int = BOOTSTRAP_SEED) -> dict[str, dict[str, dict[str, dict]]]:
    """``{set: {"all" | "clean": {stage: {metric: mean, "<metric>_ci95": [lo, hi], "images": n}}}}``: the mean
    over images of every metric with its seeded 95 % bootstrap interval, per test set, subset and stage
    (``raw``, ``bfwls``). ``clean`` rows skip images with ``clean`` false (duplicates of train or val pairs)."""
    keys = metric_keys(rows)
    summary: dict[str, dict[str, dict[str, dict]]] = {}
    for row in rows:
        subsets = ("all", "clean") if row.get("clean", True) in (True, "True", "true", 1) else ("all",)
        for subset in subsets:
            summary.setdefault(row.get("set", "test"), {k: {} for k in SUBSETS})[subset].setdefault(
                row.get("stage", "raw"), []).append(row)
    for by_subset in summary.values():
        for stages in by_subset.values():
            for stage, items in stages.items():
                stats: dict[str, Any] = {}
                for k in keys:
                    vals = [float(r[k]) for r in items if r.get(k) not in (None, "")]
                    if vals:
                        stats[k] = float(np.mean(vals))
                        stats[f"{k}_ci95"] = list(bootstrap_ci(vals, seed))
                stats["images"] = len(items)
                stages[stage] = stats
    return summary


def _cell(values: dict[str, Any], metric: str) -> str:
    if metric not in values:
        return ""
    lo, hi = values.get(f"{metric}_ci95", (values[metric], values[metric]))
    return f"{values[metric]:.4f} [{lo:.4f}, {hi:.4f}]"


def markdown_table(summary: dict[str, dict[str, dict[str, dict]]], labels: dict[str, str] | None = None) -> str:
    """Per test set one table: a row per stage on all images and on the clean subset, columns in the paper's
    order, each ``mean [95 % interval]``."""
    labels = labels or {}
    out: list[str] = []
    notes: list[str] = []
    for set_name, by_subset in summary.items():
        present = [v for stages in by_subset.values() for v in stages.values()]
        metrics = [m for m in COLUMNS if any(m in v for v in present)]
        lines = [f"## Test set `{set_name}`", "", "| Method | Images | " + " | ".join(COLUMNS[m] for m in metrics) + " |",
                 "|---|---|" + "---:|" * len(metrics)]
        stages = list(dict.fromkeys(st for subset in SUBSETS for st in by_subset.get(subset, {})))
        for stage in stages:
            for subset in SUBSETS:
                values = by_subset.get(subset, {}).get(stage)
                if values is None:
                    lines.append(f"| {labels.get(stage, stage)} | {subset}: 0 | " + " | ".join("" for _ in metrics) + " |")
                    continue
                lines.append(f"| {labels.get(stage, stage)} | {subset}: {int(values['images'])} | "
                             + " | ".join(_cell(values, m) for m in metrics) + " |")
        out.append("\n".join(lines))
        notes = list(dict.fromkeys([*notes, *(NOTES[m] for m in metrics if m in NOTES)]))
    text = "\n\n".join(out)
    if out:
        text += ("\n\nMean over images [seeded 95 % bootstrap interval]. " + SUBSET_NOTE + ". "
                 + ("; ".join(notes) + ". " if notes else "") + "Definitions: docs/metrics.md, docs/evaluation.md.")
    return text + "\n"


def annotate(rows: list[dict[str, Any]], duplicates: dict[tuple[str, str], str], leaks: set[tuple[str, str]]) -> None:
    """Add to each row what its image duplicates (``duplicates``) and whether it is ``clean`` (no leak)."""
    for row in rows:
        key = (row.get("set", "test"), row["name"])
        row["duplicates"] = duplicates.get(key, "")
        row["clean"] = key not in leaks


def write_results(out_dir: str | Path, rows: list[dict[str, Any]], meta: dict[str, Any],
                  labels: dict[str, str] | None = None) -> dict[str, Path]:
    """Write ``per_image.csv``, ``metrics.json`` and ``metrics.md`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    paths = {"csv": out_dir / "per_image.csv", "json": out_dir / "metrics.json", "md": out_dir / "metrics.md"}
    fields = list(dict.fromkeys(["set", "name", "stage", "clean", "duplicates", *(k for row in rows for k in row)]))
    with open(paths["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    meta = {"bootstrap": {"seed": BOOTSTRAP_SEED, "resamples": BOOTSTRAP_RESAMPLES, "level": 0.95,
                          "method": "percentile, over images"}, **meta}
    paths["json"].write_text(json.dumps({"meta": meta, "summary": summary}, indent=2, default=str))
    title = meta.get("title", "Results")
    paths["md"].write_text(f"# {title}\n\n{markdown_table(summary, labels)}")
    return paths

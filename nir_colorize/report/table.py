"""Markdown tables of a sweep: the metric table (paper's Table 2 layout) and the run details."""

from __future__ import annotations

from nir_colorize.report.collect import Sweep
from nir_colorize.results import COLUMNS, NOTES

HIGHER_IS_BETTER = {"psnr", "ssim"}
# Ma et al. 2022, Table 2 (VCIP 2020 data, 300 epochs): MAE, PSNR, SSIM, S-CIELAB (Eq. 15), LPIPS (Eq. 16).
PAPER_TABLE2 = {
    "SCD only": (0.1139, 16.5815, 0.5205, 10.1254, 0.1278),
    "LinkNet": (0.1072, 17.1252, 0.5368, 9.9567, 0.1337),
    "ACD only": (0.1107, 17.4910, 0.5485, 9.8960, 0.1254),
    "ACD+GLFFNet (ColorNet)": (0.0993, 17.6443, 0.5389, 9.6563, 0.1117),
    "ColorNet + BFWLS (Ours)": (0.0939, 18.4421, 0.6363, 8.4912, 0.1225),
}


def test_sets(sweep: Sweep) -> list[str]:
    """Every test set of the sweep's runs, in order of appearance."""
    return list(dict.fromkeys(s for r in sweep.runs for s in r.sets))


def metric_table(sweep: Sweep) -> str:
    """Per test set, a table on its clean subset and one on all its images: one row per variant, the paper's
    columns then the extra metrics, ``mean [95 % interval]``; the best mean of a column in bold; a run without
    test results keeps its row, marked missing."""
    sets = test_sets(sweep)
    if not sets:
        return _table(sweep, "", "clean") + "\nNo test results.\n"
    return "\n".join(f"### Test set `{s}`, {subset} images\n\n" + _table(sweep, s, subset)
                     for s in sets for subset in ("clean", "all"))


def _table(sweep: Sweep, test_set: str, subset: str) -> str:
    results = {r.label: r.metrics(test_set, subset) for r in sweep.runs}
    metrics = [m for m in COLUMNS if any(v and m in v for v in results.values())]
    best = {}
    for m in metrics:
        values = [v[m] for v in results.values() if v and m in v]
        best[m] = max(values) if m in HIGHER_IS_BETTER else min(values)
    lines = ["| Method | " + " | ".join(COLUMNS[m] for m in metrics) + " | Images |",
             "|---|" + "---:|" * (len(metrics) + 1)]
    for label, values in results.items():
        if not values:
            lines.append(f"| {label} | " + " | ".join("missing" for _ in metrics) + " | 0 |")
            continue
        cells = [((f"**{values[m]:.4f}**" if values[m] == best[m] and len(results) > 1 else f"{values[m]:.4f}")
                  + (" [{:.2f}, {:.2f}]".format(*values[f"{m}_ci95"]) if f"{m}_ci95" in values else ""))
                 if m in values else "" for m in metrics]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {int(values.get('images', 0))} |")
    arrows = ", ".join(f"{COLUMNS[m]} {'higher' if m in HIGHER_IS_BETTER else 'lower'}" for m in metrics)
    notes = [NOTES[m] for m in metrics if m in NOTES]
    lines += ["", f"Mean over the {subset} images of `{test_set}` [95 % bootstrap interval]; best in bold ({arrows} is "
              "better). Clean: no duplicate of a train or val pair (docs/evaluation.md). "
              + ("; ".join(notes) + ". " if notes else "") + "Definitions: docs/metrics.md."]
    return "\n".join(lines) + "\n"


def runs_table(sweep: Sweep) -> str:
    """Which job and overrides produced each row, how long it trained, its best validation PSNR."""
    lines = ["| Method | Job | Overrides | Seed | Epochs | Minutes | Best val PSNR | Tested checkpoint |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in sweep.runs:
        overrides = " ".join(r.overrides)
        psnr = f"{r.best_val_psnr:.4f}" if r.best_val_psnr is not None else "missing"
        ckpt = "best.ckpt" if r.checkpoint else "missing"
        if r.stage != "raw":
            ckpt += f" + {r.stage.upper()}"
        minutes = f"{r.minutes:.0f}" if r.minutes is not None else "?"
        lines.append(f"| {r.label} | {r.job} | `{overrides}` | {r.seed if r.seed is not None else '?'} | "
                     f"{r.epochs or 'missing'} | {minutes} | {psnr} | {ckpt} |")
    return "\n".join(lines) + "\n"


def paper_table() -> str:
    """The paper's Table 2, for comparison."""
    head = ["MAE", "PSNR", "SSIM", "S-CIELAB", "LPIPS"]
    lines = ["| Method (paper) | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    lines += [f"| {k} | " + " | ".join(f"{x:.4f}" for x in v) + " |" for k, v in PAPER_TABLE2.items()]
    return "\n".join(lines) + "\n"

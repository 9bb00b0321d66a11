"""Seed-to-seed spread of the two best recipes (experiments/recipe_vcip2020/README.md, "Seed repeats").

``python experiments/recipe_vcip2020/seed_spread.py SWEEP [SWEEP ...] [--recipes A B] [--out seeds.md]``: reads
each run's ``test/per_image.csv`` (Validation/, raw network output) and its best carve-out PSNR, and writes a table
of Validation/ PSNR / SSIM per recipe and seed, the spread over seeds, and the per-seed paired difference A - B
on the same 18 images (default A, B: l1_cosine_128, l1_cosine).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import yaml

RECIPES = ("recipe_l1_cosine_128", "recipe_l1_cosine")


def runs(sweep: Path, recipes: tuple[str, ...] = RECIPES) -> dict[tuple[str, int], Path]:
    """(experiment, seed) -> run directory of every job of ``sweep`` that trained one of ``recipes``."""
    out = {}
    for job in sorted(p for p in sweep.iterdir() if (p / ".hydra" / "overrides.yaml").exists()):
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        exp = overrides.get("+experiment")
        if exp in recipes and (job / "test" / "per_image.csv").exists():
            out[exp, int(overrides.get("seed", 42))] = job
    return out


def per_image(job: Path) -> dict[str, dict[str, float]]:
    with open(job / "test" / "per_image.csv") as f:
        return {r["name"]: {"psnr": float(r["psnr"]), "ssim": float(r["ssim"])} for r in csv.DictReader(f)
                if r["stage"] == "raw" and r["set"] == "validation"}


def best_val(job: Path) -> float | None:
    with open(next(job.glob("csv/**/metrics.csv"))) as f:
        vals = [float(r["val/psnr"]) for r in csv.DictReader(f) if r.get("val/psnr")]
    return max(vals) if vals else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--recipes", nargs=2, default=list(RECIPES), metavar=("A", "B"))
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("seeds.md"))
    args = parser.parse_args()
    recipes = tuple(args.recipes)
    names = [r.removeprefix("recipe_") for r in recipes]
    found: dict[tuple[str, int], Path] = {}
    for sweep in args.sweeps:
        found |= runs(sweep, recipes)
    seeds = sorted({s for _, s in found})
    lines = [f"# Seed repeats of {names[0]} and {names[1]} (4-minute budget, Validation/ = test, 18 images)", "",
             f"Runs: {', '.join(str(p) for p in sorted(set(found.values())))}.", "",
             "| recipe | seed | best carve-out PSNR | Validation/ PSNR | Validation/ SSIM |", "|---|---:|---:|---:|---:|"]
    means: dict[str, list[float]] = {}
    for exp in recipes:
        for seed in seeds:
            if (exp, seed) not in found:
                continue
            img = per_image(found[exp, seed])
            psnr = statistics.mean(v["psnr"] for v in img.values())
            ssim = statistics.mean(v["ssim"] for v in img.values())
            means.setdefault(exp, []).append(psnr)
            lines.append(f"| {exp.removeprefix('recipe_')} | {seed} | {best_val(found[exp, seed]):.2f} | {psnr:.2f} | {ssim:.3f} |")
    lines += ["", "| recipe | seeds | Validation/ PSNR mean | sd over seeds | range |", "|---|---:|---:|---:|---:|"]
    for exp, vals in means.items():
        sd = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        lines.append(f"| {exp.removeprefix('recipe_')} | {len(vals)} | {statistics.mean(vals):.2f} | {sd:.2f} | "
                     f"{min(vals):.2f}-{max(vals):.2f} |")
    lines += ["", f"Paired difference {names[0]} - {names[1]} on the same 18 images, per seed (mean over images, "
              f"images where {names[0]} scores better):", "", "| seed | PSNR difference | better on |", "|---:|---:|---:|"]
    diffs = []
    for seed in seeds:
        if all((e, seed) in found for e in recipes):
            a, b = (per_image(found[e, seed]) for e in recipes)
            d = [a[n]["psnr"] - b[n]["psnr"] for n in a]
            diffs.append(statistics.mean(d))
            lines.append(f"| {seed} | {statistics.mean(d):+.2f} | {sum(x > 0 for x in d)}/{len(d)} |")
    if len(diffs) > 1:
        lines += ["", f"Over seeds: {statistics.mean(diffs):+.2f} dB (sd {statistics.stdev(diffs):.2f}, "
                  f"{sum(x > 0 for x in diffs)}/{len(diffs)} seeds in favour of {names[0]})."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

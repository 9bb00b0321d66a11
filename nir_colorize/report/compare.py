"""``python -m nir_colorize.report.compare A B [--stage raw] [--metrics psnr ssim ...] [--groups CSV] [--out FILE]``.

Compares two evaluations on the same images (design section 6): A and B are eval output folders, run folders
(their ``test/``) or ``per_image.csv`` files. Per test set (with ``--groups``, also per group of its images, such
as scene types) and subset (all, clean), per metric: the means of A and B, the mean paired difference B - A with
its seeded 95 % bootstrap interval, and how many images B scores better. Only images present in both are compared; the counts say how many.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from nir_colorize.metrics.functional import HIGHER_IS_BETTER
from nir_colorize.results import NON_METRIC, bootstrap_ci


def per_image_file(path: str | Path) -> Path:
    """The ``per_image.csv`` of an eval folder, a run folder (``test/``) or the file itself."""
    path = Path(path)
    for candidate in (path, path / "per_image.csv", path / "test" / "per_image.csv"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{path}: no per_image.csv there (give an eval folder, a run folder or the CSV)")


def read_rows(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    with open(path, newline="") as fh:
        return {(r.get("set") or "test", r.get("stage") or "raw", r["name"]): r for r in csv.DictReader(fh)}


def read_groups(path: str | Path) -> dict[str, str]:
    """Image name -> group (e.g. scene type) from a CSV with columns ``name`` and a second one; ``#`` lines skipped."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(line for line in fh if not line.startswith("#")))
    if not rows or rows[0][:1] != ["name"] or len(rows[0]) < 2:
        raise ValueError(f"{path}: expected a CSV with a header `name,<group>` (e.g. name,type)")
    return {r[0]: r[1] for r in rows[1:] if len(r) >= 2}


def with_groups(rows: dict, groups: dict[str, str]) -> dict:
    """``rows`` plus a copy of each grouped image's row under the set ``<set>/<group>``, so that ``compare``
    gives one record per group beside the whole set."""
    out = dict(rows)
    for (test_set, stage, name), row in rows.items():
        if name in groups:
            out[(f"{test_set}/{groups[name]}", stage, name)] = row
    return out


def compare(a: dict, b: dict, stage: str = "raw", metrics: list[str] | None = None, seed: int = 0,
            stage_b: str | None = None) -> list[dict]:
    """One record per (set, subset, metric) over the images A scored at ``stage`` and B at ``stage_b`` (default
    the same; e.g. one evaluation's ``raw`` against its ``bfwls`` rows)."""
    stage_b = stage_b or stage
    b = {(k[0], stage, k[2]): v for k, v in b.items() if k[1] == stage_b}
    common = sorted(k for k in a.keys() & b.keys() if k[1] == stage)
    if not common:
        raise ValueError(f"no image scored at stage {stage!r} in A and {stage_b!r} in B (A: {len(a)} rows)")
    names = metrics or [m for m in a[common[0]] if m not in NON_METRIC and m in b[common[0]]]
    out = []
    for test_set in dict.fromkeys(k[0] for k in common):
        keys = [k for k in common if k[0] == test_set]
        clean = [k for k in keys if a[k].get("clean", "True") == "True" and b[k].get("clean", "True") == "True"]
        for subset, chosen in (("all", keys), ("clean", clean)):
            if not chosen:
                continue
            for m in names:
                va = np.array([float(a[k][m]) for k in chosen])
                vb = np.array([float(b[k][m]) for k in chosen])
                diff = vb - va
                better = int((diff > 0).sum() if HIGHER_IS_BETTER.get(m, True) else (diff < 0).sum())
                out.append({"set": test_set, "subset": subset, "metric": m, "images": len(chosen),
                            "a": float(va.mean()), "b": float(vb.mean()), "diff": float(diff.mean()),
                            "ci95": bootstrap_ci(diff, seed), "b_better": better})
    return out


def markdown(records: list[dict], a: str, b: str, stage: str, stage_b: str | None = None) -> str:
    stages = f"stage `{stage}`" if stage_b in (None, stage) else f"A at stage `{stage}`, B at stage `{stage_b}`"
    lines = [f"A = `{a}`, B = `{b}`, {stages}: mean paired difference B - A over the same images, "
             "[seeded 95 % bootstrap interval]; B better: images where B scores better.", "",
             "| Test set | Images | Metric | A | B | B - A [95 % interval] | B better |", "|---|---|---|---:|---:|---:|---:|"]
    for r in records:
        lo, hi = r["ci95"]
        lines.append(f"| {r['set']} | {r['subset']}: {r['images']} | {r['metric']} | {r['a']:.4f} | {r['b']:.4f} | "
                     f"{r['diff']:+.4f} [{lo:+.4f}, {hi:+.4f}] | {r['b_better']}/{r['images']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.report.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--stage", default="raw", help="raw (the network) or bfwls (after fusion)")
    parser.add_argument("--stage-b", help="B's stage when it differs (A B the same folder: raw against bfwls)")
    parser.add_argument("--metrics", nargs="*", help="default: every metric both have")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    parser.add_argument("--groups", help="a CSV of name,group (e.g. data/scene_types/nirscene1_scenes_test.csv): "
                                         "also one row per group, as the set <set>/<group>")
    args = parser.parse_args(argv)
    try:
        fa, fb = per_image_file(args.a), per_image_file(args.b)
        rows_a, rows_b = read_rows(fa), read_rows(fb)
        if args.groups:
            groups = read_groups(args.groups)
            rows_a, rows_b = with_groups(rows_a, groups), with_groups(rows_b, groups)
        records = compare(rows_a, rows_b, args.stage, args.metrics, args.seed, args.stage_b)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = markdown(records, str(fa), str(fb), args.stage, args.stage_b)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

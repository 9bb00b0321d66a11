"""The paper's three ablation claims as paired differences on the same test images (design section 6).

Each claim compares two rows of the sweep image by image (``report.compare``): ACD - SCD, ColorNet - ACD and
ColorNet + BFWLS - ColorNet, per test set and over all test sets together, on the clean images. A claim is
*confirmed* where the paired PSNR difference has the paper's sign and its 95 % interval is clear of 0,
*reversed* where the interval is clear of 0 with the other sign, and *not confirmed* otherwise.

Over seeds (``seed_claims``: the same two rows retrained with other seeds), a difference is *real* only where its
pooled interval is clear of 0 on every seed and its sign is the same on all of them (issue 30).
"""

from __future__ import annotations

from nir_colorize.metrics.functional import HIGHER_IS_BETTER
from nir_colorize.report.collect import Run, Sweep
from nir_colorize.report.compare import compare, per_image_file, read_rows
from nir_colorize.results import COLUMNS

METRICS = ("mae", "psnr", "ssim", "delta_e_ab", "lpips_ab")  # the paper's Table 2 columns
POOLED = "all test sets"
# (row A, row B, the paper's claim, its Table 2 PSNR difference B - A)
CLAIMS = (
    (("scd", "none"), ("acd", "none"), "ACD beats SCD (the asymmetric codec)", 17.4910 - 16.5815),
    (("acd", "none"), ("colornet", "none"), "GLFFNet helps (ACD+GLFFNet = ColorNet against ACD)", 17.6443 - 17.4910),
    (("colornet", "none"), ("colornet", "bfwls"), "BFWLS helps (ColorNet + BFWLS against ColorNet)", 18.4421 - 17.6443),
)


def verdict(diff: float, ci: tuple[float, float], paper: float) -> str:
    if ci[0] > 0 or ci[1] < 0:
        return "confirmed" if (diff > 0) == (paper > 0) else "reversed"
    return "not confirmed"


def paired(a: Run, b: Run, seed: int = 0) -> list[dict]:
    """``compare``'s records of B - A on the clean images, per test set and pooled over the sets."""
    rows_a, rows_b = read_rows(per_image_file(a.path)), read_rows(per_image_file(b.path))
    scored = set(next(iter(rows_a.values()), {})) & set(next(iter(rows_b.values()), {}))
    names = [m for m in METRICS if m in scored]
    records = compare(rows_a, rows_b, a.stage, names, seed, stage_b=b.stage)
    pooled = compare({(POOLED, st, f"{s}/{n}"): r for (s, st, n), r in rows_a.items()},
                     {(POOLED, st, f"{s}/{n}"): r for (s, st, n), r in rows_b.items()},
                     a.stage, names, seed, stage_b=b.stage)
    return [r for r in records + pooled if r["subset"] == "clean"]


def claims(sweep: Sweep, seed: int = 0) -> list[dict]:
    """One record per claim and test set: the paired differences of ``METRICS`` and the PSNR verdict."""
    by_key = {r.key: r for r in sweep.runs if r.summary}
    out = []
    for key_a, key_b, text, paper in CLAIMS:
        if key_a not in by_key or key_b not in by_key:
            out.append({"claim": text, "missing": ["+".join(k) for k in (key_a, key_b) if k not in by_key]})
            continue
        a, b = by_key[key_a], by_key[key_b]
        try:
            records = paired(a, b, seed)
        except (FileNotFoundError, ValueError) as exc:  # no per-image scores, or no image in common
            out.append({"claim": text, "missing": [f"{a.label} vs {b.label}: {exc}"]})
            continue
        for test_set in dict.fromkeys(r["set"] for r in records):
            diffs = {r["metric"]: r for r in records if r["set"] == test_set}
            psnr = diffs["psnr"]
            out.append({"claim": text, "a": a.label, "b": b.label, "set": test_set, "images": psnr["images"],
                        "paper_psnr_diff": paper, "diffs": {m: {k: r[k] for k in ("diff", "ci95", "b_better")}
                                                            for m, r in diffs.items()},
                        "verdict": verdict(psnr["diff"], psnr["ci95"], paper)})
    return out


def claims_table(records: list[dict]) -> str:
    """Markdown: one row per claim and test set, B - A with its interval for each metric."""
    head = ["Claim", "Test set (clean)", "Images"] + [f"Δ {COLUMNS.get(m, m)}" for m in METRICS] + [
        "Paper Δ PSNR", "Verdict (PSNR)"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:|" + "---:|" * len(METRICS) + "---:|---|"]
    for r in records:
        if "missing" in r:
            lines.append(f"| {r['claim']} | missing: {'; '.join(r['missing'])} |"
                         + " |" * (len(head) - 2))
            continue
        cells = ["{:+.4f} [{:+.4f}, {:+.4f}]".format(r["diffs"][m]["diff"], *r["diffs"][m]["ci95"])
                 if m in r["diffs"] else "" for m in METRICS]
        lines.append(f"| {r['claim']} | `{r['set']}` | {r['images']} | " + " | ".join(cells)
                     + f" | {r['paper_psnr_diff']:+.2f} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def _pooled(a: Run, b: Run, seed: int) -> dict[str, dict]:
    return {r["metric"]: r for r in paired(a, b, seed) if r["set"] == POOLED}


def consistent(diffs: list[dict]) -> str:
    """``B better``/``A better`` where every seed's interval is clear of 0 on that side, else ``not real``."""
    sides = {("B" if (r["ci95"][0] > 0) == HIGHER_IS_BETTER.get(r["metric"], True) else "A")
             if r["ci95"][0] > 0 or r["ci95"][1] < 0 else "none" for r in diffs}
    return f"{sides.pop()} better" if len(sides) == 1 and "none" not in sides else "not real"


def seed_claims(sweeps: list[Sweep], seed: int = 0) -> list[dict]:
    """Each claim whose two rows were trained on two seeds or more (across ``sweeps``): its pooled paired
    differences per training seed, and per metric whether the difference is real on all seeds."""
    by_seed: dict[int, dict[tuple[str, str], Run]] = {}
    for sweep in sweeps:
        for run in sweep.runs:
            if run.summary and run.seed is not None:
                by_seed.setdefault(run.seed, {}).setdefault(run.key, run)
    out = []
    for key_a, key_b, text, paper in CLAIMS:
        seeds = sorted(s for s, runs in by_seed.items() if key_a in runs and key_b in runs)
        if len(seeds) < 2:
            continue
        per_seed = {s: _pooled(by_seed[s][key_a], by_seed[s][key_b], seed) for s in seeds}
        names = [m for m in METRICS if all(m in d for d in per_seed.values())]
        out.append({"claim": text, "a": by_seed[seeds[0]][key_a].label, "b": by_seed[seeds[0]][key_b].label,
                    "paper_psnr_diff": paper,
                    "seeds": [{"seed": s, "images": d["psnr"]["images"],
                               "diffs": {m: {k: d[m][k] for k in ("diff", "ci95", "b_better")} for m in names}}
                              for s, d in per_seed.items()],
                    "over_seeds": {m: consistent([per_seed[s][m] for s in seeds]) for m in names}})
    return out


def seed_table(records: list[dict]) -> str:
    """Markdown: per claim, one row per seed (B - A pooled over the test sets) and one row of the verdicts."""
    head = ["Claim", "Seed", "Images"] + [f"Δ {COLUMNS.get(m, m)}" for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|" + "---:|" * len(METRICS)]
    for r in records:
        for s in r["seeds"]:
            cells = ["{:+.4f} [{:+.4f}, {:+.4f}]".format(s["diffs"][m]["diff"], *s["diffs"][m]["ci95"])
                     if m in s["diffs"] else "" for m in METRICS]
            lines.append(f"| {r['claim']} | {s['seed']} | {s['images']} | " + " | ".join(cells) + " |")
        lines.append(f"| **over {len(r['seeds'])} seeds** | | | "
                     + " | ".join(f"**{r['over_seeds'].get(m, '')}**" for m in METRICS) + " |")
    return "\n".join(lines) + "\n"

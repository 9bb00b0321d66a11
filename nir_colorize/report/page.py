"""Write a sweep's results page: README.md, table.md, samples.png, val_psnr.png, summary.json."""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from nir_colorize import PROJECT_ROOT
from nir_colorize.report.claims import claims, claims_table, seed_claims, seed_table
from nir_colorize.report.collect import Sweep, relative, run_table_rows
from nir_colorize.report.figures import psnr_plot, sample_grid
from nir_colorize.report.table import metric_table, paper_table, runs_table

log = logging.getLogger(__name__)

FILES = ("README.md", "table.md", "samples.png", "val_psnr.png", "summary.json")
SAMPLE_ROOT = PROJECT_ROOT / "data" / "sample"


def _data_root(sweep: Sweep) -> Path | None:
    for run in sweep.runs:
        if run.cfg is not None:
            try:
                root = OmegaConf.select(run.cfg, "data.source.root")
                return Path(str(root)).resolve() if root else None
            except Exception:  # noqa: BLE001 - an unresolvable interpolation: unknown
                return None
    return None


def _seeds_section(sweep: Sweep, seeds: list[Sweep]) -> list[str]:
    records = seed_claims([sweep, *seeds])
    parts = ["## Seeds", "", "Retrained on other seeds: " + ", ".join(
        f"`{relative(s.path)}` ({' '.join(s.command)})" for s in seeds) + ".", ""]
    if not records:
        return parts + ["No claim has both of its rows on two seeds or more.", ""]
    return parts + [seed_table(records),
                    "B - A pooled over the clean images of every test set, per training seed [seeded 95 % bootstrap "
                    "interval]. A difference is real only where its interval is clear of 0 on every seed with the "
                    "same sign (*B better* / *A better*); else *not real*.", "", "### Runs on other seeds", "",
                    *(runs_table(s) for s in seeds)]


def _readme(sweep: Sweep, out: Path, files: dict[str, bool], images: list[str], report_cmd: str,
            note: str | None, seeds: list[Sweep]) -> str:
    study = sweep.study
    cmd = "python -m nir_colorize.train -m " + " ".join(shlex.quote(o) for o in sweep.command) \
        if sweep.command else "(unknown: the sweep has no multirun.yaml)"
    parts = [f"# {study}", "",
             "Made by (from the repository root, `HF_HUB_OFFLINE=1 WANDB_MODE=offline`):", "", "```bash", cmd,
             report_cmd, "```", "",
             f"Sweep: `{relative(sweep.path)}` ({len(sweep.jobs)} of {len(sweep.expected) or '?'} jobs present).", ""]
    root = _data_root(sweep)
    if root is not None and root == SAMPLE_ROOT.resolve():
        parts += ["**Note.** Trained and tested on the embedded sample (`data/sample`: 32 training, 8 validation "
                  "and 8 test images of 256x256) for the few epochs given above, on a CPU: a smoke test of "
                  "the whole study, not a reproduction. The numbers are far from the paper's (VCIP 2020 data, "
                  "300 epochs) and the ranking of the variants means little at this size.", ""]
    if note:
        parts += [note, ""]
    parts += ["## Results", "", metric_table(sweep), "## Runs", "", runs_table(sweep)]
    for r in (r for r in sweep.runs if r.stage != "raw"):
        parts += [f"{r.label}: the best checkpoint of job {r.job} followed by {r.stage.upper()} at test time; the "
                  "same checkpoint without it is the job's other row (its test/metrics.json holds both).", ""]
    parts += ["## The paper's claims, paired", "", claims_table(claims(sweep)),
              "B - A on the same clean test images, mean [seeded 95 % bootstrap interval]; "
              "`all test sets` pools every test set's images. A claim is confirmed where the PSNR difference has the "
              "paper's sign and its interval is clear of 0, reversed where it is clear of 0 with the other sign. The "
              "paper's differences come from its own protocol (published VCIP test images, 300 epochs) and are not "
              "comparable; only their sign is.", ""]
    if seeds:
        parts += _seeds_section(sweep, seeds)
    if files.get("samples.png"):
        parts += ["## Sample test images", "",
                  f"Columns: NIR, each variant's best checkpoint (with BFWLS for the BFWLS row), ground truth. "
                  f"Rows: {', '.join(f'`{n}`' for n in images)}.", "", "![samples](samples.png)", ""]
    if files.get("val_psnr.png"):
        parts += ["## Validation PSNR per epoch", "", "![validation PSNR](val_psnr.png)", ""]
    parts += ["## The paper's Table 2, for comparison", "", paper_table()]
    problems = sweep.problems + [f"seeds: {p}" for s in seeds for p in s.problems]
    if problems:
        parts += ["## Missing", ""] + [f"- {p}" for p in problems] + [""]
    return "\n".join(parts)


def write_report(sweep: Sweep, out: str | Path, images: int = 3, tile: int = 160,
                 data_root: str | None = None, note: str | None = None, seeds: list[Sweep] | None = None,
                 report_cmd: str | None = None) -> dict[str, Path]:
    """Write the page into ``out``; ``seeds``: sweeps that retrain some of the rows on other seeds. Files are built
    in a temporary folder and moved in at the end, so a failure leaves the previous page whole. Returns the paths
    written."""
    seeds = seeds or []
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp_dir:
        tmp = Path(tmp_dir)
        made: dict[str, bool] = {}
        names: list[str] = []
        try:
            _, names = sample_grid(sweep, tmp / "samples.png", images, tile, data_root)
            made["samples.png"] = True
        except Exception as exc:  # noqa: BLE001 - report what is there, say what is not
            log.warning("no sample grid: %s", exc)
            sweep.problems.append(f"sample grid: {type(exc).__name__}: {exc}")
        psnr_plot(sweep, tmp / "val_psnr.png")
        made["val_psnr.png"] = any(r.curve for r in sweep.runs)
        if not made["val_psnr.png"]:
            (tmp / "val_psnr.png").unlink()
        report_cmd = report_cmd or f"python -m nir_colorize.report {relative(sweep.path)} --out {relative(out)}"
        (tmp / "table.md").write_text(f"# {sweep.study}\n\n{metric_table(sweep)}")
        (tmp / "README.md").write_text(_readme(sweep, out, made, names, report_cmd, note, seeds))
        (tmp / "summary.json").write_text(json.dumps(
            {"study": sweep.study, "sweep": relative(sweep.path), "command": sweep.command, "runs": run_table_rows(sweep),
             "claims": claims(sweep), "seed_sweeps": [relative(s.path) for s in seeds],
             "seed_runs": [row for s in seeds for row in run_table_rows(s)],
             "seed_claims": seed_claims([sweep, *seeds]) if seeds else [],
             "problems": sweep.problems + [p for s in seeds for p in s.problems]}, indent=2))
        out.mkdir(exist_ok=True)
        written = {}
        for name in FILES:
            if (tmp / name).is_file():
                shutil.move(tmp / name, out / name)  # same file system: a rename
                written[name] = out / name
            else:
                (out / name).unlink(missing_ok=True)  # no stale figure from an earlier report
    return written

"""Read the jobs of a Hydra multirun directory: config, overrides, test metrics, validation curve, checkpoint."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from nir_colorize import PROJECT_ROOT

# The paper's Table 2 rows, in its order: (model, fusion) -> label.
VARIANTS: dict[tuple[str, str], str] = {
    ("scd", "none"): "SCD only",
    ("linknet", "none"): "LinkNet",
    ("acd", "none"): "ACD only",
    ("colornet", "none"): "ACD+GLFFNet (ColorNet)",
    ("colornet", "bfwls"): "ColorNet + BFWLS (Ours)",
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}$")
LOG_TIME = re.compile(r"^\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3})\]")  # Hydra's job log lines
SWEEPS_DIR = PROJECT_ROOT / "logs" / "train" / "multiruns"


class ReportError(ValueError):
    """A sweep directory that cannot be reported at all (the message says why)."""


@dataclass
class Run:
    """One job of the sweep; ``missing`` lists what it lacks, in words."""

    job: str
    path: Path
    overrides: list[str] = field(default_factory=list)
    cfg: DictConfig | None = None
    summary: dict[str, dict[str, dict[str, dict]]] | None = None  # set -> all | clean -> stage -> metrics
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, val/psnr)
    checkpoint: Path | None = None
    missing: list[str] = field(default_factory=list)
    fusion: str | None = None  # the row's stage when one test holds several (``stage_rows``); else the config's

    @property
    def key(self) -> tuple[str, str]:
        if self.cfg is None:
            return ("?", "?")
        return (str(OmegaConf.select(self.cfg, "model.name")),
                self.fusion or str(OmegaConf.select(self.cfg, "fusion.name")))

    @property
    def label(self) -> str:
        model, fusion = self.key
        recipe = OmegaConf.select(self.cfg, "recipe") if self.cfg is not None else None
        if recipe:  # a recipe study (conf/experiment/recipe.yaml): the recipe names the row
            return f"{recipe} ({model})" if fusion in ("none", "None") else f"{recipe} ({model} + {fusion.upper()})"
        if self.key in VARIANTS:
            return VARIANTS[self.key]
        if self.cfg is None:
            return f"job {self.job} ({' '.join(self.overrides) or 'no config'})"
        return model if fusion in ("none", "None") else f"{model} + {fusion.upper()}"

    @property
    def order(self) -> tuple[int, int]:
        keys = list(VARIANTS)
        return (keys.index(self.key) if self.key in keys else len(keys), int(self.job) if self.job.isdigit() else 0)

    @property
    def sets(self) -> list[str]:
        """The test sets of ``test/metrics.json``, in its order."""
        return list(self.summary or {})

    @property
    def stages(self) -> list[str]:
        """The stages of ``test/metrics.json`` (``raw``, and e.g. ``bfwls`` when tested with a fusion), in order."""
        return list(dict.fromkeys(st for by_subset in (self.summary or {}).values() for st in by_subset.get("all", {})))

    @property
    def stage(self) -> str:
        """The stage of ``test/metrics.json`` that is this variant's result: after fusion where there is one."""
        return self.key[1] if self.key[1] != "none" and self.key[1] in self.stages else "raw"

    def metrics(self, test_set: str, subset: str = "clean") -> dict[str, float] | None:
        """This variant's means on ``subset`` (all | clean) of ``test_set``, or None."""
        return (self.summary or {}).get(test_set, {}).get(subset, {}).get(self.stage)

    @property
    def epochs(self) -> int | None:
        return max(e for e, _ in self.curve) + 1 if self.curve else None

    @property
    def best_val_psnr(self) -> float | None:
        return max(p for _, p in self.curve) if self.curve else None

    @property
    def seed(self) -> int | None:
        """The training seed (``seed`` of the job's config)."""
        value = OmegaConf.select(self.cfg, "seed") if self.cfg is not None else None
        return int(value) if value is not None else None

    @property
    def minutes(self) -> float | None:
        """Wall time of the job (training and test), from the first and last timestamps of its ``train.log``."""
        try:
            stamps = [LOG_TIME.match(line) for line in (self.path / "train.log").read_text().splitlines()]
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        times = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") for m in stamps if m]
        return (times[-1] - times[0]).total_seconds() / 60 if len(times) > 1 else None


@dataclass
class Sweep:
    path: Path
    runs: list[Run]
    expected: list[list[str]]  # the overrides of every job the sweep launched (from multirun.yaml)
    command: list[str]  # the sweep's command-line overrides
    problems: list[str]  # what is missing, in words
    study_name: str | None = None  # given by the user; else the runs' `study`, else the folder's name

    @property
    def jobs(self) -> list[str]:
        """The jobs present (a job tested with a fusion gives two rows, ``stage_rows``)."""
        return list(dict.fromkeys(r.job for r in self.runs))

    @property
    def study(self) -> str:
        if self.study_name:
            return self.study_name
        for run in self.runs:
            name = OmegaConf.select(run.cfg, "study") if run.cfg is not None else None
            if name:
                return str(name)
        return self.path.parent.name if TIMESTAMP.match(self.path.name) and self.path.parent.name != "multiruns" \
            else self.path.name


def find_sweep(path: str | Path | None, study: str | None = None) -> Path:
    """``path`` itself when it is a sweep (has ``multirun.yaml`` or job folders); else its newest sweep
    (a study folder of timestamped sweeps); with no path, the newest sweep of ``logs/train/multiruns/<study>``."""
    if path is None:
        if not study:
            raise ReportError("give a sweep directory, or --study NAME to take the newest sweep of that study")
        path = SWEEPS_DIR / study
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"sweep directory {path} does not exist")
    if (path / "multirun.yaml").is_file() or any(p.is_dir() and p.name.isdigit() for p in path.iterdir()):
        return path
    sweeps = sorted(p for p in path.iterdir() if p.is_dir() and TIMESTAMP.match(p.name))
    if not sweeps:
        raise ReportError(f"{path} is not a sweep directory (no multirun.yaml, no job folders 0, 1, ...) "
                          "and holds no timestamped sweeps")
    return sweeps[-1]


def expected_jobs(sweep_dir: Path) -> tuple[list[list[str]], list[str]]:
    """The overrides of every job the sweep launched, and its command-line overrides, from ``multirun.yaml``."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    file = sweep_dir / "multirun.yaml"
    if not file.is_file():
        return [], []
    hydra_cfg = OmegaConf.load(file).hydra
    task = [str(o) for o in hydra_cfg.overrides.task]
    params = OmegaConf.select(hydra_cfg, "sweeper.params") or {}
    combined = [f"{k}={v}" for k, v in params.items()] + task
    launcher = [str(o) for o in hydra_cfg.overrides.hydra if str(o) != "hydra.mode=MULTIRUN"]
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(combined), None)
    return [job for batch in batches for job in batch], launcher + task


def read_curve(path: Path) -> list[tuple[int, float]]:
    """(epoch, val/psnr) of every validation epoch logged by the CSV logger."""
    with open(path, newline="") as fh:
        return [(int(float(r["epoch"])), float(r["val/psnr"])) for r in csv.DictReader(fh)
                if r.get("val/psnr") and r.get("epoch") and math.isfinite(float(r["val/psnr"]))]


def read_run(job_dir: Path) -> Run:
    """Everything the report needs from one job directory; what is absent goes to ``run.missing``."""
    run = Run(job=job_dir.name, path=job_dir)
    hydra_dir = job_dir / ".hydra"
    if (hydra_dir / "overrides.yaml").is_file():
        run.overrides = [str(o) for o in OmegaConf.load(hydra_dir / "overrides.yaml")]
    if (hydra_dir / "config.yaml").is_file():
        run.cfg = OmegaConf.load(hydra_dir / "config.yaml")
        OmegaConf.update(run.cfg, "paths.output_dir", str(job_dir), force_add=True)  # no Hydra here to resolve it
    else:
        run.missing.append(".hydra/config.yaml (variant unknown)")
    metrics = job_dir / "test" / "metrics.json"
    try:
        run.summary = json.loads(metrics.read_text())["summary"]
    except FileNotFoundError:
        run.missing.append("test/metrics.json (no test results: did the job finish?)")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        run.missing.append(f"test/metrics.json unreadable ({type(exc).__name__}: {exc})")
    curve = job_dir / "csv" / "metrics.csv"
    try:
        run.curve = read_curve(curve)
        if not run.curve:
            run.missing.append("val/psnr in csv/metrics.csv (no validation epoch logged)")
    except FileNotFoundError:
        run.missing.append("csv/metrics.csv (no CSV logger, or fast_dev_run)")
    except (KeyError, ValueError) as exc:
        run.missing.append(f"csv/metrics.csv unreadable ({type(exc).__name__}: {exc})")
    best = job_dir / "checkpoints" / "best.ckpt"
    if best.is_file():
        run.checkpoint = best
    else:
        run.missing.append("checkpoints/best.ckpt (no sample images for this variant)")
    return run


def stage_rows(run: Run) -> list[Run]:
    """A run tested with and without a fusion (the same checkpoint, the same images) as one row per stage: the
    ColorNet job's ``raw`` is the paper's "ACD+GLFFNet" row and its ``bfwls`` the "ColorNet + BFWLS" row."""
    stages = run.stages or (["raw", run.key[1]] if run.key[1] not in ("none", "None", "?") else [])
    if len(stages) < 2:
        return [run]
    return [replace(run, fusion="none" if stage == "raw" else stage) for stage in stages]


def collect_sweep(sweep_dir: str | Path) -> Sweep:
    """Read every job of ``sweep_dir``; jobs launched but absent and files missing go to ``problems``."""
    sweep_dir = Path(sweep_dir)
    expected, command = expected_jobs(sweep_dir)
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    runs = [row for p in jobs for row in stage_rows(read_run(p))]
    problems = []
    if not (sweep_dir / "multirun.yaml").is_file():
        problems.append(f"{sweep_dir}/multirun.yaml is missing: cannot tell whether every job of the sweep is here")
    present = {r.job for r in runs}
    for num, overrides in enumerate(expected):
        if str(num) not in present:
            problems.append(f"job {num} ({' '.join(overrides)}) is missing: no folder {sweep_dir / str(num)}")
    first = {}
    for run in runs:  # a job's first row names it
        first.setdefault(run.job, run)
    for run in first.values():
        problems += [f"job {run.job} ({run.label}): missing {what}" for what in run.missing]
    if not runs:
        raise ReportError(f"{sweep_dir}: no job folders (0, 1, ...) to report" +
                          ("".join(f"\n  {p}" for p in problems) if problems else ""))
    runs.sort(key=lambda r: r.order)
    return Sweep(sweep_dir, runs, expected, command, problems)


def relative(path: Path) -> str:
    """``path`` relative to the repository root where it is inside it (committed pages carry no local paths)."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def run_table_rows(sweep: Sweep) -> list[dict[str, Any]]:
    """One JSON-ready record per run (summary.json)."""
    return [{"job": r.job, "label": r.label, "model": r.key[0], "fusion": r.key[1], "overrides": r.overrides,
             "stage": r.stage, "seed": r.seed, "metrics": r.summary, "epochs": r.epochs, "minutes": r.minutes,
             "best_val_psnr": r.best_val_psnr,
             "val_psnr": [[e, p] for e, p in r.curve], "checkpoint": relative(r.checkpoint) if r.checkpoint else None,
             "missing": r.missing} for r in sweep.runs]

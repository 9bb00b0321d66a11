"""The ablation study in one command (four-experiment multirun, five rows) and its results page (nir_colorize.report)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from nir_colorize.report import __main__ as report
from nir_colorize.report.claims import CLAIMS
from nir_colorize.report.figures import GAP, HEADER
from tests.conftest import ROOT, SAMPLE, train_cfg

EXPERIMENTS = ["ablation_scd", "ablation_linknet", "ablation_acd", "ablation_colornet"]
LABELS = ["SCD only", "LinkNet", "ACD only", "ACD+GLFFNet (ColorNet)", "ColorNet + BFWLS (Ours)"]
ROWS = [(0, "raw"), (1, "raw"), (2, "raw"), (3, "raw"), (3, "bfwls")]  # (job, stage of its test) of each row
TILE = 48
# Tiny and fast: one epoch of one 64x64 batch, one validation and one test batch of two whole images, cheap
# test metrics, weights-only best checkpoint, no last.ckpt.
TINY = ["trainer.accelerator=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "+trainer.num_sanity_val_steps=0",
        "data.batch_size=2", "data.crop_size=64", "data.eval_batch_size=2", "data.num_workers=0",
        "module.test_metrics=[mae,psnr,ssim]", "callbacks.last_checkpoint=null",
        "callbacks.model_checkpoint.save_weights_only=true", "callbacks.validation_images=null"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `make ablation` multirun, tiny: four jobs, each trained then tested (ColorNet with and without BFWLS)."""
    tmp = tmp_path_factory.mktemp("ablation")
    proc = subprocess.run(
        [sys.executable, "-m", "nir_colorize.train", "-m", "+experiment=" + ",".join(EXPERIMENTS),
         "study=test_study", *TINY, f"paths.log_dir={tmp / 'logs'}"],
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT),
                       "OMP_NUM_THREADS": "1"},  # tiny jobs: 2 threads gain nothing and spin on a loaded CPU (4x slower)
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweeps = list((tmp / "logs" / "train" / "multiruns" / "test_study").iterdir())  # the study names the folder
    assert len(sweeps) == 1, sweeps
    return sweeps[0]


def table_rows(markdown: str, block: int = 0) -> list[list[str]]:
    """The rows of the ``block``-th table (per test set and subset: validation clean, validation all, testing ...)."""
    markdown = markdown.split("### Test set ")[block + 1]
    lines = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def png(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    assert image.format == "PNG"
    return image


def test_report_of_the_ablation_sweep(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "page"
    assert report.main([str(sweep.parent), "--out", str(out), "--images", "2", "--tile", str(TILE)]) == 0
    assert "missing" not in capsys.readouterr().err

    # The table: five rows in the paper's order, each a job's own test result (the last two: the ColorNet job's
    # test without and with BFWLS, the same checkpoint on the same images).
    table = (out / "table.md").read_text()
    assert [h.split("\n")[0] for h in table.split("### Test set ")[1:]] == [
        "`validation`, clean images", "`validation`, all images", "`testing`, clean images", "`testing`, all images"]
    for block, (test_set, subset) in enumerate([("validation", "clean"), ("validation", "all"), ("testing", "clean")]):
        rows = table_rows(table, block)
        assert [r[0] for r in rows] == LABELS
        for (job, stage_name), row in zip(ROWS, rows, strict=True):
            assert f"+experiment={EXPERIMENTS[job]}" in (sweep / str(job) / ".hydra" / "overrides.yaml").read_text()
            summary = json.loads((sweep / str(job) / "test" / "metrics.json").read_text())["summary"]
            stage = summary[test_set][subset][stage_name]
            psnr, interval = row[2].split(" [")  # column 2: PSNR [95 % interval]
            assert float(psnr.strip("*")) == pytest.approx(stage["psnr"], abs=1e-4)
            assert interval == "{:.2f}, {:.2f}]".format(*stage["psnr_ci95"])
            assert row[-1] == "2"  # images tested
    readme = (out / "README.md").read_text()
    assert "python -m nir_colorize.train -m +experiment=" + ",".join(EXPERIMENTS) in readme
    assert "study=test_study" in readme and "## Missing" not in readme

    # The paper's three claims: paired differences on the same images, here recomputed from the per-image CSVs.
    assert "## The paper's claims, paired" in readme
    claims = json.loads((out / "summary.json").read_text())["claims"]
    assert [c["claim"] for c in claims if c["set"] == "all test sets"] == [text for *_, text, _ in CLAIMS]
    with open(sweep / "3" / "test" / "per_image.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["clean"] == "True"]
    psnr = {(r["set"], r["name"], r["stage"]): float(r["psnr"]) for r in rows}
    diffs = [psnr[s, n, "bfwls"] - psnr[s, n, "raw"] for (s, n, stage) in psnr if stage == "raw"]
    bfwls = next(c for c in claims if c["set"] == "all test sets" and c["b"] == "ColorNet + BFWLS (Ours)")
    assert bfwls["images"] == len(diffs) and bfwls["diffs"]["psnr"]["diff"] == pytest.approx(np.mean(diffs))
    low, high = bfwls["diffs"]["psnr"]["ci95"]
    assert bfwls["verdict"] == ("confirmed" if low > 0 else "reversed" if high < 0 else "not confirmed")

    # The grid: the first image of each test set x (NIR, five rows, ground truth), tiles as the sample files, fitted.
    grid = np.asarray(png(out / "samples.png").convert("RGB"))
    assert grid.shape == (HEADER + 2 * TILE + GAP, 7 * TILE + 6 * GAP, 3)  # one image of each test set

    def tile(row: int, col: int) -> np.ndarray:
        top, left = HEADER + row * (TILE + GAP), col * (TILE + GAP)
        return grid[top:top + TILE, left:left + TILE].astype(int)

    for row, (nir_file, rgb_file) in enumerate((("Validation/validation_0000_nir.png", "Validation/validation_0000_rgb_reg.png"),
                                                 ("Testing/testing_0000_nir_reg.png", "Testing/Testing_0000_rgb_reg.png"))):
        nir, rgb = (Image.open(SAMPLE / name).convert("RGB") for name in (nir_file, rgb_file))
        for col, ref in ((0, nir), (6, rgb)):
            expected = np.asarray(ImageOps.pad(ref, (TILE, TILE), method=Image.Resampling.BICUBIC)).astype(int)
            assert np.abs(tile(row, col) - expected).max() <= 1
        for col in range(1, 6):  # a colorized tile: not the NIR (gray), not the gray "missing" tile
            assert np.ptp(tile(row, col), axis=2).mean() > 0.5
    assert not np.array_equal(tile(0, 4), tile(0, 5))  # BFWLS changes the ColorNet output

    # The plot: a PNG; its data, in summary.json, are each job's logged val/psnr.
    assert png(out / "val_psnr.png").size[0] > 300
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert [(int(r["job"]), r["stage"]) for r in runs] == ROWS
    for run in runs:
        with open(sweep / run["job"] / "csv" / "metrics.csv") as fh:
            logged = [float(r["val/psnr"]) for r in csv.DictReader(fh) if r["val/psnr"]]
        assert [p for _, p in run["val_psnr"]] == pytest.approx(logged) and len(logged) == 1


def test_report_says_what_is_missing(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / "sweep"
    broken.mkdir()
    shutil.copy(sweep / "multirun.yaml", broken)
    for job in ("0", "1"):
        (broken / job).symlink_to(sweep / job)
    shutil.copytree(sweep / "3", broken / "3", ignore=shutil.ignore_patterns("test", "checkpoints"))  # crashed
    out = tmp_path / "page"
    assert report.main([str(broken), "--out", str(out), "--images", "1", "--tile", str(TILE)]) == 0
    err = capsys.readouterr().err
    assert "job 2 (+experiment=ablation_acd study=test_study" in err and f"no folder {broken / '2'}" in err
    assert "job 3 (ACD+GLFFNet (ColorNet)): missing test/metrics.json" in err
    assert "job 3 (ACD+GLFFNet (ColorNet)): missing checkpoints/best.ckpt" in err
    rows = table_rows((out / "table.md").read_text())
    assert [r[0] for r in rows] == ["SCD only", "LinkNet", "ACD+GLFFNet (ColorNet)", "ColorNet + BFWLS (Ours)"]
    assert rows[2][1] == "missing" and rows[3][1] == "missing"  # the crashed job's two rows
    assert "## Missing" in (out / "README.md").read_text()
    grid = np.asarray(png(out / "samples.png").convert("RGB"))
    assert grid.shape[1] == 6 * TILE + 5 * GAP  # NIR, four rows, ground truth; job 3's two columns gray
    for col in (3, 4):
        column = grid[HEADER:HEADER + TILE, col * (TILE + GAP):col * (TILE + GAP) + TILE]
        assert (column[: TILE // 4] == 200).all()


def test_report_pairs_the_claims_per_seed(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # ACD (job 2) and ColorNet (job 3) "retrained" on seed 43: the same files, ColorNet's raw PSNR 1 dB higher.
    other = tmp_path / "seed43"
    other.mkdir()
    shutil.copy(sweep / "multirun.yaml", other)
    for job in ("2", "3"):
        shutil.copytree(sweep / job, other / job, ignore=shutil.ignore_patterns("checkpoints", "wandb"))
        config = other / job / ".hydra" / "config.yaml"
        config.write_text(config.read_text().replace("\nseed: 42\n", "\nseed: 43\n"))
    with open(other / "3" / "test" / "per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["psnr"] = str(float(r["psnr"]) + 1.0) if r["stage"] == "raw" else r["psnr"]
    with open(other / "3" / "test" / "per_image.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    out = tmp_path / "page"
    assert report.main([str(sweep), "--out", str(out), "--images", "1", "--tile", str(TILE), "--seeds", str(other)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    by_claim = {c["claim"]: c for c in summary["seed_claims"]}
    glff = by_claim[CLAIMS[1][2]]  # ColorNet - ACD: on both seeds
    assert CLAIMS[0][2] not in by_claim  # SCD was not retrained: no seed rows for ACD - SCD
    first, second = ({s["seed"]: s for s in glff["seeds"]}[k]["diffs"]["psnr"] for k in (42, 43))
    assert second["diff"] == pytest.approx(first["diff"] + 1.0, abs=1e-9)
    sides = {"B" if r["ci95"][0] > 0 else "A" if r["ci95"][1] < 0 else "none" for r in (first, second)}
    assert glff["over_seeds"]["psnr"] == (f"{sides.pop()} better" if len(sides) == 1 and "none" not in sides
                                          else "not real")
    assert [(r["job"], r["seed"]) for r in summary["seed_runs"]] == [("2", 43), ("3", 43), ("3", 43)]
    readme = (out / "README.md").read_text()
    assert "## Seeds" in readme and "**over 2 seeds**" in readme and "--seeds" in readme


def test_report_of_no_sweep_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert report.main([str(tmp_path / "nowhere")]) == 2
    assert f"sweep directory {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert report.main([str(tmp_path)]) == 2
    assert "is not a sweep directory" in capsys.readouterr().err


def test_wandb_gives_each_job_of_a_study_its_own_run_in_the_group(tmp_path: Path) -> None:
    from nir_colorize import train

    # Two jobs in one process, as a Hydra multirun runs them: the second must not log into the first's run.
    for job, experiment in enumerate(("ablation_linknet", "ablation_linknet")):
        train.run(train_cfg(tmp_path, "logger=wandb", "study=my_study", f"+experiment={experiment}",
                            *(o for o in TINY if "validation_images" not in o),
                            name=str(job)))
    for job in ("0", "1"):
        runs = list((tmp_path / job / "wandb").glob("offline-run-*/*.wandb"))
        assert len(runs) == 1, f"job {job}: {runs}"
        data = runs[0].read_bytes()  # protobuf records: strings stored as UTF-8
        assert b"my_study" in data and b"train-linknet-none" in data and b"val/images" in data


def test_wandb_logs_a_study_as_one_group_with_a_tag_per_variant(tmp_path: Path) -> None:
    from nir_colorize.utils.compose import compose_config
    from nir_colorize.utils.instantiate import instantiate_loggers

    for experiment, tag in (("ablation_acd", "acd"), ("ablation_colornet", "colornet")):
        cfg = compose_config("train", ["logger=wandb", "study=my_study", f"+experiment={experiment}",
                                       f"paths.log_dir={tmp_path}"], output_dir=tmp_path / experiment)
        wandb, csv_logger = sorted(instantiate_loggers(cfg), key=lambda lg: type(lg).__name__ != "WandbLogger")
        init = wandb._wandb_init  # what Lightning passes to wandb.init (offline: conftest sets WANDB_MODE)
        assert init["group"] == "my_study" and tag in init["tags"] and wandb._offline
        assert type(csv_logger).__name__ == "CSVLogger"  # the report's validation curve
    assert init["name"] == "train-colornet-bfwls"
    single = compose_config("train", ["logger=wandb", f"paths.log_dir={tmp_path}"], output_dir=tmp_path / "one")
    assert single.logger.wandb.group is None  # no study: no group

"""Beyond one device (docs/scaling.md): DDP on two CPU processes, parallel and SLURM sweeps, compile, bf16."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import open_dict

from nir_colorize import CONFIG_DIR
from nir_colorize import eval as eval_entry
from nir_colorize.module import ColorizationModule
from nir_colorize.utils.compose import compose_config
from nir_colorize.utils.distributed import merge_rows
from tests.conftest import ROOT, train_cfg

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def entry_point(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m nir_colorize.train ARGS`` from the repository root, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "nir_colorize.train", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def logged(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key)]


@pytest.mark.slow
def test_ddp_two_cpu_processes_checkpoint_and_count_every_image_once(sample_copy: Path, tmp_path: Path) -> None:
    # 7 test and 7 val images on 2 ranks: Lightning's DistributedSampler would pad rank 1 with a repeat of image 0.
    for path in sample_copy.glob("Testing/*_0007_*"):
        path.unlink()
    carve = ["data.source.val_ratio=0.22", "data.source.split_file=null"]  # 7 of the 32 training pairs
    test_names = sorted(p.stem for p in (sample_copy / "Testing").glob("testing_*_nir_reg.png"))
    assert len(test_names) == 7
    proc = entry_point("trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.max_epochs=1",
                       "trainer.limit_train_batches=2", "trainer.limit_val_batches=2", "data.num_workers=0",
                       f"data.source.root={sample_copy}", f"paths.log_dir={tmp_path / 'logs'}", *carve)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "distributed_backend=gloo" in out and "Starting with 2 processes" in out
    # Lightning re-launched rank 1 (seconds later) into rank 0's timestamped run directory: only one exists.
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1, runs
    run_dir = runs[0]
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()

    metrics = read_csv(run_dir / "csv" / "metrics.csv")
    val_psnr = logged(metrics, "val/psnr")
    assert len(val_psnr) == 1 and math.isfinite(val_psnr[0])
    summary = json.loads((run_dir / "test" / "metrics.json").read_text())["summary"]["testing"]["all"]["raw"]
    per_image = read_csv(run_dir / "test" / "per_image.csv")
    assert summary["images"] == 7
    assert sorted(r["name"] for r in per_image if r["set"] == "testing") == test_names
    # torchmetrics' test psnr (states summed over ranks) equals the mean of the gathered rows: no repeat counted.
    assert logged(metrics, "test/testing/psnr")[0] == pytest.approx(summary["psnr"], abs=1e-4)

    # val/psnr synchronised over both ranks, each of the 7 val images once: one process agrees on all 7.
    cfg = compose_config("eval", [f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", "split=val",
                                  "metrics=[mae,psnr,ssim]", "trainer.accelerator=cpu",
                                  f"data.source.root={sample_copy}", f"paths.log_dir={tmp_path / 'logs'}", *carve],
                         output_dir=tmp_path / "eval")
    reference = eval_entry.run(cfg)["val"]["all"]["raw"]
    assert reference["images"] == 7
    assert val_psnr[0] == pytest.approx(reference["psnr"], abs=1e-4)


def test_merge_rows_keeps_every_image_and_stage_once() -> None:
    rank0 = [{"name": "b", "stage": "raw", "psnr": 1.0}, {"name": "b", "stage": "bfwls", "psnr": 2.0}]
    rank1 = [{"name": "a", "stage": "raw", "psnr": 3.0}, {"name": "b", "stage": "raw", "psnr": 1.0},  # padding
             {"name": "a", "stage": "bfwls", "psnr": 4.0}]
    merged = merge_rows([rank0, rank1])
    assert [(r["stage"], r["name"], r["psnr"]) for r in merged] == [
        ("raw", "a", 3.0), ("raw", "b", 1.0), ("bfwls", "a", 4.0), ("bfwls", "b", 2.0)]


@pytest.mark.slow
def test_joblib_launcher_runs_a_two_job_sweep(tmp_path: Path) -> None:
    proc = entry_point("-m", "hydra/launcher=joblib_local", "debug=fast_dev_run", "seed=1,2",
                       f"hydra.sweep.dir={tmp_path}", f"paths.log_dir={tmp_path / 'logs'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    for job, seed in (("0", 1), ("1", 2)):
        assert f"seed={seed}" in (tmp_path / job / ".hydra" / "overrides.yaml").read_text()
        summary = json.loads((tmp_path / job / "test" / "metrics.json").read_text())["summary"]["testing"]["all"]["raw"]
        assert summary["images"] == 4 and math.isfinite(summary["psnr"])  # fast_dev_run: one test batch


def test_slurm_launcher_config_builds_the_sbatch_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import submitit

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp",
                                "trainer.devices=4", "trainer.num_nodes=2", f"hydra.sweep.dir={tmp_path}",
                                f"paths.log_dir={tmp_path}"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.job.name = "train"
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    launcher.config = cfg
    captured = {}

    def map_array(executor, fn, *args):  # stand-in for the submission: keep the executor and the jobs
        captured.update(executor=executor, overrides=args[0])
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # as if `srun` existed
    launcher.launch([["module.lr=0.0001"], ["module.lr=0.0003"]], initial_job_idx=0)
    assert captured["overrides"] == (["module.lr=0.0001"], ["module.lr=0.0003"])
    script = captured["executor"]._executor._make_submission_file_text("python -c pass", "0")
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=1440",
                 "--cpus-per-task=8", "--mem=64GB"):
        assert f"#SBATCH {line}\n" in script, line


def test_compile_option_compiles_the_training_path_in_place() -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    compiled = ColorizationModule(model={"name": "linknet"}, compile="eager")  # inductor: see docs/scaling.md
    nir, rgb = torch.rand(2, 1, 64, 64), torch.rand(2, 3, 64, 64)
    loss, _ = compiled.loss(nir, rgb)  # the training path (forward_tanh)
    assert counters["stats"]["unique_graphs"] >= 1, "the training forward did not go through torch.compile"
    plain = ColorizationModule(model={"name": "linknet"})
    plain.load_state_dict(compiled.state_dict())  # same keys: checkpoints load with or without compile
    assert plain.loss(nir, rgb)[0].item() == pytest.approx(loss.item(), rel=1e-5)


def test_bf16_mixed_precision_trains(tmp_path: Path) -> None:
    from nir_colorize import train

    cfg = train_cfg(tmp_path, "trainer=gpu_bf16", "trainer.accelerator=cpu", "debug=fast_dev_run")
    assert cfg.trainer.precision == "bf16-mixed"
    metrics = train.run(cfg)
    assert math.isfinite(metrics["train/loss_step"]) and math.isfinite(metrics["val/psnr"])

"""End-to-end training on the embedded sample: fast_dev_run, eval reproduction, resume, seeding, W&B."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from nir_colorize import eval as eval_entry
from nir_colorize import train
from nir_colorize.module import ColorizationModule
from nir_colorize.utils.compose import compose_config
from tests.conftest import train_cfg


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def test_fast_dev_run_trains_validates_and_tests(tmp_path: Path) -> None:
    cfg = train_cfg(tmp_path, "debug=fast_dev_run")
    metrics = train.run(cfg)
    for key in ("train/loss", "val/psnr", "val/ssim", "val/mae", "test/validation/psnr", "test/testing/psnr"):
        assert any(k.startswith(key) for k in metrics), f"{key} not logged: {sorted(metrics)}"
    assert torch.isfinite(torch.tensor(metrics["val/psnr"]))
    run_dir = tmp_path / "run"
    table = (run_dir / "test" / "metrics.md").read_text()
    assert table.count("| linknet | all: ") == 2 and table.count("| linknet | clean: ") == 2  # two test sets
    assert json.loads((run_dir / "splits.json").read_text())["counts"] == {"train": 24, "val": 8, "validation": 8,
                                                                           "testing": 8}
    assert list((run_dir / "val_images").glob("epoch_*.png")), "no validation image grid written"


def test_checkpoints_best_and_last(trained_run: Path) -> None:
    assert (trained_run / "checkpoints" / "best.ckpt").is_file()
    assert (trained_run / "checkpoints" / "last.ckpt").is_file()


def test_eval_reproduces_logged_validation_metrics(trained_run: Path, tmp_path: Path) -> None:
    ckpt = torch.load(trained_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    best_epoch = ckpt["epoch"]
    rows = [r for r in read_metrics(trained_run) if r.get("val/psnr") and int(r["epoch"]) == best_epoch]
    assert rows, "no validation row for the best epoch"
    logged = {k: float(rows[-1][f"val/{k}"]) for k in ("psnr", "ssim", "mae")}
    cfg = compose_config("eval", [f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}", "split=val",
                                  "metrics=[mae,psnr,ssim]", "trainer.accelerator=cpu",
                                  f"paths.log_dir={tmp_path}"], output_dir=tmp_path / "eval")
    summary = eval_entry.run(cfg)["val"]["all"]["raw"]
    for key, value in logged.items():
        assert summary[key] == pytest.approx(value, abs=1e-4), key
    assert (tmp_path / "eval" / "metrics.json").is_file()
    assert (tmp_path / "eval" / "per_image.csv").read_text().count("\n") == 8 + 1


def test_resume_from_last_checkpoint(trained_run: Path, tmp_path: Path) -> None:
    last = trained_run / "checkpoints" / "last.ckpt"
    before = torch.load(last, map_location="cpu", weights_only=False)
    assert before["epoch"] == 1 and before["global_step"] == 6
    cfg = train_cfg(tmp_path, f"ckpt_path={last}", "trainer.max_epochs=3", "trainer.limit_train_batches=3",
                    "test=false", name="resumed")
    train.run(cfg)
    after = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert after["epoch"] == 2 and after["global_step"] == 9  # one more epoch of 3 steps, not a restart
    epochs = {int(r["epoch"]) for r in read_metrics(tmp_path / "resumed") if r.get("train/loss_epoch")}
    assert epochs == {2}


def test_init_from_starts_a_fresh_run_from_the_checkpoints_weights(trained_run: Path, tmp_path: Path) -> None:
    """``init_from``: the source's weights, a fresh optimiser and epoch count (``ckpt_path`` would resume)."""
    best = trained_run / "checkpoints" / "best.ckpt"
    source = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    # lr 0: the one step leaves the parameters as loaded (BatchNorm's running statistics still move)
    train.run(train_cfg(tmp_path, f"init_from={best}", "module.lr=0", "trainer.max_epochs=1",
                        "trainer.limit_train_batches=1", "test=false", name="init"))
    after = torch.load(tmp_path / "init" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert after["epoch"] == 0 and after["global_step"] == 1  # a new run, not the source's resumed
    fresh = ColorizationModule(model={"name": "linknet", "encoder_weights": None})
    names = [n for n, _ in fresh.named_parameters()]
    assert all(torch.equal(after["state_dict"][n], source[n]) for n in names)
    assert not all(torch.equal(fresh.state_dict()[n], source[n]) for n in names)  # the source is not the init


def test_same_seed_same_loss(tmp_path: Path) -> None:
    def losses(name: str, seed: int) -> list[float]:
        cfg = train_cfg(tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
                        "trainer.log_every_n_steps=1", "trainer.deterministic=true", "test=false",
                        f"seed={seed}", name=name)
        train.run(cfg)
        return [float(r["train/loss_step"]) for r in read_metrics(tmp_path / name) if r.get("train/loss_step")]

    first, second, other = losses("a", 7), losses("b", 7), losses("c", 8)
    assert len(first) == 3
    assert first == second
    assert first != other


def test_wandb_offline_run_completes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    # fast_dev_run would swap every logger for a dummy: run one real (tiny) epoch instead
    cfg = train_cfg(tmp_path, "logger=wandb", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
                    "trainer.limit_val_batches=1", "test=false")
    train.run(cfg)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert runs, "no offline W&B run directory"
    assert list(runs[0].glob("*.wandb")), "the offline run holds no data to sync"

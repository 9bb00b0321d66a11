"""Training without a logger, and training that survives a kill (atomic checkpoints, resume)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from nir_colorize import train
from tests.conftest import train_cfg


def test_training_without_a_logger(tmp_path: Path, one_thread, caplog: pytest.LogCaptureFixture) -> None:
    """``logger=none``: the default callbacks' LearningRateMonitor would refuse a Trainer without a logger."""
    with caplog.at_level(logging.DEBUG, logger="nir_colorize.utils.instantiate"):
        train.run(train_cfg(tmp_path, "logger=none", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                            "trainer.limit_val_batches=1", "test=false"))
    assert any("no logger: leaving out LearningRateMonitor" in r.getMessage() for r in caplog.records)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == 2
    assert not (tmp_path / "run" / "csv").exists()

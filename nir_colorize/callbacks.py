"""Training callbacks: validation image grids for every logger (files, W&B, TensorBoard); step timing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from nir_colorize.data.io import write_png


def image_grid(rows: list[torch.Tensor]) -> np.ndarray:
    """Rows of (N, C, H, W) images in [0, 1] (C = 1 or 3) to one (H*R, W*N, 3) array."""
    lines = []
    for row in rows:
        row = row.float().clamp(0, 1)
        if row.shape[1] == 1:
            row = row.expand(-1, 3, -1, -1)
        lines.append(torch.cat(list(row), dim=-1))
    return torch.cat(lines, dim=-2).permute(1, 2, 0).numpy()


class ValidationImages(L.Callback):
    """After validation, a grid (rows: NIR, prediction, ground truth) of the first batch is
    saved to ``<run>/val_images/epoch_XXXX.png`` and sent to W&B or TensorBoard when they log."""

    def __init__(self, every_n_epochs: int = 1, max_images: int = 4) -> None:
        self.every_n_epochs = every_n_epochs
        self.max_images = max_images

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        examples = getattr(pl_module, "val_examples", None)
        if (not examples or trainer.sanity_checking or not trainer.is_global_zero
                or trainer.current_epoch % self.every_n_epochs):
            return
        n = self.max_images
        grid = image_grid([examples["nir"][:n], examples["pred"][:n], examples["rgb"][:n]])
        write_png(Path(trainer.default_root_dir) / "val_images" / f"epoch_{trainer.current_epoch:04d}.png", grid)
        for logger in trainer.loggers:
            name = type(logger).__name__
            if name == "WandbLogger":
                logger.log_image(key="val/images", images=[grid], caption=["NIR | prediction | ground truth"],
                                 step=trainer.global_step)
            elif name == "TensorBoardLogger":
                logger.experiment.add_image("val/images", grid, trainer.global_step, dataformats="HWC")


class StepTimes(L.Callback):
    """Wall time of every training step and epoch, written to ``<run>/step_times.json`` at the end of fit
    (``+callbacks.step_times._target_=nir_colorize.callbacks.StepTimes``; ``nir_colorize.bench.epoch`` uses it).
    A step is timed from the end of the previous one, so it includes loading its batch."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.epochs: list[float] = []
        self._last = self._epoch = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = self._epoch = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        now = time.perf_counter()
        self.steps.append(now - self._last)
        self._last = now

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs.append(time.perf_counter() - self._epoch)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            Path(trainer.default_root_dir).mkdir(parents=True, exist_ok=True)
            (Path(trainer.default_root_dir) / "step_times.json").write_text(json.dumps(
                {"steps": self.steps, "epochs": self.epochs, "precision": str(trainer.precision)}))

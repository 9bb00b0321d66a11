"""Training callbacks: validation image grids for every logger (files, W&B, TensorBoard)."""

from __future__ import annotations

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

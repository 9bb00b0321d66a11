"""The LightningModule: ColorNet (or any variant) trained with the paper's L2 loss."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from nir_colorize.metrics import build_metrics, per_image, update_from_values
from nir_colorize.models import build_model

VAL_METRICS = ("mae", "psnr", "ssim")


class ColorizationModule(L.LightningModule):
    """Wraps a network of ``nir_colorize.models`` with loss, optimiser, metrics and image logging.

    ``model``: keyword arguments of ``build_model`` (``name`` plus the variant's options).
    ``loss_reduction``: ``sum`` (paper Eq. 5: over pixels, channels and batch) or ``mean``.
    The loss compares the ``tanh`` output with the target mapped to [-1, 1] (SPEC section 1).
    ``compile``: ``torch.compile`` the network's core (``true``: inductor, or a backend name such as ``eager``).
    """

    def __init__(
        self,
        model: dict[str, Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        loss_reduction: str = "sum",
        val_metrics: tuple[str, ...] = VAL_METRICS,
        test_metrics: tuple[str, ...] = VAL_METRICS,
        compile: bool | str = False,
    ) -> None:
        super().__init__()
        if loss_reduction not in ("sum", "mean"):
            raise ValueError(f"loss_reduction must be 'sum' or 'mean', got {loss_reduction!r}")
        self.save_hyperparameters()
        self.net = build_model(**dict(model))
        if compile:  # in place: training (forward_tanh) runs compiled too, and state_dict keys stay unchanged
            self.net.core.compile(**({"backend": compile} if isinstance(compile, str) else {}))
        self.val_metrics = build_metrics(list(val_metrics), prefix="val/")
        self.test_metrics = build_metrics(list(test_metrics), prefix="test/")
        self.test_rows: list[dict[str, Any]] = []
        self.val_examples: dict[str, torch.Tensor] = {}

    def forward(self, nir: torch.Tensor) -> torch.Tensor:
        """NIR (B, 1, H, W) in [0, 1] to RGB (B, 3, H, W) in [0, 1]."""
        return self.net(nir)

    def loss(self, nir: torch.Tensor, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net.forward_tanh(nir)
        loss = F.mse_loss(out, rgb * 2.0 - 1.0, reduction=self.hparams.loss_reduction)
        return loss, (out.detach() + 1.0) / 2.0

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self.loss(batch["nir"], batch["rgb"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch["nir"]),
                 sync_dist=True)  # mean over processes under DDP (a no-op on one device)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, pred = self.loss(batch["nir"], batch["rgb"])
        self.val_metrics.update(pred, batch["rgb"])
        self.log("val/loss", loss, on_epoch=True, batch_size=len(batch["nir"]), sync_dist=True)
        self.log_dict(self.val_metrics, on_epoch=True, prog_bar=True, batch_size=len(batch["nir"]))
        if batch_idx == 0:  # a few images for the image-logging callback
            self.val_examples = {"nir": batch["nir"][:4].cpu(), "pred": pred[:4].cpu(), "rgb": batch["rgb"][:4].cpu()}

    def test_step(self, batch: dict, batch_idx: int) -> dict:
        pred = self(batch["nir"]).clamp(0, 1)
        values = per_image(pred, batch["rgb"], list(self.hparams.test_metrics))  # once per image: LPIPS is costly
        update_from_values(self.test_metrics, values)
        self.log_dict(self.test_metrics, on_epoch=True, batch_size=len(batch["nir"]))
        for i, name in enumerate(batch["name"]):
            self.test_rows.append({"name": name, "stage": "raw", **{k: float(v[i]) for k, v in values.items()}})
        return {"pred": pred}

    def on_test_epoch_start(self) -> None:
        self.test_rows = []

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {"pred": self(batch["nir"]).clamp(0, 1), "name": batch["name"]}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=hp.lr, betas=tuple(hp.betas), eps=hp.eps,
                                weight_decay=hp.weight_decay)

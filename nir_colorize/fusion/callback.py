"""Lightning callback applying BFWLS to test and predict outputs (``fusion=bfwls``)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from nir_colorize.fusion.bfwls import BFWLS
from nir_colorize.metrics import build_metrics, per_image, update_from_values

METRICS_ATTRIBUTE = "bfwls_test_metrics"


class BFWLSCallback(L.Callback):
    """Replaces ``outputs["pred"]`` by ``bfwls(nir, pred)`` in place.

    At test time it also logs ``test/<set>/bfwls/<metric>`` (the raw ones are ``test/<set>/<metric>``) and adds
    per-image rows with ``stage="bfwls"`` to ``pl_module.test_rows``. Keyword arguments: those of
    :class:`nir_colorize.fusion.BFWLS`.
    """

    def __init__(self, **bfwls_kwargs: Any) -> None:
        self.fusion = BFWLS(**bfwls_kwargs)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = build_metrics(list(pl_module.hparams.test_metrics)).to(pl_module.device)
        setattr(pl_module, METRICS_ATTRIBUTE, metrics)  # a child module, so Lightning can track it

    @torch.no_grad()
    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        fused = self.fusion(batch["nir"], outputs["pred"])
        outputs["pred"] = fused
        values = per_image(fused, batch["rgb"], list(pl_module.hparams.test_metrics))  # once: LPIPS is costly
        update_from_values(getattr(pl_module, METRICS_ATTRIBUTE), values)
        pl_module.add_rows(batch, "bfwls", values)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = getattr(pl_module, METRICS_ATTRIBUTE)
        pl_module.log_dict({f"test/{pl_module.test_set}/bfwls/{k}": v for k, v in metrics.compute().items()})
        metrics.reset()

    @torch.no_grad()
    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        nir = outputs["nir"] if "nir" in outputs else batch["nir"]
        outputs["pred"] = self.fusion(nir.to(outputs["pred"].device), outputs["pred"])

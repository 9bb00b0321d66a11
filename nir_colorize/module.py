"""The LightningModule: ColorNet (or any variant) trained with the paper's L2 loss."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure as ssim_fn

from nir_colorize.data.dataset import to_unit
from nir_colorize.metrics import build_metrics, per_image, update_from_values
from nir_colorize.models import build_model
from nir_colorize.scale import DEFAULT_RESTORE, TRAIN_LONG_SIDE, colorize_at_scale, working_factor

VAL_METRICS = ("mae", "psnr", "ssim")
LOSSES = ("l2", "l1", "l1_ssim")
SCHEDULES = ("constant", "cosine")


class ColorizationModule(L.LightningModule):
    """Wraps a network of ``nir_colorize.models`` with loss, optimiser, metrics and image logging.

    ``model``: keyword arguments of ``build_model`` (``name`` plus the variant's options).
    ``loss``: ``l2`` (the paper's Eq. 5), ``l1``, or ``l1_ssim`` (L1 + ``ssim_weight`` x (1 - SSIM), SSIM on
    [0, 1] images; needs ``loss_reduction=mean``); ``loss_reduction``: ``sum`` (paper: over pixels, channels and
    batch) or ``mean``. The loss compares the ``tanh`` output with the target mapped to [-1, 1] (design section 1).
    ``schedule``: ``constant`` (the paper's) or ``cosine`` (linear warm-up over ``warmup_epochs``, then cosine
    decay to ``min_lr_ratio`` x ``lr`` at the last step), stepped per batch.
    ``compile``: ``torch.compile`` the network's core (``true``: inductor, or a backend name such as ``eager``).
    ``channels_last``: weights and batches in channels-last memory layout (faster convolutions with bf16 on
    CPUs with AMX and on GPUs; docs/training.md).

    Test: each test set runs as its own ``trainer.test`` (``nir_colorize.testing``); batches carry their set's
    name, metrics are logged as ``test/<set>/<metric>`` and per-image rows name the set.
    """

    def __init__(
        self,
        model: dict[str, Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        loss_reduction: str = "sum",
        loss: str = "l2",
        ssim_weight: float = 0.5,
        schedule: str = "constant",
        warmup_epochs: float = 0.0,
        min_lr_ratio: float = 0.01,
        val_metrics: tuple[str, ...] = VAL_METRICS,
        test_metrics: tuple[str, ...] = VAL_METRICS,
        compile: bool | str = False,
        channels_last: bool = False,
        train_long_side: int | None = None,
    ) -> None:
        super().__init__()
        if loss_reduction not in ("sum", "mean"):
            raise ValueError(f"loss_reduction must be 'sum' or 'mean', got {loss_reduction!r}")
        if loss not in LOSSES:
            raise ValueError(f"module.loss={loss!r}: use one of {', '.join(LOSSES)}")
        if loss == "l1_ssim" and loss_reduction != "mean":
            raise ValueError("module.loss=l1_ssim needs module.loss_reduction=mean (SSIM is a mean over pixels)")
        if schedule not in SCHEDULES:
            raise ValueError(f"module.schedule={schedule!r}: use one of {', '.join(SCHEDULES)}")
        self.save_hyperparameters()
        self.net = build_model(**dict(model))
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:  # in place: training (forward_tanh) runs compiled too, and state_dict keys stay unchanged
            self.net.core.compile(**({"backend": compile} if isinstance(compile, str) else {}))
        self.val_metrics = build_metrics(list(val_metrics), prefix="val/")
        self.test_metrics = build_metrics(list(test_metrics), prefix="test/")
        self.test_rows: list[dict[str, Any]] = []
        self.test_set = "test"
        self.tta: bool | str = False  # eval's tta= (true, false, or auto: where scale= shrinks the image)
        self.scale: float | str = 1.0  # eval's scale= (nir_colorize.scale): 1, the input's own size
        self.restore = DEFAULT_RESTORE
        self.val_examples: dict[str, torch.Tensor] = {}

    def forward(self, nir: torch.Tensor) -> torch.Tensor:
        """NIR (B, 1, H, W) in [0, 1] to RGB (B, 3, H, W) in [0, 1]; with ``self.tta`` (eval ``tta=true``) the mean
        of the image's and its mirror's colorization (horizontal-flip test-time averaging); with ``self.scale`` (eval
        ``scale=``) colorized at the training scale and restored to full size (``nir_colorize.scale``)."""
        factor = working_factor(*nir.shape[-2:], self.scale, self.hparams.get("train_long_side") or TRAIN_LONG_SIDE)
        return colorize_at_scale(self.net, nir, factor, self.restore, self.tta)

    def batch(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(NIR, RGB) of a batch as float in [0, 1] (held datasets give uint8), in the module's memory layout."""
        nir, rgb = to_unit(batch["nir"]), to_unit(batch["rgb"])
        if self.hparams.channels_last:
            nir = nir.contiguous(memory_format=torch.channels_last)
        return nir, rgb

    def loss(self, nir: torch.Tensor, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net.forward_tanh(nir)
        hp, target = self.hparams, rgb * 2.0 - 1.0
        if hp.loss == "l2":
            loss = F.mse_loss(out, target, reduction=hp.loss_reduction)
        else:
            loss = F.l1_loss(out, target, reduction=hp.loss_reduction)
        if hp.loss == "l1_ssim":
            with torch.autocast(out.device.type, enabled=False):  # SSIM's small differences need fp32
                pred01 = (out.float() + 1.0) / 2.0
                loss = loss + hp.ssim_weight * (1.0 - ssim_fn(pred01, rgb.float(), data_range=1.0))
        return loss, (out.detach() + 1.0) / 2.0

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self.loss(*self.batch(batch))
        # no prog_bar: a progress-bar value is read back (a host synchronisation) at every step
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(batch["nir"]),
                 sync_dist=True)  # mean over processes under DDP (a no-op on one device)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        nir, rgb = self.batch(batch)
        loss, pred = self.loss(nir, rgb)
        self.val_metrics.update(pred, rgb)
        self.log("val/loss", loss, on_epoch=True, batch_size=len(batch["nir"]), sync_dist=True)
        self.log_dict(self.val_metrics, on_epoch=True, prog_bar=True, batch_size=len(batch["nir"]))
        if batch_idx == 0:  # a few images for the image-logging callback
            self.val_examples = {"nir": nir[:4].cpu(), "pred": pred[:4].cpu(), "rgb": rgb[:4].cpu()}

    def test_step(self, batch: dict, batch_idx: int) -> dict:
        nir, rgb = self.batch(batch)
        batch["nir"], batch["rgb"] = nir, rgb  # callbacks (BFWLS) see float images
        pred = self(nir).clamp(0, 1)
        values = per_image(pred, rgb, list(self.hparams.test_metrics))  # once per image: LPIPS is costly
        update_from_values(self.test_metrics, values)
        self.add_rows(batch, "raw", values)
        return {"pred": pred}

    def add_rows(self, batch: dict, stage: str, values: dict[str, torch.Tensor]) -> None:
        """Per-image result rows (set, name, stage, metrics) of a test batch; the batch names the test set."""
        sets = batch.get("set") or [self.test_set] * len(batch["name"])
        self.test_set = sets[0]
        host = {k: v.detach().cpu().tolist() for k, v in values.items()}  # one copy per batch
        for i, name in enumerate(batch["name"]):
            self.test_rows.append({"set": sets[i], "name": name, "stage": stage, **{k: v[i] for k, v in host.items()}})

    def on_test_epoch_start(self) -> None:
        self.test_rows = []
        self.test_metrics.reset()

    def on_test_epoch_end(self) -> None:
        """``test/<set>/<metric>``: the mean over the set's images (synchronised across processes)."""
        self.log_dict({f"test/{self.test_set}/{k.removeprefix('test/')}": v for k, v in self.test_metrics.compute().items()})
        self.test_metrics.reset()

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {"pred": self(self.batch(batch)[0]).clamp(0, 1), "name": batch["name"]}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A weights-only checkpoint (``best.ckpt``) under weight averaging (``callbacks.ema``) gets the averaged
        weights, which validation scored: Lightning calls the averaging callback's own hook, which swaps them in,
        only for full checkpoints."""
        from lightning.pytorch.callbacks import WeightAveraging

        if "current_model_state" in checkpoint or self._trainer is None:
            return
        for callback in self.trainer.callbacks:
            average = getattr(callback, "_average_model", None)  # Lightning keeps it private
            if isinstance(callback, WeightAveraging) and average is not None:
                checkpoint["state_dict"] = {k[len("module."):]: v for k, v in average.state_dict().items()
                                            if k.startswith("module.")}

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, betas=tuple(hp.betas), eps=hp.eps,
                                     weight_decay=hp.weight_decay)
        if hp.schedule == "constant":
            return optimizer
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(total - 1, round(hp.warmup_epochs * total / max(1, self.trainer.max_epochs or 1)))
        factor = partial(warmup_cosine, warmup=warmup, total=total, floor=hp.min_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def warmup_cosine(step: int, warmup: int, total: int, floor: float) -> float:
    """Learning-rate factor: linear warm-up from 1/warmup to 1 over ``warmup`` steps, then cosine decay from 1 to
    ``floor`` at step ``total - 1``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - 1 - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

"""Image-quality metrics of SPEC section 3, per image then averaged over images.

TODO(issue 5): delta_e_ab, s_cielab, lpips_ab, lpips, ae_deg and offline LPIPS weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.functional.image import structural_similarity_index_measure


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image, over pixels and channels: (B,)."""
    return (pred - target).abs().flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """10 log10(1 / MSE) per image, MSE over pixels and channels: (B,)."""
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Wang et al. 2004 SSIM per image (Gaussian 11, sigma 1.5, K1 .01, K2 .03), mean over RGB: (B,)."""
    return structural_similarity_index_measure(
        pred, target, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0,
        k1=0.01, k2=0.03, reduction="none",
    )


FUNCTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mae": mae,
    "psnr": psnr,
    "ssim": ssim,
}
HIGHER_IS_BETTER = {"mae": False, "psnr": True, "ssim": True}


def per_image(pred: torch.Tensor, target: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Every metric in ``names`` for every image of the batch: ``{name: (B,)}``."""
    pred, target = pred.float().clamp(0, 1), target.float()
    return {name: FUNCTIONS[name](pred, target).detach() for name in names}


class ImageMean(Metric):
    """Mean over images of a per-image metric (synchronised across processes)."""

    full_state_update = False

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in FUNCTIONS:
            raise ValueError(f"unknown metric {name!r}; choose from {sorted(FUNCTIONS)}")
        self.fn = FUNCTIONS[name]
        self.metric_name = name
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        values = self.fn(pred.float().clamp(0, 1), target.float())
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp_min(1)).float()


def build_metrics(names: Sequence[str], prefix: str = "") -> MetricCollection:
    """A MetricCollection of ``ImageMean`` metrics, keys ``{prefix}{name}``."""
    return MetricCollection({name: ImageMean(name) for name in names}, prefix=prefix)


__all__ = ["FUNCTIONS", "ImageMean", "build_metrics", "mae", "per_image", "psnr", "ssim"]

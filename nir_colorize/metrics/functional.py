"""Per-image metrics of design section 3: (B, 3, H, W) sRGB in [0, 1] -> (B,). No min-max rescaling."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from nir_colorize.metrics.color import SAMPLES_PER_DEGREE, lab_to_rgb_d65, rgb_to_lab_d65, scielab_lab
from nir_colorize.metrics.perceptual import lpips_distance

SSIM_WINDOW = 11  # Gaussian sigma 1.5 truncated at 3.5 sigma: 2 * int(3.5 * 1.5 + 0.5) + 1


def _check(pred: torch.Tensor, target: torch.Tensor, metric: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{metric}: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.ndim != 4 or pred.shape[1] != 3:
        raise ValueError(f"{metric}: expects (B, 3, H, W) RGB images, got {tuple(pred.shape)}")


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over pixels and channels (paper Eq. 12)."""
    _check(pred, target, "mae")
    return (pred - target).abs().flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``10 log10(1 / MSE)``, MSE over pixels and channels (paper Eq. 10-11, data range 1); +inf if equal."""
    _check(pred, target, "psnr")
    return peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Wang et al. 2004 SSIM: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, data range 1, mean over R, G, B
    and over the pixels whose window lies inside the image (as skimage)."""
    _check(pred, target, "ssim")
    _, ssim_map = structural_similarity_index_measure(
        pred, target, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0, k1=0.01, k2=0.03,
        reduction="none", return_full_image=True,
    )
    # torchmetrics averages the whole map, border windows included (reflect-padded); Wang et al.'s reference
    # code and skimage keep only the windows inside the image.
    border = SSIM_WINDOW // 2
    return ssim_map[..., border:-border, border:-border].flatten(1).mean(1)


def delta_e_ab(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's "S-CIELAB" (Eq. 15): mean over pixels of the Euclidean distance of CIELAB (a, b), sRGB D65."""
    _check(pred, target, "delta_e_ab")
    diff = rgb_to_lab_d65(pred)[:, 1:] - rgb_to_lab_d65(target)[:, 1:]
    return diff.pow(2).sum(1).sqrt().flatten(1).mean(1)


def s_cielab(pred: torch.Tensor, target: torch.Tensor,
             samples_per_degree: float = SAMPLES_PER_DEGREE) -> torch.Tensor:
    """True S-CIELAB (Zhang & Wandell 1996): mean over pixels of CIE 1976 Delta E between the spatially
    filtered CIELAB images (``color.scielab_lab``) at ``samples_per_degree`` pixels per degree of visual angle."""
    _check(pred, target, "s_cielab")
    diff = scielab_lab(pred, samples_per_degree) - scielab_lab(target, samples_per_degree)
    return diff.pow(2).sum(1).sqrt().flatten(1).mean(1)


def lpips(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS (AlexNet, v0.1; Zhang et al. 2018) on the RGB images."""
    _check(pred, target, "lpips")
    return lpips_distance(pred, target)


def ab_only(rgb: torch.Tensor, lightness: float = 50.0) -> torch.Tensor:
    """Keep the colour only: sRGB -> CIELAB, L set to ``lightness``, back to sRGB (clipped to [0, 1])."""
    lab = rgb_to_lab_d65(rgb)
    lab = torch.cat([torch.full_like(lab[:, :1], lightness), lab[:, 1:]], dim=1)
    return lab_to_rgb_d65(lab)


def lpips_ab(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's colour-only LPIPS (Eq. 16): LPIPS (AlexNet, v0.1) of ``ab_only`` images (L = 50)."""
    _check(pred, target, "lpips_ab")
    return lpips_distance(ab_only(pred), ab_only(target))


def ae_deg(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """VCIP 2020 challenge angular error: mean over pixels of the angle, in degrees, between the RGB vectors.

    Computed as ``atan2(|p x t|, p . t)`` (accurate near 0 degrees, unlike ``acos``). A black pixel (zero
    vector) has no direction; it is taken as the achromatic direction (1, 1, 1).
    """
    _check(pred, target, "ae_deg")
    p, t = (torch.where((x == 0).all(1, keepdim=True), torch.ones_like(x), x) for x in (pred, target))
    cross = torch.linalg.cross(p, t, dim=1).norm(dim=1)
    dot = (p * t).sum(1)
    return torch.rad2deg(torch.atan2(cross, dot)).flatten(1).mean(1)


FUNCTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mae": mae, "psnr": psnr, "ssim": ssim, "delta_e_ab": delta_e_ab, "s_cielab": s_cielab,
    "lpips_ab": lpips_ab, "lpips": lpips, "ae_deg": ae_deg,
}
HIGHER_IS_BETTER = {"mae": False, "psnr": True, "ssim": True, "delta_e_ab": False, "s_cielab": False,
                    "lpips_ab": False, "lpips": False, "ae_deg": False}
ALL_METRICS = tuple(FUNCTIONS)


def check_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(FUNCTIONS)}")


@torch.no_grad()
def per_image(pred: torch.Tensor, target: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Every metric in ``names`` for every image of the batch: ``{name: (B,)}`` (float32, full precision even
    under autocast; ``pred`` is clamped to [0, 1])."""
    check_names(names)
    with torch.autocast(pred.device.type, enabled=False):
        pred, target = pred.float().clamp(0, 1), target.float()
        return {name: FUNCTIONS[name](pred, target).float() for name in names}


__all__ = ["ALL_METRICS", "FUNCTIONS", "HIGHER_IS_BETTER", "ab_only", "ae_deg", "check_names", "delta_e_ab",
           "lpips", "lpips_ab", "mae", "per_image", "psnr", "s_cielab", "ssim"]

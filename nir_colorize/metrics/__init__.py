"""Image-quality metrics of design section 3, per image then averaged over images (docs/metrics.md).

``functional``: per-image functions ``(B, 3, H, W)`` sRGB in [0, 1] -> ``(B,)``; ``color``: CIELAB and
S-CIELAB; ``perceptual`` and ``lpips_weights``: LPIPS with offline ImageNet AlexNet features;
``collection``: torchmetrics ``ImageMean`` and ``build_metrics``.
"""

from nir_colorize.metrics.collection import ImageMean, build_metrics, update_from_values
from nir_colorize.metrics.functional import (
    ALL_METRICS,
    FUNCTIONS,
    HIGHER_IS_BETTER,
    ae_deg,
    delta_e_ab,
    lpips,
    lpips_ab,
    mae,
    per_image,
    psnr,
    s_cielab,
    ssim,
)

__all__ = ["ALL_METRICS", "FUNCTIONS", "HIGHER_IS_BETTER", "ImageMean", "ae_deg", "build_metrics", "delta_e_ab",
           "lpips", "lpips_ab", "mae", "per_image", "psnr", "s_cielab", "ssim", "update_from_values"]

"""Colorize at the scale the network learned, then restore full-resolution detail from the NIR (design section 10).

A network learns colours at one scale: objects of a given size in pixels. The models here learned from nirscene1
frames shrunk to a 384-pixel long side (VCIP's 256x256 crops are crops of such frames, ``nirscene1_scenes`` is
stored at 384x256); run on a whole 1024x680 camera frame, it sees every object 2.67x larger than it ever did.

``colorize_at_scale``: shrink the NIR by ``factor`` (antialiased), colorize, bring the colour back to the input's
size and restore the detail that the shrink removed, from the full-size NIR (``RESTORE``):

- ``band``: the colour upsized bicubically in YUV, plus exactly the frequency band the shrink removed,
  ``NIR - up(down(NIR))``, added to Y (a Laplacian-pyramid level; the default, design section 10);
- ``guided``: the colour upsized bicubically, then a guided filter (kornia's ``guided_blur``, its fast
  subsampled form) with the full-size NIR as guide: a local linear model of colour in NIR;
- ``bfwls``: the colour upsized bicubically, then BFWLS with the full-size NIR (the paper's fusion);
- ``bicubic``: the colour upsized, no detail restored (for comparison).

``flip_averaged``: the colorization averaged with that of the mirror image; ``use_flip("auto", factor)`` turns it
on where the network runs on a shrunk frame (measured: +0.19 dB and better LPIPS on every test frame at camera
scale, for one more pass at the small size; docs/predict.md).

``working_factor``: ``scale="auto"`` shrinks a frame so that its long side is the model's ``train_long_side``
(never upsizes: a smaller image runs at its own size); a number is the shrink factor itself (1: the input's own
scale, no restoration).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_yuv, yuv_to_rgb
from kornia.filters import guided_blur

from nir_colorize.fusion.bfwls import bfwls

TRAIN_LONG_SIDE = 384  # the long side, in pixels, of the frames every data source here was made from (docs/data.md)
RESTORE = ("band", "guided", "bfwls", "bicubic")
DEFAULT_RESTORE = "band"
MIN_FACTOR = 1.05  # a shrink by less than this changes nothing worth its blur: run at the input's own size
GUIDED_RADIUS = 4  # guided filter window radius at the working scale (the full-size window is factor x larger)
GUIDED_EPS = 1e-3  # variance floor, in squared NIR units ([0, 1])


def working_factor(height: int, width: int, scale: float | str, train_long_side: int = TRAIN_LONG_SIDE) -> float:
    """The shrink factor for an image of ``height`` x ``width``: ``scale="auto"``: its long side over
    ``train_long_side`` (1 where that is below ``MIN_FACTOR``: never upsized); a number: that factor (>= 1)."""
    if isinstance(scale, str) and scale.strip().lower() == "auto":
        factor = max(height, width) / float(train_long_side)
        return factor if factor >= MIN_FACTOR else 1.0
    try:
        factor = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale={scale!r}: use auto, or a shrink factor >= 1 (1: the input's own size)") from None
    if not factor >= 1.0:  # also NaN
        raise ValueError(f"scale={scale!r}: the shrink factor must be >= 1 (1: the input's own size); an image is "
                         "never upsized for colorizing")
    return factor


def shrunk_size(height: int, width: int, factor: float) -> tuple[int, int]:
    return max(1, round(height / factor)), max(1, round(width / factor))


def shrink(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``image`` (B, C, H, W) resized down to ``size`` with antialiasing (bilinear, area-weighted)."""
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def upsize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False)


def restore(nir: torch.Tensor, nir_small: torch.Tensor, rgb_small: torch.Tensor, method: str = DEFAULT_RESTORE,
            **bfwls_options) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] at ``nir``'s size from ``rgb_small``, colorized from ``nir_small`` (the shrunk
    ``nir``), with the detail of ``method`` (``RESTORE``) taken from the full-size ``nir``."""
    if method not in RESTORE:
        raise ValueError(f"restore={method!r}: use one of {', '.join(RESTORE)}")
    size = tuple(nir.shape[-2:])
    rgb = upsize(rgb_small.float(), size)
    if method == "bicubic":
        return rgb.clamp(0, 1)
    nir = nir.float()
    if method == "band":
        yuv = rgb_to_yuv(rgb)
        band = nir - upsize(nir_small.float(), size)  # exactly what the shrink took away
        return yuv_to_rgb(torch.cat([yuv[:, :1] + band, yuv[:, 1:]], 1)).clamp(0, 1)
    if method == "guided":
        factor = max(1, round(size[0] / nir_small.shape[-2]))
        kernel = 2 * GUIDED_RADIUS * factor + 1
        return guided_blur(nir, rgb.clamp(0, 1), kernel, GUIDED_EPS, subsample=factor).clamp(0, 1)
    return bfwls(nir, rgb.clamp(0, 1), **bfwls_options)


def flip_averaged(colorize: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``colorize`` averaged with its mirror image: ``(f(x) + mirror(f(mirror(x)))) / 2``."""
    def averaged(nir: torch.Tensor) -> torch.Tensor:
        return (colorize(nir) + colorize(nir.flip(-1)).flip(-1)) / 2

    return averaged


def use_flip(flip: bool | str, factor: float) -> bool:
    """``flip="auto"``: average with the mirror image where the network runs on a shrunk frame (``factor`` > 1),
    where the second pass is cheap (design section 10); true / false: always / never."""
    if isinstance(flip, str):
        if flip.strip().lower() != "auto":
            raise ValueError(f"flip={flip!r}: use auto, true or false")
        return factor > 1
    return bool(flip)


def colorize_at_scale(colorize: Callable[[torch.Tensor], torch.Tensor], nir: torch.Tensor, factor: float,
                      method: str = DEFAULT_RESTORE, flip: bool | str = False) -> torch.Tensor:
    """RGB (1, 3, H, W) of NIR (1, 1, H, W): ``colorize`` (NIR -> RGB at any size) run on ``nir`` shrunk by
    ``factor`` (flip-averaged where ``use_flip(flip, factor)``), restored to full size by ``method``; ``factor`` 1:
    ``colorize(nir)`` itself."""
    if use_flip(flip, factor):
        colorize = flip_averaged(colorize)
    if factor <= 1.0:
        return colorize(nir)
    small = shrink(nir.float(), shrunk_size(*nir.shape[-2:], factor))
    return restore(nir, small, colorize(small).to(nir.device), method)

"""BFWLS pixel-level fusion (paper section 3.2, design section 2): NIR detail into the network's luminance.

1. ``NIR_d = ((NIR - BF(NIR)) + (NIR - WLS(NIR))) / 2`` (bilateral filter: kornia).
2. ``Y, U, V = rgb_to_yuv(rgb)`` (kornia); ``Y' = detail_gain * NIR_d + WLS(Y)``.
3. ``yuv_to_rgb(Y', U, V)`` clamped to [0, 1].
Both WLS solves (NIR and Y, each guided by itself) run as one batched solve.
"""

from __future__ import annotations

import torch
from kornia.color import rgb_to_yuv, yuv_to_rgb
from kornia.filters import bilateral_blur
from torch import nn

from nir_colorize.fusion.wls import DEFAULT_TOL, wls_smooth


def _check_inputs(nir: torch.Tensor, rgb: torch.Tensor) -> None:
    for name, x, c in (("nir", nir, 1), ("rgb", rgb, 3)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != c:
            raise ValueError(f"{name} must be (B, {c}, H, W), got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    if nir.shape[0] != rgb.shape[0] or nir.shape[-2:] != rgb.shape[-2:]:
        raise ValueError(f"nir {tuple(nir.shape)} and rgb {tuple(rgb.shape)} differ in batch size or in "
                         f"height x width ({nir.shape[-1]}x{nir.shape[-2]} vs {rgb.shape[-1]}x{rgb.shape[-2]})")


def bfwls(nir: torch.Tensor, rgb: torch.Tensor, lam: float = 1.0, alpha: float = 1.2, eps: float = 1e-4,
          bf_kernel: int = 9, bf_sigma_space: float = 3.0, bf_sigma_color: float = 0.1, detail_gain: float = 1.0,
          solver: str = "pcg", log_offset: float = 1e-4, tol: float = DEFAULT_TOL, max_iter: int = 500) -> torch.Tensor:
    """Fuse NIR (B, 1, H, W) detail into RGB (B, 3, H, W), both in [0, 1]; returns (B, 3, H, W) in [0, 1]."""
    _check_inputs(nir, rgb)
    nir, rgb = nir.float(), rgb.float()
    yuv = rgb_to_yuv(rgb)
    smooth = wls_smooth(torch.cat([nir, yuv[:, :1]], 1).clamp_min(0), lam=lam, alpha=alpha, eps=eps, solver=solver,
                        log_offset=log_offset, tol=tol, max_iter=max_iter)
    base_bf = bilateral_blur(nir, bf_kernel, bf_sigma_color, (bf_sigma_space, bf_sigma_space))
    detail = ((nir - base_bf) + (nir - smooth[:, :1])) / 2
    luma = detail_gain * detail + smooth[:, 1:]
    return yuv_to_rgb(torch.cat([luma, yuv[:, 1:]], 1)).clamp(0, 1)


class BFWLS(nn.Module):
    """Module form of :func:`bfwls`: ``BFWLS(**options)(nir, rgb)``."""

    def __init__(self, lam: float = 1.0, alpha: float = 1.2, eps: float = 1e-4, bf_kernel: int = 9,
                 bf_sigma_space: float = 3.0, bf_sigma_color: float = 0.1, detail_gain: float = 1.0,
                 solver: str = "pcg", log_offset: float = 1e-4, tol: float = DEFAULT_TOL, max_iter: int = 500) -> None:
        super().__init__()
        self.kwargs = dict(lam=lam, alpha=alpha, eps=eps, bf_kernel=bf_kernel, bf_sigma_space=bf_sigma_space,
                           bf_sigma_color=bf_sigma_color, detail_gain=detail_gain, solver=solver,
                           log_offset=log_offset, tol=tol, max_iter=max_iter)

    def forward(self, nir: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        return bfwls(nir, rgb, **self.kwargs)

"""CIELAB and S-CIELAB helpers on (B, 3, H, W) sRGB tensors in [0, 1] (D65, CIE 1931 2-degree observer).

sRGB -> linear -> XYZ and sRGB <-> CIELAB come from kornia. kornia has no public XYZ -> CIELAB, which
S-CIELAB needs after filtering in XYZ, so ``xyz_to_lab`` is written here with kornia's constants.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from kornia.color import lab_to_rgb, rgb_to_lab, rgb_to_linear_rgb, rgb_to_xyz

# D65 reference white of kornia's rgb_to_lab / lab_to_rgb (and skimage's default).
D65_WHITE = (0.95047, 1.0, 1.08883)

# Poirson & Wandell opponent space used by S-CIELAB: rows O1 (luminance), O2 (red-green), O3 (blue-yellow)
# from CIE 1931 XYZ (Zhang & Wandell's ``cmatrix('xyz2opp')``, values / 1000).
XYZ_TO_OPPONENT = (
    (0.2787336, 0.7218031, -0.1065520),
    (-0.4487736, 0.2898056, 0.0771569),
    (0.0859513, -0.5899859, 0.5011089),
)

# Zhang & Wandell 1996, Table 1: per opponent channel, (weight w_i, spread s_i in degrees of visual angle) of
# the Gaussians E_i = k_i exp(-(x^2 + y^2) / s_i^2), each E_i normalised to sum 1, the channel's kernel
# sum_i w_i E_i normalised to sum 1.
SCIELAB_GAUSSIANS = (
    ((0.921, 0.0283), (0.105, 0.133), (-0.108, 4.336)),  # O1 luminance
    ((0.531, 0.0392), (0.330, 0.494)),                   # O2 red-green
    ((0.488, 0.0536), (0.371, 0.386)),                   # O3 blue-yellow
)

# Default viewing condition: 23 samples (pixels) per degree of visual angle, i.e. a 96-dpi display
# (3.78 px/mm) seen from 35 cm (1 degree = 6.1 mm there). S-CIELAB depends on it; state it with results.
SAMPLES_PER_DEGREE = 23.0


def rgb_to_lab_d65(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIELAB (L in [0, 100]), D65 (kornia)."""
    return rgb_to_lab(rgb)


def lab_to_rgb_d65(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB -> sRGB clipped to [0, 1], D65 (kornia)."""
    return lab_to_rgb(lab, clip=True)


def srgb_to_xyz(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE XYZ (Y of white = 1), D65 (kornia)."""
    return rgb_to_xyz(rgb_to_linear_rgb(rgb))


def xyz_to_lab(xyz: torch.Tensor, white: tuple[float, float, float] = D65_WHITE) -> torch.Tensor:
    """CIE XYZ -> CIELAB (CIE 15, the same constants as kornia's rgb_to_lab), channels at dim -3."""
    ref = torch.tensor(white, dtype=xyz.dtype, device=xyz.device)[:, None, None]
    t = xyz / ref
    threshold = 0.008856
    f = torch.where(t > threshold, t.clamp(min=threshold).pow(1.0 / 3.0), 7.787 * t + 4.0 / 29.0)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def _mix(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(image), image)


def scielab_support(samples_per_degree: float) -> int:
    """Filter width in samples: one degree of visual angle, odd (Zhang & Wandell's ``separableFilters.m``)."""
    if not samples_per_degree > 0:
        raise ValueError(f"samples_per_degree must be positive, got {samples_per_degree}")
    return math.ceil(samples_per_degree / 2) * 2 - 1


@lru_cache(maxsize=16)
def scielab_kernels_1d(samples_per_degree: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The separable terms of the three S-CIELAB kernels (float64, CPU).

    Returns ``(kernels (N, K), weights (N,), channel (N,))``: term ``n`` is the 2-D Gaussian
    ``weights[n] * kernels[n] (x) kernels[n]`` of opponent channel ``channel[n]``; each channel's weights sum
    to 1, so the 2-D kernel of channel c is ``sum_{n: channel[n] = c} weights[n] * outer(kernels[n], kernels[n])``.
    """
    width = scielab_support(samples_per_degree)
    x = torch.arange(width, dtype=torch.float64) - (width - 1) / 2
    kernels, weights, channels = [], [], []
    for c, terms in enumerate(SCIELAB_GAUSSIANS):
        total = sum(w for w, _ in terms)
        for w, spread in terms:
            g = torch.exp(-(x / (spread * samples_per_degree)) ** 2)
            kernels.append(g / g.sum())
            weights.append(w / total)
            channels.append(c)
    return torch.stack(kernels), torch.tensor(weights, dtype=torch.float64), torch.tensor(channels)


def scielab_kernel_2d(samples_per_degree: float) -> torch.Tensor:
    """The full (3, K, K) S-CIELAB point spreads (for inspection and tests)."""
    kernels, weights, channels = scielab_kernels_1d(samples_per_degree)
    out = torch.zeros(3, kernels.shape[1], kernels.shape[1], dtype=torch.float64)
    for k, w, c in zip(kernels, weights, channels, strict=True):
        out[c] += w * torch.outer(k, k)
    return out


def scielab_filter(xyz: torch.Tensor, samples_per_degree: float = SAMPLES_PER_DEGREE) -> torch.Tensor:
    """S-CIELAB spatial front end: XYZ -> opponent -> per-channel separable Gaussian sums -> XYZ.

    Borders are mirrored (``reflect``), so a uniform field stays uniform; the image must be larger than
    half the filter width (one degree).
    """
    kernels, weights, channels = (t.to(xyz.device) for t in scielab_kernels_1d(float(samples_per_degree)))
    kernels, weights = kernels.to(xyz.dtype), weights.to(xyz.dtype)
    size = kernels.shape[1]
    pad = size // 2
    if min(xyz.shape[-2:]) <= pad:
        raise ValueError(f"S-CIELAB at {samples_per_degree} samples/degree needs images larger than {pad} pixels "
                         f"a side (a {size}-pixel filter); got {tuple(xyz.shape[-2:])}")
    to_opp = torch.tensor(XYZ_TO_OPPONENT, dtype=torch.float64)
    opp = _mix(xyz, to_opp)
    terms = opp[:, channels]  # (B, N, H, W): one plane per Gaussian term
    n = terms.shape[1]
    terms = F.pad(terms, (pad, pad, pad, pad), mode="reflect")
    terms = F.conv2d(terms, kernels.view(n, 1, 1, size), groups=n)
    terms = F.conv2d(terms, kernels.view(n, 1, size, 1), groups=n)
    filtered = torch.zeros_like(opp).index_add_(1, channels, terms * weights.view(1, n, 1, 1))
    return _mix(filtered, torch.linalg.inv(to_opp))


def scielab_lab(rgb: torch.Tensor, samples_per_degree: float = SAMPLES_PER_DEGREE) -> torch.Tensor:
    """sRGB in [0, 1] -> S-CIELAB's spatially filtered CIELAB image."""
    return xyz_to_lab(scielab_filter(srgb_to_xyz(rgb), samples_per_degree))


__all__ = [
    "D65_WHITE", "SAMPLES_PER_DEGREE", "SCIELAB_GAUSSIANS", "XYZ_TO_OPPONENT", "lab_to_rgb_d65", "rgb_to_lab_d65",
    "scielab_filter", "scielab_kernel_2d", "scielab_kernels_1d", "scielab_lab", "scielab_support", "srgb_to_xyz",
    "xyz_to_lab",
]

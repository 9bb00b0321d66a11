"""Shared wrapper: [0, 1] NIR in, [0, 1] RGB out, any input size (design section 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom/right of ``x`` (B, C, H, W) to a multiple of ``multiple``.

    Falls back to replicate padding where the image is too small to reflect.
    Returns the padded tensor and the original (H, W).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class Colorizer(nn.Module):
    """Base of every variant: maps NIR in [0, 1] to [-1, 1], pads to ``pad_multiple``,
    runs ``self.core`` (which ends in ``tanh``), crops back and maps to [0, 1].

    ``output_stride``: the encoder's deepest map is 1/``output_stride`` of the input. ``pad_multiple``
    (default: ``output_stride``): the network's total downsampling, so that a shift of the input by a
    multiple of it shifts the output alike (e.g. 32 for ColorNet, whose GLFFNet halves the /16 map once
    more); tiled inference aligns its tiles to it.
    """

    output_stride: int = 32

    def __init__(self, core: nn.Module, output_stride: int, pad_multiple: int | None = None) -> None:
        super().__init__()
        self.core = core
        self.output_stride = output_stride
        self.pad_multiple = pad_multiple or output_stride

    def forward_tanh(self, nir: torch.Tensor) -> torch.Tensor:
        """Raw network output in [-1, 1], same H, W as ``nir``."""
        x, (h, w) = pad_to_multiple(nir * 2.0 - 1.0, self.pad_multiple)
        return self.core(x)[..., :h, :w]

    def forward(self, nir: torch.Tensor) -> torch.Tensor:
        if nir.ndim != 4 or nir.shape[1] != 1:
            raise ValueError(f"expected NIR of shape (B, 1, H, W), got {tuple(nir.shape)}")
        return (self.forward_tanh(nir) + 1.0) / 2.0

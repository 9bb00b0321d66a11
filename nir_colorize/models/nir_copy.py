"""The trivial baseline (``model=nir_copy``, evaluation only): the NIR image copied into R, G and B.

A model must beat it to colorize at all: on street and building scenes a VCIP-only model scores below it.
No parameters to train (one empty tensor, so that code looking for the model's device finds it).
"""

from __future__ import annotations

import torch
from torch import nn

from nir_colorize.models.base import Colorizer


class RepeatGray(nn.Module):
    """(B, 1, H, W) -> (B, 3, H, W), the same values in every channel."""

    def __init__(self) -> None:
        super().__init__()
        self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1)


def nir_copy() -> Colorizer:
    return Colorizer(RepeatGray(), output_stride=1)

"""GLFFNet (design section 1, paper section 3.1.2): global-local feature fusion on the deepest encoder map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.base.modules import Conv2dReLU
from torch import nn


def glff_fuse(local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
    """Resize the global features (bilinear) to the local ones' size and concatenate the channels."""
    global_ = F.interpolate(global_, size=local.shape[-2:], mode="bilinear", align_corners=False)
    return torch.cat([local, global_], dim=1)


class GLFFNet(nn.Module):
    """(B, C, h, w) -> (B, C, h, w) for any h, w (C = 512 in ColorNet).

    local: 3x3 conv stride 1, C -> C/2 (+BN+ReLU);
    global: 3x3 conv stride 2, C -> C, then 3x3 conv C -> C/2 (each +BN+ReLU), resized back (bilinear);
    fusion: channel concatenation [local, global] -> C.
    """

    def __init__(self, channels: int = 512) -> None:
        super().__init__()
        half = channels // 2
        self.local = Conv2dReLU(channels, half, kernel_size=3, padding=1)
        self.global_ = nn.Sequential(
            Conv2dReLU(channels, channels, kernel_size=3, padding=1, stride=2),
            Conv2dReLU(channels, half, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return glff_fuse(self.local(x), self.global_(x))

"""SCD, the symmetric codec (design section 1, `model=scd`): plain UNet on smp's VGG13-BN encoder, depth 4."""

from __future__ import annotations

from pathlib import Path

import torch
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

from nir_colorize.models.base import Colorizer
from nir_colorize.models.codec import Codec, tanh_head, unet_decoder
from nir_colorize.models.weights import load_encoder_weights

ENCODER = "vgg13_bn"
DEPTH = 4
DECODER_WIDTHS = (512, 256, 128, 64)  # the encoder's widths mirrored: symmetric
OUTPUT_STRIDE = 16


class WithInput(nn.Module):
    """Prepend the input to an encoder's features.

    smp's VGG encoder returns ``[/1 (64), /2, ...]`` without the input, so smp's UNet decoder (which
    drops the first entry as "the input") would lose the /1 skip; this restores smp's convention.
    """

    def __init__(self, encoder: nn.Module, in_channels: int = 1) -> None:
        super().__init__()
        self.encoder = encoder
        self.out_channels = [in_channels, *encoder.out_channels]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, *self.encoder(x)]


def scd_encoder(encoder_weights: str | Path | None = None) -> WithInput:
    """Double 3x3 conv-BN-ReLU blocks of widths 64-128-256-512-512, max-pool between them (output stride 16).

    ``encoder_weights``: ``imagenet`` (smp's VGG13-BN), ``None``, or a torchvision ``vgg13_bn`` state dict
    (``features.*`` keys; ``classifier.*`` ignored).
    """
    encoder = get_encoder(ENCODER, in_channels=1, depth=DEPTH, weights=None)
    return WithInput(load_encoder_weights(encoder, ENCODER, encoder_weights))


def scd(encoder_weights: str | Path | None = None) -> Colorizer:
    """SCD only (paper Table 2): VGG13-BN encoder, centre block, four bilinear UNet blocks
    (widths 512, 256, 128, 64, skips at /8, /4, /2, /1), 1x1 conv + tanh."""
    encoder = scd_encoder(encoder_weights)
    core = Codec(encoder, unet_decoder(encoder.out_channels, DECODER_WIDTHS), tanh_head(DECODER_WIDTHS[-1]))
    return Colorizer(core, output_stride=OUTPUT_STRIDE)

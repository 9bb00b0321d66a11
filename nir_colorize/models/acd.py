"""ACD, the asymmetric codec (design section 1, `model=acd`): residual encoder at output stride 16 + UNet decoder."""

from __future__ import annotations

from pathlib import Path

from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from segmentation_models_pytorch.encoders import get_encoder
from segmentation_models_pytorch.encoders.resnet import ResNetEncoder
from torch import nn

from nir_colorize.models.base import Colorizer
from nir_colorize.models.codec import Codec, tanh_head, unet_decoder
from nir_colorize.models.weights import load_encoder_weights

ENCODER = "resnet34"
DECODER_WIDTHS = (256, 128, 64, 64)
OUTPUT_STRIDE = 16


def acd_encoder(encoder_weights: str | Path | None = None) -> ResNetEncoder:
    """smp's ResNet34 encoder, 1 channel in, with the 7x7 stem conv at stride 1 (output stride 16).

    Features: input (1, /1), stem (64, /1), stage 1 (64, /2), stage 2 (128, /4), stage 3 (256, /8),
    stage 4 (512, /16). The stride changes no weight, so ``encoder_weights`` load as for ResNet34.
    """
    encoder = get_encoder(ENCODER, in_channels=1, depth=5, weights=None)
    load_encoder_weights(encoder, ENCODER, encoder_weights)
    encoder.conv1.stride = (1, 1)
    encoder._output_stride = OUTPUT_STRIDE  # smp's `output_stride` property reads it
    return encoder


def acd_decoder(encoder_channels: list[int]) -> UnetDecoder:
    """Blocks 1-5 of the ACD decoder: centre block at /16, then four bilinear-x2 blocks with the
    skips of stages 3, 2, 1 and the stem (widths 256, 128, 64, 64). Block 6 is ``tanh_head(64)``."""
    return unet_decoder(encoder_channels, DECODER_WIDTHS)


def acd_codec(encoder_weights: str | Path | None = None, neck: nn.Module | None = None) -> Codec:
    """ACD encoder -> ``neck`` (none for ACD only, GLFFNet for ColorNet) -> ACD decoder -> 1x1 conv + tanh."""
    encoder = acd_encoder(encoder_weights)
    return Codec(encoder, acd_decoder(encoder.out_channels), tanh_head(DECODER_WIDTHS[-1]), neck=neck)


def acd(encoder_weights: str | Path | None = None) -> Colorizer:
    """ACD only (paper Table 2, "ACD only")."""
    return Colorizer(acd_codec(encoder_weights), output_stride=OUTPUT_STRIDE)

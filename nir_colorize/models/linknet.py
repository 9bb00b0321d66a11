"""LinkNet (design section 1, `model=linknet`): smp `Linknet` on ResNet34, transposed-conv upsampling."""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp

from nir_colorize.models.base import Colorizer
from nir_colorize.models.weights import load_encoder_weights

ENCODER = "resnet34"
OUTPUT_STRIDE = 32


def linknet(encoder_weights: str | Path | None = None) -> Colorizer:
    """smp Linknet-ResNet34, 1 channel in, 3 out, ``tanh`` head, output stride 32 (paper Table 2, "LinkNet")."""
    core = smp.Linknet(encoder_name=ENCODER, encoder_weights=None, in_channels=1, classes=3, activation="tanh")
    load_encoder_weights(core.encoder, ENCODER, encoder_weights)
    return Colorizer(core, output_stride=OUTPUT_STRIDE)

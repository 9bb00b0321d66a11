"""LinkNet (SPEC `model=linknet`): smp `Linknet` on ResNet34, transposed-conv upsampling."""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import nn

from nir_colorize.models.base import Colorizer


def linknet(encoder_weights: str | None = None) -> Colorizer:
    """smp Linknet-ResNet34, 1 channel in, 3 out, ``tanh`` head, output stride 32."""
    core = smp.Linknet(
        encoder_name="resnet34", encoder_weights=None, in_channels=1, classes=3, activation=None
    )
    # TODO(issue 3): encoder_weights (imagenet / path) through the shared loader.
    return Colorizer(nn.Sequential(core, nn.Tanh()), output_stride=32)

"""ColorNet (design section 1, `model=colornet`): ACD encoder -> GLFFNet -> ACD decoder."""

from __future__ import annotations

from pathlib import Path

from nir_colorize.models.acd import OUTPUT_STRIDE, acd_codec
from nir_colorize.models.base import Colorizer
from nir_colorize.models.glffnet import GLFFNet


def colornet(encoder_weights: str | Path | None = None) -> Colorizer:
    """ColorNet = ACD + GLFFNet on the 512-channel /16 map (paper Table 2, "ACD+GLFFNet (ColorNet)")."""
    # GLFFNet's global branch works at /32: padding to 32 keeps its bilinear resize an exact x2
    # and makes tiled inference (tiles aligned to 32) agree with whole-image inference
    return Colorizer(acd_codec(encoder_weights, neck=GLFFNet(512)), output_stride=OUTPUT_STRIDE,
                     pad_multiple=2 * OUTPUT_STRIDE)

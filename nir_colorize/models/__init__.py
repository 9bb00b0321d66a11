"""Model registry: every network of design section 1 behind one builder."""

from __future__ import annotations

from collections.abc import Callable

from nir_colorize.models.acd import acd
from nir_colorize.models.base import Colorizer
from nir_colorize.models.colornet import colornet
from nir_colorize.models.glffnet import GLFFNet
from nir_colorize.models.linknet import linknet
from nir_colorize.models.nir_copy import nir_copy
from nir_colorize.models.scd import scd
from nir_colorize.models.unet_vgg16 import unet_vgg16
from nir_colorize.models.weights import EncoderWeightsError

MODELS: dict[str, Callable[..., Colorizer]] = {"scd": scd, "linknet": linknet, "acd": acd, "colornet": colornet,
                                                "unet_vgg16": unet_vgg16, "nir_copy": nir_copy}


def build_model(name: str, **kwargs) -> Colorizer:
    """Build the variant ``name`` (one of ``MODELS``); kwargs go to its builder."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "Colorizer", "EncoderWeightsError", "GLFFNet", "build_model"]

"""Model registry: every network of SPEC section 1 behind one builder."""

from __future__ import annotations

from collections.abc import Callable

from nir_colorize.models.base import Colorizer
from nir_colorize.models.linknet import linknet

MODELS: dict[str, Callable[..., Colorizer]] = {"linknet": linknet}


def build_model(name: str, **kwargs) -> Colorizer:
    """Build the variant ``name`` (one of ``MODELS``); kwargs go to its builder."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "Colorizer", "build_model"]

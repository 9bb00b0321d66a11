"""LPIPS (AlexNet, v0.1) from the ``lpips`` package, with offline-resolved ImageNet features.

One frozen, eval-mode network per device, built on first use and kept for the process (not per batch, and
not inside any Metric or LightningModule, so it never lands in a checkpoint).
"""

from __future__ import annotations

import threading
import warnings

import torch
from torch import nn

_MODELS: dict[torch.device, nn.Module] = {}
_LOCK = threading.Lock()


def build_lpips() -> nn.Module:
    """A CPU ``lpips.LPIPS(alex, v0.1)``: the package's own heads, AlexNet features loaded with strict keys."""
    import lpips

    from nir_colorize.metrics.lpips_weights import resolve_alexnet_features

    # pnet_rand=True: torchvision builds an untrained AlexNet (no download); its features are replaced below.
    with warnings.catch_warnings():  # torchvision's deprecation notice for lpips's ``pretrained=False``
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    features, source = resolve_alexnet_features()
    model.net.load_state_dict(features, strict=True)
    model.weights_source = source
    model.eval().requires_grad_(False)
    return model


def lpips_model(device: torch.device | str = "cpu") -> nn.Module:
    """The cached LPIPS network on ``device``."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    with _LOCK:
        if device not in _MODELS:
            _MODELS[device] = build_lpips().to(device)
        return _MODELS[device]


def clear_cache() -> None:
    """Forget the built networks (after the weights on disk changed)."""
    with _LOCK:
        _MODELS.clear()


@torch.no_grad()
def lpips_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS per image, (B,), for (B, 3, H, W) RGB in [0, 1] (mapped to [-1, 1] as LPIPS expects)."""
    model = lpips_model(pred.device)
    with torch.autocast(pred.device.type, enabled=False):
        return model(pred.float(), target.float(), normalize=True).flatten()


__all__ = ["build_lpips", "clear_cache", "lpips_distance", "lpips_model"]

"""Encoder weights (design section 1, ``model.encoder_weights``): ``imagenet``, ``null`` or a state-dict path.

``imagenet`` takes the weights smp itself publishes for the encoder (its registry's Hugging Face repo and
pinned revision); a path takes a torchvision-layout state dict (``conv1.weight``, ``layer1.0.conv1.weight``,
... for ResNet34; ``features.0.weight``, ... for VGG13-BN), classifier keys (``fc.*``, ``classifier.*``)
ignored. A 1-channel stem takes the sum of the RGB kernels (smp's ``patch_first_conv`` convention).
Layers outside the encoder (decoder, neck, head) are not touched and keep their random initialisation.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from segmentation_models_pytorch.encoders import encoders as SMP_ENCODERS
from torch import nn

IGNORED_PREFIXES = ("fc.", "classifier.")
HINT = "use model.encoder_weights=null (random) or a path to a torchvision-layout state dict (.pth)"


class EncoderWeightsError(RuntimeError):
    """Encoder weights that cannot be found, fetched or matched to the encoder."""


def first_conv(module: nn.Module) -> tuple[str, nn.Conv2d]:
    """Name and module of the first ``Conv2d`` of ``module`` (the stem)."""
    for name, child in module.named_modules():
        if isinstance(child, nn.Conv2d):
            return name, child
    raise ValueError(f"{type(module).__name__} has no Conv2d")


def adapt_state_dict(encoder: nn.Module, state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Match a torchvision-layout ``state`` to ``encoder``: drop classifier keys, sum the stem's RGB
    kernels for a 1-channel stem, and fail naming ``source`` on any missing, extra or mis-shaped key."""
    state = {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    stem_name, stem = first_conv(encoder)
    key = f"{stem_name}.weight"
    if key in state and state[key].ndim == 4 and state[key].shape[1] == 3 and stem.in_channels == 1:
        state[key] = state[key].sum(dim=1, keepdim=True)
    own = encoder.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        problems = [f"{label} ({len(keys)}): {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}"
                    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                        ("shape mismatches", wrong)) if keys]
        raise EncoderWeightsError(
            f"{source}: not a torchvision-layout state dict of this encoder ({type(encoder).__name__}); "
            + "; ".join(problems))
    return state


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict saved with ``torch.save`` (or wrapped as ``{"state_dict": ...}``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise EncoderWeightsError(f"model.encoder_weights={str(path)!r}: no such file; "
                                  f"use imagenet, null, or a path to a torchvision-layout state dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or non-torch file
        raise EncoderWeightsError(f"{path}: cannot be read as a torch state dict ({exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EncoderWeightsError(f"{path}: expected a dict of tensors (a state dict), got {type(state).__name__}")
    return state


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as the environment names it now (huggingface_hub reads it only at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub endpoint accepts a TCP connection (huggingface_hub itself retries for ~25 s)."""
    from huggingface_hub import constants

    url = urlparse(os.environ.get("HF_ENDPOINT") or constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def imagenet_state_dict(encoder_name: str) -> dict[str, torch.Tensor]:
    """smp's published ImageNet weights of ``encoder_name`` (3-channel layout), from the hub cache or the
    hub; fails at once when they are not cached and the hub is offline or unreachable."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from safetensors.torch import load_file

    settings = SMP_ENCODERS.get(encoder_name, {}).get("pretrained_settings", {}).get("imagenet")
    if settings is None:
        raise EncoderWeightsError(f"model.encoder_weights=imagenet: smp has no ImageNet weights for {encoder_name}")
    repo, revision, cache = settings["repo_id"], settings["revision"], hub_cache_dir()
    cached = try_to_load_from_cache(repo, "model.safetensors", cache_dir=cache, revision=revision)
    if isinstance(cached, str):
        return load_file(cached, device="cpu")
    where = f"{repo}@{revision[:8]} (model.safetensors) is not in the Hugging Face cache {cache}"
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or constants.HF_HUB_OFFLINE:
        raise EncoderWeightsError(f"model.encoder_weights=imagenet: {where} and HF_HUB_OFFLINE is set; {HINT}")
    if not hub_reachable():
        raise EncoderWeightsError(f"model.encoder_weights=imagenet: {where} and the hub cannot be reached; {HINT}")
    try:
        path = hf_hub_download(repo, "model.safetensors", revision=revision, cache_dir=cache)
    except Exception as exc:  # network and hub errors come in many types
        raise EncoderWeightsError(f"model.encoder_weights=imagenet: download of {repo} failed ({exc}); {HINT}") from exc
    return load_file(path, device="cpu")


def load_encoder_weights(encoder: nn.Module, encoder_name: str, weights: str | Path | None) -> nn.Module:
    """Load ``weights`` (``imagenet``, ``None`` or a state-dict path) into the smp ``encoder`` in place."""
    if weights is None:
        return encoder
    if str(weights) == "imagenet":
        state, source = imagenet_state_dict(encoder_name), f"smp ImageNet weights of {encoder_name}"
    else:
        state, source = read_state_dict(weights), str(weights)
    state = adapt_state_dict(encoder, dict(state), source)
    encoder.load_state_dict(state, strict=True)
    return encoder

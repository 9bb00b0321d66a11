"""Torch datasets of NIR/RGB pairs (streamed from files or held in memory) and batched augmentation."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from nir_colorize.data.io import ImageReadError, read_nir, read_rgb
from nir_colorize.data.pairs import Pair


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) array to a (C, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def compact(image: np.ndarray) -> np.ndarray:
    """A [0, 1] float image as uint8 when it holds 8-bit levels exactly (4x less memory), else float16."""
    levels = image * 255.0
    rounded = np.rint(levels)
    return rounded.astype(np.uint8) if np.abs(levels - rounded).max() < 1e-3 else image.astype(np.float16)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """A uint8 (levels) or float tensor as float32 in [0, 1]."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def resized(image: torch.Tensor, factor: float) -> torch.Tensor:
    """A (C, H, W) image resized by ``factor`` (bicubic, antialiased when shrinking), float in [0, 1]."""
    size = (max(1, round(image.shape[-2] * factor)), max(1, round(image.shape[-1] * factor)))
    out = torch.nn.functional.interpolate(to_unit(image)[None], size=size, mode="bicubic", align_corners=False,
                                          antialias=factor < 1)
    return out[0].clamp(0, 1)


def rescaled_crop(nir: torch.Tensor, rgb: torch.Tensor, crop: int, scales: tuple[float, float],
                  name: Pair | str) -> tuple[torch.Tensor, torch.Tensor]:
    """A random window ``crop / s`` wide (``s`` log-uniform in ``scales``, the window within the image) of both
    images, resized to ``crop`` x ``crop`` (antialiased when shrinking), float in [0, 1]."""
    lo, hi = scales
    s = math.exp(math.log(lo) + float(torch.rand(())) * (math.log(hi) - math.log(lo)))
    side = max(1, min(round(crop / s), *nir.shape[-2:]))
    nir, rgb = random_crop(nir, rgb, side, name)
    if side == crop:
        return to_unit(nir), to_unit(rgb)
    return tuple(torch.nn.functional.interpolate(to_unit(x)[None], size=(crop, crop), mode="bicubic",
                                                 align_corners=False, antialias=side > crop)[0].clamp(0, 1)
                 for x in (nir, rgb))


def random_crop(nir: torch.Tensor, rgb: torch.Tensor, crop: int, name: Pair | str) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``crop`` x ``crop`` window of both (C, H, W) tensors (torch's generator)."""
    h, w = nir.shape[-2:]
    if min(h, w) < crop:
        raise ImageReadError(getattr(name, "nir", name), f"{w}x{h} is smaller than the training crop {crop}")
    top = int(torch.randint(0, h - crop + 1, ()).item())
    left = int(torch.randint(0, w - crop + 1, ()).item())
    return nir[:, top : top + crop, left : left + crop], rgb[:, top : top + crop, left : left + crop]


def read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    nir, rgb = read_nir(pair.nir), read_rgb(pair.rgb)
    if nir.shape[:2] != rgb.shape[:2]:
        raise ImageReadError(pair.nir, f"size {nir.shape[1]}x{nir.shape[0]} differs from {pair.rgb} "
                             f"({rgb.shape[1]}x{rgb.shape[0]})")
    return nir, rgb


class PairDataset(Dataset):
    """Yields ``{"nir": (1,H,W), "rgb": (3,H,W), "name": str, "set": str}`` in [0, 1], decoding the files
    at every access. ``crop``: random square crop side (training) or None (whole image). Flips and jitter
    are batched on the device (``Augment``); randomness comes from torch's generator (``seed_everything``).
    ``resize``: whole images (no ``crop``) resized by this factor, NIR and RGB alike (bicubic; antialiased when
    shrinking): the camera-scale test protocol (docs/evaluation.md). ``rescale`` = (lo, hi): each training crop is
    taken from a window ``crop / s`` wide, ``s`` log-uniform in [lo, hi], and resized to ``crop`` (s < 1: objects
    smaller than in the data; design section 10)."""

    def __init__(self, pairs: list[Pair], crop: int | None = None, set_name: str = "",
                 resize: float | None = None) -> None:
        self.pairs = list(pairs)
        self.crop = crop
        self.set_name = set_name
        self.resize = resize
        self.rescale: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        nir, rgb = read_pair(self.pairs[index])
        return to_tensor(nir), to_tensor(rgb)

    def __getitem__(self, index: int) -> dict:
        nir, rgb = self.load(index)
        if self.crop and self.rescale:
            nir, rgb = rescaled_crop(nir, rgb, self.crop, self.rescale, self.pairs[index])
        elif self.crop:
            nir, rgb = random_crop(nir, rgb, self.crop, self.pairs[index])
        elif self.resize and self.resize != 1:
            nir, rgb = (resized(x, self.resize) for x in (nir, rgb))
        return {"nir": nir.contiguous(), "rgb": rgb.contiguous(), "name": self.pairs[index].name, "set": self.set_name}


class InMemoryPairs(PairDataset):
    """A ``PairDataset`` decoded once into memory (uint8 for 8-bit files, else float16): a crop is a slice,
    so training needs no loader workers. Batches hold uint8 or float16; ``to_unit`` makes them float."""

    def __init__(self, pairs: list[Pair], crop: int | None = None, set_name: str = "", workers: int = 4) -> None:
        super().__init__(pairs, crop, set_name)
        with ThreadPoolExecutor(max_workers=workers) as pool:  # the decoders release the GIL
            decoded = list(pool.map(read_pair, self.pairs))
        self.images = [(to_tensor(compact(n)), to_tensor(compact(r))) for n, r in decoded]

    @property
    def nbytes(self) -> int:
        return sum(n.nbytes + r.nbytes for n, r in self.images)

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index]


@dataclass
class Augment:
    """Training augmentation of a whole batch on its device: horizontal flip (probability ``flip``) and NIR
    jitter: contrast ``c ~ U(1-contrast, 1+contrast)`` about the image mean, brightness ``b ~ U(-brightness,
    brightness)`` and gamma ``exp(U(-gamma, gamma))``, per image, clamped to [0, 1]. The RGB target only flips."""

    flip: float = 0.5
    contrast: float = 0.0
    brightness: float = 0.0
    gamma: float = 0.0

    def __call__(self, nir: torch.Tensor, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = nir.shape[0]
        if self.flip:
            mask = (torch.rand(n, device=nir.device) < self.flip).view(n, 1, 1, 1)
            nir, rgb = torch.where(mask, nir.flip(-1), nir), torch.where(mask, rgb.flip(-1), rgb)
        if self.gamma:
            g = torch.exp((torch.rand(n, 1, 1, 1, device=nir.device) * 2 - 1) * self.gamma)
            nir = nir.clamp_min(0).pow(g)
        if self.contrast or self.brightness:
            c = 1 + (torch.rand(n, 1, 1, 1, device=nir.device) * 2 - 1) * self.contrast
            b = (torch.rand(n, 1, 1, 1, device=nir.device) * 2 - 1) * self.brightness
            mean = nir.mean((1, 2, 3), keepdim=True)
            nir = ((nir - mean) * c + mean + b).clamp(0, 1)
        return nir, rgb

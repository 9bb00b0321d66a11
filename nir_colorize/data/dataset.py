"""Torch dataset of NIR/RGB pairs with random crops and flips for training."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from nir_colorize.data.io import ImageReadError, read_nir, read_rgb
from nir_colorize.data.pairs import Pair


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) float array to a (C, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


class PairDataset(Dataset):
    """Yields ``{"nir": (1,H,W), "rgb": (3,H,W), "name": str}`` in [0, 1].

    ``crop``: random square crop side (training) or None (whole image); ``flip``: random
    horizontal flip. Randomness comes from torch's generator, so ``seed_everything`` fixes it.
    """

    def __init__(self, pairs: list[Pair], crop: int | None = None, flip: bool = False) -> None:
        self.pairs = list(pairs)
        self.crop = crop
        self.flip = flip

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        nir = read_nir(pair.nir)
        rgb = read_rgb(pair.rgb)
        if nir.shape[:2] != rgb.shape[:2]:
            raise ImageReadError(pair.nir, f"size {nir.shape[1]}x{nir.shape[0]} differs from {pair.rgb} "
                                 f"({rgb.shape[1]}x{rgb.shape[0]})")
        nir_t, rgb_t = to_tensor(nir), to_tensor(rgb)
        if self.crop:
            h, w = nir_t.shape[-2:]
            if min(h, w) < self.crop:
                raise ImageReadError(pair.nir, f"{w}x{h} is smaller than the training crop {self.crop}")
            top = int(torch.randint(0, h - self.crop + 1, ()).item())
            left = int(torch.randint(0, w - self.crop + 1, ()).item())
            nir_t = nir_t[:, top : top + self.crop, left : left + self.crop]
            rgb_t = rgb_t[:, top : top + self.crop, left : left + self.crop]
        if self.flip and torch.rand(()) < 0.5:
            nir_t, rgb_t = nir_t.flip(-1), rgb_t.flip(-1)
        return {"nir": nir_t.contiguous(), "rgb": rgb_t.contiguous(), "name": pair.name}

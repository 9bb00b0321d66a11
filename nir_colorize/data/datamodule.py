"""LightningDataModule over any pair source (VCIP 2020 layout, nirscene1, user folders)."""

from __future__ import annotations

from typing import Protocol

import lightning as L
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Sampler

from nir_colorize.data.dataset import PairDataset
from nir_colorize.data.pairs import Pair, check_pairs


class PairSource(Protocol):
    """Anything that lists the pairs of a split: ``train``, ``val`` or ``test``."""

    def pairs(self, split: str) -> list[Pair]: ...


class NIRDataModule(L.LightningDataModule):
    """Train on random crops (``crop_size``) with flips; validate and test on whole images.

    Every split is checked when it is set up (readable headers, partners, sizes, crop size),
    so a bad file stops the run before training starts, with its name in the error.
    """

    def __init__(
        self,
        source: PairSource,
        crop_size: int | None = 256,
        flip: bool = True,
        batch_size: int = 16,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.source = source
        self.crop_size = crop_size
        self.flip = flip
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.datasets: dict[str, PairDataset] = {}

    def split(self, name: str) -> PairDataset:
        """The dataset of split ``name``, built and checked on first use."""
        if name not in self.datasets:
            pairs = self.source.pairs(name)
            crop = self.crop_size if name == "train" else None
            check_pairs(pairs, crop, f"{name} split")
            self.datasets[name] = PairDataset(pairs, crop=crop, flip=self.flip and name == "train")
        return self.datasets[name]

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            self.split("train")
            self.split("val")
        if stage == "validate":
            self.split("val")
        if stage == "test":
            self.split("test")

    def _loader(self, name: str, batch_size: int, shuffle: bool, sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(
            self.split(name),
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=False,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        # Under DDP every test image once: Lightning's DistributedSampler would pad with repeated images
        # (counted twice by the test metrics); ranks may then run one batch more or less, which is safe in test.
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        sampler = UnrepeatedDistributedSampler(self.split("test"), shuffle=False) if distributed else None
        return self._loader("test", self.eval_batch_size, shuffle=False, sampler=sampler)

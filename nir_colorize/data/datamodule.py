"""LightningDataModule over any pair source (VCIP 2020 layout, nirscene1, user folders)."""

from __future__ import annotations

from typing import Protocol

import lightning as L
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Sampler

from nir_colorize.data.dataset import PairDataset
from nir_colorize.data.pairs import DatasetError, Pair, check_pairs


class PairSource(Protocol):
    """Anything that lists the pairs of a split: ``train``, ``val`` or ``test``. A source that must
    prepare files first (``NIRScene1``) also has ``prepare()``, run once per node by Lightning."""

    def pairs(self, split: str) -> list[Pair]: ...


class NIRDataModule(L.LightningDataModule):
    """Train on random crops (``crop_size``) with flips; validate and test on whole images.

    Every split is checked when it is set up (each file decoded in full, partners, sizes, crop size,
    not empty), so a bad file stops the run before training starts, with its name in the error.
    ``check_cache``: a JSON file recording files already found good, so that the check decodes each
    file once, not once per run (None: no record).
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
        check_cache: str | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.crop_size = crop_size
        self.flip = flip
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.check_cache = check_cache
        self.datasets: dict[str, PairDataset] = {}

    def split(self, name: str) -> PairDataset:
        """The dataset of split ``name``, built and checked on first use."""
        if name not in self.datasets:
            try:
                pairs, known = self.source.pairs(name), []
            except DatasetError as err:  # unpartnered files: check the complete pairs too, report all at once
                if err.pairs is None:
                    raise
                pairs, known = err.pairs, err.problems
            crop = self.crop_size if name == "train" else None
            check_pairs(pairs, crop, f"{name} split", cache=self.check_cache, problems=known)
            self.datasets[name] = PairDataset(pairs, crop=crop, flip=self.flip and name == "train")
        return self.datasets[name]

    def prepare_data(self) -> None:
        """Prepare the source's files (e.g. nirscene1 crops) once, before ``setup`` on every process."""
        prepare = getattr(self.source, "prepare", None)
        if callable(prepare):
            prepare()

    def build(self, names: list[str]) -> None:
        """Build and check the splits ``names``; one DatasetError names every bad file of all of them."""
        errors = []
        for name in names:
            try:
                self.split(name)
            except DatasetError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise DatasetError.listing(f"{' and '.join(names)} splits", [p for e in errors for p in e.problems])

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            self.build(["train", "val"])
        if stage == "validate":
            self.build(["val"])
        if stage == "test":
            self.build(["test"])

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

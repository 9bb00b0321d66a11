"""LightningDataModule over any pair source (VCIP 2020 layout, nirscene1, user folders)."""

from __future__ import annotations

import json
import logging
import time
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from nir_colorize.data import leakage as lk
from nir_colorize.data.checked import CheckedFiles
from nir_colorize.data.dataset import Augment, InMemoryPairs, PairDataset, to_unit
from nir_colorize.data.io import image_size
from nir_colorize.data.pairs import Pair, check_pairs
from nir_colorize.errors import DatasetError
from nir_colorize.utils.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

LEAKAGE_POLICIES = ("warn", "drop", "error")
IN_MEMORY_AUTO_BYTES = 4 << 30  # in_memory=auto: hold the train and val splits when they decode to at most 4 GiB


class PairSource(Protocol):
    """Anything that lists the pairs of a split: ``train``, ``val`` and each name of ``test_sets`` (default
    ``["test"]``). A source that must prepare files first (``NIRScene1``) also has ``prepare()``, run once per
    node by Lightning."""

    def pairs(self, split: str) -> list[Pair]: ...


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class NIRDataModule(L.LightningDataModule):
    """Train on random crops (``crop_size``) with flips (and optional NIR jitter), validate and test on whole images.

    When set up, every split and test set is checked (each file decoded in full, partners, sizes, crop size,
    not empty), so a bad file stops the run before training starts, with its name in the error; and the
    splits are compared for exact and near duplicates (``nir_colorize.data.leakage``): ``leakage=warn`` logs
    them, ``drop`` removes from val and the test sets every pair that duplicates a train (or val) pair,
    ``error`` stops. ``write_splits`` records the pairs of every split and the duplicates (``splits.json``).
    ``check_cache``: a JSON file recording files already found good, with their fingerprints, so that each
    file is decoded once, not once per run (None: no record).
    ``in_memory``: decode the train and val splits once and keep them in memory (``auto``: when they fit in
    4 GiB); training then needs no loader workers. Flips and jitter run on the batch, on its device.
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
        leakage: str = "warn",
        near_duplicate: float = lk.NEAR,
        in_memory: bool | str = "auto",
        jitter: dict[str, float] | None = None,
        drop_last: bool = False,
        test_resize: float | None = None,
        rescale: tuple[float, float] | list[float] | None = None,
    ) -> None:
        super().__init__()
        if leakage not in LEAKAGE_POLICIES:
            raise DatasetError(f"data.leakage={leakage!r}: use one of {', '.join(LEAKAGE_POLICIES)}")
        if in_memory not in (True, False, "auto"):
            raise DatasetError(f"data.in_memory={in_memory!r}: use true, false or auto")
        self.source = source
        self.crop_size = crop_size
        self.augment = Augment(flip=0.5 if flip else 0.0, **dict(jitter or {}))
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.check_cache = check_cache
        self.leakage = leakage
        self.near_duplicate = near_duplicate
        self.in_memory = in_memory
        self.drop_last = drop_last
        if test_resize is not None and not test_resize > 0:
            raise DatasetError(f"data.test_resize={test_resize!r}: give a factor > 0 (or null)")
        self.test_resize = test_resize
        if rescale is not None and not (len(rescale) == 2 and 0 < float(rescale[0]) <= float(rescale[1])):
            raise DatasetError(f"data.rescale={list(rescale)!r}: give [lo, hi] with 0 < lo <= hi (or null)")
        self.rescale = (float(rescale[0]), float(rescale[1])) if rescale is not None else None
        self.sets: dict[str, list[Pair]] | None = None  # set name -> its pairs (after a ``drop``)
        self.duplicates: list[lk.Duplicate] = []
        self.dropped: dict[str, list[str]] = {}
        self.check_seconds = 0.0
        self.datasets: dict[str, PairDataset] = {}

    @property
    def test_sets(self) -> list[str]:
        """The names of the source's test sets (``validation`` and ``testing`` for VCIP 2020, else ``test``)."""
        return list(getattr(self.source, "test_sets", ["test"]))

    def _list(self, name: str) -> tuple[list[Pair], list[str]]:
        try:
            return self.source.pairs(name), []
        except DatasetError as err:  # unpartnered files: check the complete pairs too, report all at once
            if err.pairs is None:
                raise
            return err.pairs, err.problems

    def check(self) -> dict[str, list[Pair]]:
        """Check every split and test set, find duplicates between them and apply the ``leakage`` policy
        (once); returns set name -> pairs. One DatasetError names every bad file of all of them."""
        if self.sets is not None:
            return self.sets
        start = time.perf_counter()
        errors, found, fingerprints = [], {}, {}
        checked = CheckedFiles(self.check_cache)  # the record read once for all sets
        for name in ["train", "val", *self.test_sets]:
            try:
                pairs, known = self._list(name)
                if name in self.test_sets and not pairs and not known:
                    continue  # an empty test set is skipped
                crop = self.crop_size if name == "train" else None
                fingerprints[name] = check_pairs(pairs, crop, f"{name} split", cache=checked, problems=known)
                found[name] = pairs
            except DatasetError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise DatasetError.listing("splits", [p for e in errors for p in e.problems])
        self.duplicates = lk.find_duplicates(fingerprints, self.near_duplicate)
        self.check_seconds = time.perf_counter() - start
        self.sets = self._apply_policy(found)
        return self.sets

    def _apply_policy(self, found: dict[str, list[Pair]]) -> dict[str, list[Pair]]:
        sizes = {k: len(v) for k, v in found.items()}
        lines = lk.describe(self.duplicates, sizes)
        leaking = self.leaks()
        summary = (f"leakage check ({self.check_seconds:.2f} s, {sum(sizes.values())} pairs in "
                   f"{', '.join(f'{k} {v}' for k, v in sizes.items())}): ")
        if not lines:
            log.info(summary + "no exact or near duplicates between the splits")
            return found
        detail = summary + "; ".join(lines)
        if self.leakage == "error":
            examples = [f"{d.set}:{d.name} = {d.label()}" for d in self.duplicates if d.leak][:20]
            raise DatasetError.listing(detail + " (data.leakage=error; data.leakage=drop removes them)", examples)
        if self.leakage == "drop":
            self.dropped = {k: [p.name for p in v if (k, p.name) in leaking] for k, v in found.items()}
            self.dropped = {k: v for k, v in self.dropped.items() if v}
            found = {k: [p for p in v if (k, p.name) not in leaking] for k, v in found.items()}
            if not found["val"]:
                raise DatasetError(detail + ": data.leakage=drop leaves the val split empty")
            log.warning(detail + "; dropped (data.leakage=drop): "
                        + ", ".join(f"{k} {len(v)}" for k, v in self.dropped.items()))
        elif leaking:
            log.warning(detail + " (data.leakage=warn: they stay; test tables show them in the all rows only)")
        else:
            log.info(detail)
        return {k: v for k, v in found.items() if v or k in ("train", "val")}

    @property
    def frame_long_side(self) -> int:
        """The training scale (design section 10): the long side, in pixels, of the whole frames the training images
        show, at their pixel scale: the source's ``frame_long_side`` where it records one, else the median long side
        of the training images (read from their headers; they are then taken to be whole frames)."""
        known = getattr(self.source, "frame_long_side", None)
        if known:
            return int(known)
        pairs = self.check()["train"]
        sides = sorted(max(image_size(p.nir)) for p in pairs)
        return int(sides[len(sides) // 2])

    def duplicate_labels(self) -> dict[tuple[str, str], str]:
        """(set, pair name) -> what it duplicates (``train:name (exact); ...``), for the per-image tables."""
        labels: dict[tuple[str, str], list[str]] = {}
        for d in self.duplicates:
            labels.setdefault((d.set, d.name), []).append(d.label())
        return {k: "; ".join(v) for k, v in labels.items()}

    def leaks(self) -> set[tuple[str, str]]:
        """(set, pair name) of every pair that duplicates a train or val pair."""
        return {(d.set, d.name) for d in self.duplicates if d.leak}

    def write_splits(self, path: str | Path) -> Path:
        """``splits.json``: the pairs of every set, the duplicates found (and dropped), the rule, the timing."""
        sets = self.check()
        record: dict[str, Any] = {
            "format": 1, "source": type(self.source).__name__,
            "root": str(getattr(self.source, "root", "")), "policy": self.leakage,
            "rule": lk.RULE.format(near=self.near_duplicate), "check_seconds": round(self.check_seconds, 3),
            "counts": {k: len(v) for k, v in sets.items()}, "test_sets": [k for k in self.test_sets if k in sets],
            "dropped": self.dropped, "duplicates": lk.records(self.duplicates),
            "sets": {k: [p.name for p in v] for k, v in sets.items()},
        }
        return write_bytes_atomic(path, (json.dumps(record, indent=1) + "\n").encode())

    @cached_property
    def hold_in_memory(self) -> bool:
        """Whether train and val are held in memory (``in_memory``; ``auto``: their decoded size from the headers)."""
        if self.in_memory != "auto":
            return bool(self.in_memory)
        sets = self.check()
        pairs = sets["train"] + sets["val"]
        return sum(4 * h * w for h, w in (image_size(p.nir) for p in pairs)) <= IN_MEMORY_AUTO_BYTES

    def split(self, name: str) -> PairDataset:
        """The dataset of split or test set ``name``, built (and everything checked) on first use."""
        if name not in self.datasets:
            sets = self.check()
            if name not in sets:
                raise DatasetError(f"no split or test set {name!r} (have: {', '.join(sets)})")
            crop = self.crop_size if name == "train" else None
            held = name in ("train", "val") and self.hold_in_memory
            self.datasets[name] = (InMemoryPairs if held else PairDataset)(sets[name], crop=crop, set_name=name)
            if name != "train":  # the camera-scale protocol: evaluated images resized (training crops never)
                self.datasets[name].resize = self.test_resize
            else:  # crops from windows of several scales (design section 10)
                self.datasets[name].rescale = self.rescale
            if held:
                log.info("%s split held in memory: %d pairs, %.0f MB", name, len(sets[name]),
                         self.datasets[name].nbytes / 2**20)
        return self.datasets[name]

    def prepare_data(self) -> None:
        """Prepare the source's files (e.g. nirscene1 crops) once, before ``setup`` on every process."""
        prepare = getattr(self.source, "prepare", None)
        if callable(prepare):
            prepare()

    def setup(self, stage: str | None = None) -> None:
        self.check()
        if stage in (None, "fit"):
            self.split("train"), self.split("val")

    def _loader(self, name: str, batch_size: int, shuffle: bool) -> DataLoader:
        dataset = self.split(name)
        held = isinstance(dataset, InMemoryPairs)
        # Under DDP every val/test image once: Lightning's DistributedSampler would pad with repeated images
        # (counted twice by the metrics); ranks may then run one batch more or less, which is safe here.
        sampler = UnrepeatedDistributedSampler(dataset, shuffle=False) if not shuffle and _distributed() else None
        workers = 0 if held else self.num_workers
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=workers,
                          pin_memory=self.pin_memory, drop_last=self.drop_last and shuffle,
                          persistent_workers=workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_loader(self, name: str) -> DataLoader:
        """The loader of test set ``name`` (or of ``val``: the carve-out)."""
        return self._loader(name, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """The first test set (``nir_colorize.testing.test_sets`` runs them all, one named set at a time)."""
        sets = [k for k in self.test_sets if k in self.check()]
        if not sets:
            raise DatasetError(f"{type(self.source).__name__}: no test set")
        return self.test_loader(sets[0])

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Pixels to float32 in [0, 1] on the device, then (training only) flips and jitter for the whole batch."""
        if not isinstance(batch, dict) or "nir" not in batch:
            return batch
        nir, rgb = to_unit(batch["nir"]), to_unit(batch["rgb"])
        if self.trainer is not None and self.trainer.training:
            nir, rgb = self.augment(nir, rgb)
        return batch | {"nir": nir, "rgb": rgb}

"""Finding NIR/RGB pairs on disk and checking them before a run starts."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from nir_colorize.data.io import IMAGE_SUFFIXES, ImageReadError, image_size

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset that cannot be used; the message lists every bad file and why."""


@dataclass(frozen=True)
class Pair:
    """One registered NIR/RGB pair (``rgb`` is None for prediction inputs)."""

    name: str
    nir: Path
    rgb: Path | None = None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def match_pairs(
    nir_dir: Path, rgb_dir: Path, nir_pattern: str, rgb_pattern: str, what: str
) -> list[Pair]:
    """Pair files whose names match ``nir_pattern`` / ``rgb_pattern`` (regexes with a ``(?P<id>...)``
    group) by that id. Every unpartnered file is an error; an empty result is an error."""
    if not nir_dir.is_dir():
        raise DatasetError(f"{what}: folder {nir_dir} does not exist")
    if not rgb_dir.is_dir():
        raise DatasetError(f"{what}: folder {rgb_dir} does not exist")
    nir_re, rgb_re = re.compile(nir_pattern), re.compile(rgb_pattern)
    nirs = {m["id"]: p for p in _images(nir_dir) if (m := nir_re.fullmatch(p.name))}
    rgbs = {m["id"]: p for p in _images(rgb_dir) if (m := rgb_re.fullmatch(p.name))}
    problems = [f"{nirs[i]}: NIR image has no RGB partner in {rgb_dir}" for i in sorted(nirs.keys() - rgbs.keys())]
    problems += [f"{rgbs[i]}: RGB image has no NIR partner in {nir_dir}" for i in sorted(rgbs.keys() - nirs.keys())]
    if problems:
        raise DatasetError(f"{what}: {len(problems)} unpaired file(s):\n  " + "\n  ".join(problems))
    if not nirs:
        raise DatasetError(
            f"{what}: no image pairs found in {nir_dir} (NIR names like /{nir_pattern}/, "
            f"RGB names like /{rgb_pattern}/ in {rgb_dir})"
        )
    return [Pair(name=Path(nirs[i].name).stem, nir=nirs[i], rgb=rgbs[i]) for i in sorted(nirs)]


def check_pairs(pairs: list[Pair], min_size: int | None, what: str) -> None:
    """Validate headers of every pair: readable, same size, at least ``min_size`` on each side."""
    problems: list[str] = []
    for pair in pairs:
        try:
            nir_hw = image_size(pair.nir)
            rgb_hw = image_size(pair.rgb) if pair.rgb is not None else nir_hw
        except ImageReadError as err:
            problems.append(str(err))
            continue
        if nir_hw != rgb_hw:
            problems.append(f"{pair.nir}: size {nir_hw[1]}x{nir_hw[0]} differs from its RGB partner "
                            f"{pair.rgb} ({rgb_hw[1]}x{rgb_hw[0]})")
        elif min_size and min(nir_hw) < min_size:
            problems.append(f"{pair.nir}: {nir_hw[1]}x{nir_hw[0]} is smaller than the training crop {min_size}")
    if problems:
        raise DatasetError(f"{what}: {len(problems)} bad file(s):\n  " + "\n  ".join(problems))


# VCIP 2020 challenge layout (SPEC section 4). Test RGB files are published with a capital T.
VCIP_SPLITS: dict[str, tuple[str, str, str, str]] = {
    "train": ("NIR", "RGB-Registered", r"(?P<id>.+)_nir\.png", r"(?P<id>.+)_rgb_reg\.png"),
    "val": ("Validation", "Validation", r"validation_(?P<id>\d+)_nir\.png", r"validation_(?P<id>\d+)_rgb_reg\.png"),
    "test": ("Testing", "Testing", r"testing_(?P<id>\d+)_nir_reg\.png", r"[Tt]esting_(?P<id>\d+)_rgb_reg\.png"),
}


class VCIP2020:
    """Pair source for the VCIP 2020 layout (``NIR/``, ``RGB-Registered/``, ``Validation/``, ``Testing/``).

    Without a ``Testing/`` folder (it is not always distributed) the test split falls back to
    ``Validation/`` with a warning, when ``test_fallback_to_val`` is set.
    """

    def __init__(self, root: str | Path, test_fallback_to_val: bool = True) -> None:
        self.root = Path(root)
        self.test_fallback_to_val = test_fallback_to_val

    def pairs(self, split: str) -> list[Pair]:
        if not self.root.is_dir():
            raise DatasetError(f"VCIP 2020 data root {self.root} does not exist")
        if split == "test" and self.test_fallback_to_val and not (self.root / "Testing").is_dir():
            log.warning("no Testing/ folder under %s: testing on Validation/ instead", self.root)
            split = "val"
        nir_sub, rgb_sub, nir_pat, rgb_pat = VCIP_SPLITS[split]
        return match_pairs(self.root / nir_sub, self.root / rgb_sub, nir_pat, rgb_pat,
                           f"VCIP 2020 {split} split under {self.root}")

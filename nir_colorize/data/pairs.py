"""Finding NIR/RGB pairs on disk and checking them before a run starts."""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from nir_colorize.data.checked import CheckedFiles
from nir_colorize.data.io import IMAGE_SUFFIXES, ImageReadError, read_nir, read_rgb

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset that cannot be used; the message lists every bad file and why.

    ``problems``: one line per bad file (``PATH: why``); ``pairs``: where the error is only about files
    outside them (unpartnered files), the pairs that are complete, so that a caller can go on checking
    those and report everything in one error.
    """

    def __init__(self, message: str, problems: list[str] | None = None, pairs: list[Pair] | None = None) -> None:
        self.problems = list(problems) if problems is not None else [message]
        self.pairs = pairs
        super().__init__(message)

    @classmethod
    def listing(cls, what: str, problems: list[str], pairs: list[Pair] | None = None) -> DatasetError:
        """``what: N problem(s):`` and one indented line per problem."""
        problems = list(dict.fromkeys(problems))
        return cls(f"{what}: {len(problems)} problem(s):\n  " + "\n  ".join(problems), problems, pairs)


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
    if not nirs.keys() & rgbs.keys():
        raise DatasetError.listing(what, problems + [
            f"{nir_dir}: no image pairs found (NIR names like /{nir_pattern}/, RGB names like /{rgb_pattern}/ "
            f"in {rgb_dir})"])
    pairs = [Pair(name=Path(nirs[i].name).stem, nir=nirs[i], rgb=rgbs[i]) for i in sorted(nirs.keys() & rgbs.keys())]
    if problems:
        raise DatasetError.listing(what, problems, pairs)
    return pairs


def _check_file(path: Path, role: str, checked: CheckedFiles) -> tuple[int, int]:
    """Decode ``path`` fully (a truncated file passes a header check, not a decode) as NIR or RGB;
    returns (H, W). Raises ImageReadError."""
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    hw = checked.get(path, role)
    if hw is None:
        arr = read_nir(path) if role == "nir" else read_rgb(path)
        hw = (int(arr.shape[0]), int(arr.shape[1]))
        checked.put(path, role, *hw)
    return hw


def check_pairs(
    pairs: list[Pair],
    min_size: int | None,
    what: str,
    cache: str | Path | None = None,
    workers: int = 4,
    problems: list[str] | None = None,
) -> None:
    """Check every pair before a run: each file decodes completely (so truncated or corrupt files are
    found), an NIR file is gray (or three identical channels), an RGB file has colour, partners have the
    same size, at least ``min_size`` on each side, and the list is not empty. Raises one DatasetError
    naming every bad file and why, after the ``problems`` already known (e.g. unpartnered files).
    Files already found good (unchanged size and time) are recorded in ``cache`` (a JSON file) and not
    decoded again."""
    problems = list(problems or [])
    if not pairs:
        raise DatasetError.listing(what, [*problems, f"{what} is empty: no image pairs (empty folder, or no pair in this split)"])
    checked = CheckedFiles(cache)
    jobs = [(p.nir, "nir") for p in pairs] + [(p.rgb, "rgb") for p in pairs if p.rgb is not None]

    def run(job: tuple[Path, str]) -> tuple[int, int] | ImageReadError:
        try:
            return _check_file(job[0], job[1], checked)
        except ImageReadError as err:
            return err

    # Threads: the decoders (zlib, libjpeg, file reads) release the GIL.
    with ThreadPoolExecutor(max_workers=max(1, min(workers, os.cpu_count() or 1))) as pool:
        results = dict(zip(jobs, pool.map(run, jobs), strict=True))
    checked.save()
    for pair in pairs:
        nir_hw = results[(pair.nir, "nir")]
        rgb_hw = results[(pair.rgb, "rgb")] if pair.rgb is not None else nir_hw
        bad = [str(r) for r in (nir_hw, rgb_hw) if isinstance(r, ImageReadError)]
        if bad:
            problems += bad
        elif nir_hw != rgb_hw:
            problems.append(f"{pair.nir}: size {nir_hw[1]}x{nir_hw[0]} differs from its RGB partner "
                            f"{pair.rgb} ({rgb_hw[1]}x{rgb_hw[0]})")
        elif min_size and min(nir_hw) < min_size:
            problems.append(f"{pair.nir}: {nir_hw[1]}x{nir_hw[0]} is smaller than the training crop {min_size}")
    if problems:
        raise DatasetError.listing(what, problems)


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

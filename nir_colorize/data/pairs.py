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
from nir_colorize.data.leakage import fingerprint

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


def _check_file(path: Path, role: str, checked: CheckedFiles) -> tuple[tuple[int, int], dict[str, str]]:
    """Decode ``path`` fully (a truncated file passes a header check, not a decode) as NIR or RGB;
    returns ((H, W), its leakage fingerprint). Raises ImageReadError."""
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    found = checked.get(path, role)
    if found is None:
        arr = read_nir(path) if role == "nir" else read_rgb(path)
        found = (int(arr.shape[0]), int(arr.shape[1])), fingerprint(arr)
        checked.put(path, role, *found[0], found[1])
    return found


def check_pairs(
    pairs: list[Pair],
    min_size: int | None,
    what: str,
    cache: str | Path | CheckedFiles | None = None,
    workers: int = 4,
    problems: list[str] | None = None,
) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Check every pair before a run: each file decodes completely (so truncated or corrupt files are
    found), an NIR file is gray (or three identical channels), an RGB file has colour, partners have the
    same size, at least ``min_size`` on each side, and the list is not empty. Raises one DatasetError
    naming every bad file and why, after the ``problems`` already known (e.g. unpartnered files).
    Files already found good (unchanged size and time) are recorded in ``cache`` (a JSON file, or an open ``CheckedFiles`` shared by several calls) and not
    decoded again. Returns pair name -> (NIR, RGB) fingerprints (``nir_colorize.data.leakage``; the NIR
    one twice for a pair without RGB)."""
    problems = list(problems or [])
    if not pairs:
        raise DatasetError.listing(what, [*problems, f"{what} is empty: no image pairs (empty folder, or no pair in this split)"])
    checked = cache if isinstance(cache, CheckedFiles) else CheckedFiles(cache)
    jobs = [(p.nir, "nir") for p in pairs] + [(p.rgb, "rgb") for p in pairs if p.rgb is not None]

    def run(job: tuple[Path, str]) -> tuple[tuple[int, int], dict[str, str]] | ImageReadError:
        try:
            return _check_file(job[0], job[1], checked)
        except ImageReadError as err:
            return err

    # Threads: the decoders (zlib, libjpeg, file reads) release the GIL.
    with ThreadPoolExecutor(max_workers=max(1, min(workers, os.cpu_count() or 1))) as pool:
        results = dict(zip(jobs, pool.map(run, jobs), strict=True))
    checked.save()
    fingerprints = {}
    for pair in pairs:
        nir_res = results[(pair.nir, "nir")]
        rgb_res = results[(pair.rgb, "rgb")] if pair.rgb is not None else nir_res
        bad = [str(r) for r in (nir_res, rgb_res) if isinstance(r, ImageReadError)]
        if bad:
            problems += bad
            continue
        (nir_hw, nir_fp), (rgb_hw, rgb_fp) = nir_res, rgb_res
        fingerprints[pair.name] = (nir_fp, rgb_fp)
        if nir_hw != rgb_hw:
            problems.append(f"{pair.nir}: size {nir_hw[1]}x{nir_hw[0]} differs from its RGB partner "
                            f"{pair.rgb} ({rgb_hw[1]}x{rgb_hw[0]})")
        elif min_size and min(nir_hw) < min_size:
            problems.append(f"{pair.nir}: {nir_hw[1]}x{nir_hw[0]} is smaller than the training crop {min_size}")
    if problems:
        raise DatasetError.listing(what, problems)
    return fingerprints


# VCIP 2020 challenge layout (SPEC section 4): folder(s) and name patterns. Test RGB files have a capital T.
VCIP_FOLDERS: dict[str, tuple[str, str, str, str]] = {
    "train": ("NIR", "RGB-Registered", r"(?P<id>.+)_nir\.png", r"(?P<id>.+)_rgb_reg\.png"),
    "validation": ("Validation", "Validation", r"validation_(?P<id>\d+)_nir\.png", r"validation_(?P<id>\d+)_rgb_reg\.png"),
    "testing": ("Testing", "Testing", r"testing_(?P<id>\d+)_nir_reg\.png", r"[Tt]esting_(?P<id>\d+)_rgb_reg\.png"),
}
PROTOCOLS = ("carve_out", "published")
PUBLISHED_WARNING = ("data.source.protocol=published: Validation/ picks the checkpoint (the challenge's protocol), so "
                     "it is no test set here, and Testing/ pairs that duplicate it are scored as test images (in the "
                     "published release 15 of the 28 Testing/ pairs are Validation/ pairs and 8 are training pairs); "
                     "the leakage check below names them. protocol=carve_out (the default) validates on training pairs.")


class VCIP2020:
    """Pair source for the VCIP 2020 layout (``NIR/``, ``RGB-Registered/``, ``Validation/``, ``Testing/``).

    ``protocol=carve_out`` (default, SPEC section 6): ``val`` is a seeded ``val_ratio`` of the training pairs
    (recorded in ``split_file``: reused when it exists, written when it does not; None: not recorded), and
    ``Validation/`` and ``Testing/`` are the test sets ``validation`` and ``testing`` (each where present).
    ``protocol=published``: the challenge's protocol, ``val`` = ``Validation/``, all ``NIR/`` pairs train, the
    test set is ``testing``; it warns what that leaks.
    """

    def __init__(self, root: str | Path, protocol: str = "carve_out", val_ratio: float = 0.1, seed: int = 0,
                 split_file: str | Path | None = None) -> None:
        if protocol not in PROTOCOLS:
            raise DatasetError(f"data.source.protocol={protocol!r}: use one of {', '.join(PROTOCOLS)}")
        self.root = Path(root)
        self.protocol = protocol
        self.val_ratio, self.seed = val_ratio, seed
        self.split_file = Path(split_file) if split_file else None
        self._carve: dict[str, str] | None = None
        if protocol == "published":
            log.warning(PUBLISHED_WARNING)

    def _folder(self, key: str) -> list[Pair]:
        if not self.root.is_dir():
            raise DatasetError(f"VCIP 2020 data root {self.root} does not exist (set data.source.root)")
        nir_sub, rgb_sub, nir_pat, rgb_pat = VCIP_FOLDERS[key]
        return match_pairs(self.root / nir_sub, self.root / rgb_sub, nir_pat, rgb_pat,
                           f"VCIP 2020 {VCIP_FOLDERS[key][0]}/ folder under {self.root}")

    @property
    def test_sets(self) -> list[str]:
        """The test sets present under the root: ``validation`` (carve-out protocol only) and ``testing``."""
        names = ["validation", "testing"] if self.protocol == "carve_out" else ["testing"]
        return [n for n in names if (self.root / VCIP_FOLDERS[n][0]).is_dir()]

    def carve_out(self, pairs: list[Pair]) -> dict[str, str]:
        """Training pair name -> ``train`` | ``val``, from ``split_file`` when it exists, else seeded (and written)."""
        from nir_colorize.data.splits import (  # splits imports us
            read_carve_out,
            split_by_ratio,
            write_carve_out,
        )

        if self._carve is None:
            names = [p.name for p in pairs]
            self._carve = read_carve_out(self.split_file, names, self.val_ratio, self.seed) if (
                self.split_file and self.split_file.is_file()) else None
            if self._carve is None:
                assignment = split_by_ratio(names, self.val_ratio, 0.0, self.seed)
                self._carve = assignment
                if self.split_file:
                    write_carve_out(self.split_file, assignment, self.val_ratio, self.seed)
                    log.info("VCIP 2020 carve-out (val_ratio %s, seed %s) written to %s", self.val_ratio, self.seed,
                             self.split_file)
        return self._carve

    def pairs(self, split: str) -> list[Pair]:
        if split in ("train", "val") and self.protocol == "published":
            return self._folder("train" if split == "train" else "validation")
        if split in ("train", "val"):
            pool = self._folder("train")
            assignment = self.carve_out(pool)
            return [p for p in pool if assignment[p.name] == split]
        if split not in self.test_sets:
            raise DatasetError(f"VCIP 2020 under {self.root}: no test set {split!r} (present: "
                               f"{', '.join(self.test_sets) or 'none'}; protocol={self.protocol})")
        return self._folder(split)

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
from nir_colorize.errors import DatasetError

log = logging.getLogger(__name__)

DATA_ENV = "NIR_COLORIZE_DATA"  # conf/paths: paths.data_dir, the folder that holds the datasets
SOURCES = {  # a data root's usual folder name under paths.data_dir -> where to get it (docs/data.md)
    "vcip2020": "the VCIP 2020 NIR colorization challenge data (NIR/, RGB-Registered/, Validation/, Testing/)",
    "nirscene1_scenes": "the project's 384x256 frames of RGB-NIR Scene (EPFL IVRL) indoor, oldbuilding, street, "
                        "urban and water scenes (NNN_nir.png + NNN_rgb.png; docs/data.md says how to make them)",
}


def missing_root(root: Path, what: str, key: str = "data.source.root") -> str:
    """The error for a data root that does not exist: what to download, and where to point the config."""
    source = SOURCES.get(root.name)
    if source is None:
        return f"{what} {root} does not exist: pass {key}=... (the folder of your NIR/RGB pairs)"
    return (f"{what} {root} does not exist: get {source}, put it at ${DATA_ENV}/{root.name} (set {DATA_ENV}, or "
            f"paths.data_dir=..., to the folder that holds it) or pass {key}=...; see docs/data.md")


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

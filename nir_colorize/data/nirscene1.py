"""The paper's protocol on the published RGB-NIR Scene folder (``data=nirscene1``).

Each source pair (``<category>/<id>_nir.tiff`` + ``<id>_rgb.tiff``) is cut into squares of side
min(W, H), evenly spaced along the long side (``squares``: 1 = centre, 2 = left and right ends),
each resized to ``size`` x ``size`` and written as 8-bit PNG. Source images, not crops, are split
with a seed (so no scene is in two splits). ``split.json`` records every crop, its split, its source
image and box, the parameters and the seed; it is written last, so it vouches for the crops.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from nir_colorize.data.download import DownloadError, fetch, unpack
from nir_colorize.data.folder import FolderPairs
from nir_colorize.data.io import read_nir, read_rgb, to_uint8
from nir_colorize.data.pairs import Pair
from nir_colorize.data.splits import SPLITS, split_groups
from nir_colorize.errors import DatasetError, ImageReadError
from nir_colorize.utils.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

CATEGORIES = ("country", "field", "forest", "indoor", "mountain", "oldbuilding", "street", "urban", "water")
SPLIT_FILE = "split.json"
CROPS_DIR = "crops"
FORMAT = 1
RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
CROP_RULE = "squares of side min(W, H), evenly spaced along the long side, resized to size x size"
PUBLISHED = ("the RGB-NIR Scene dataset (nirscene1; M. Brown and S. Suesstrunk, CVPR 2011, EPFL IVRL): "
             "nine folders (" + ", ".join(CATEGORIES) + ") of <id>_nir.tiff and <id>_rgb.tiff")


@dataclass(frozen=True)
class Protocol:
    """Parameters of a preparation; the split file records them, and a change prepares again."""

    size: int = 480
    squares: int = 2
    resample: str = "bicubic"
    test_crops: int = 57
    val_crops: int = 57
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 1 or self.squares < 1 or self.test_crops < 1 or self.val_crops < 0:
            raise ValueError(f"nirscene1: need size, squares, test_crops >= 1 and val_crops >= 0, got {self}")
        if self.resample not in RESAMPLE:
            raise ValueError(f"nirscene1: resample={self.resample!r}, use one of {', '.join(RESAMPLE)}")


def square_boxes(width: int, height: int, squares: int) -> list[tuple[int, int, int]]:
    """(left, top, side) of ``squares`` squares of side min(W, H), evenly spaced along the long side
    from one end to the other (one square: the centre). 1024x680, 2 squares: x = 0 and x = 344."""
    side = min(width, height)
    span = max(width, height) - side
    offsets = [span // 2] if squares == 1 else [round(span * k / (squares - 1)) for k in range(squares)]
    return [(o, 0, side) if width >= height else (0, o, side) for o in offsets]


@dataclass
class Prepared:
    """A prepared folder: its split file's content, and whether this call wrote it."""

    out: Path
    record: dict
    wrote: bool
    seconds: float = 0.0

    @property
    def split_file(self) -> Path:
        return self.out / SPLIT_FILE

    def pairs(self, split: str) -> list[Pair]:
        crops = self.record["crops"]
        return [Pair(name=n, nir=self.out / c["nir"], rgb=self.out / c["rgb"])
                for n, c in sorted(crops.items()) if c["split"] == split]

    def summary(self) -> str:
        counts, p = self.record["counts"], self.record["protocol"]
        what = (f"wrote {counts['crops']} crop pairs in {self.seconds:.1f} s" if self.wrote
                else f"up to date, {counts['crops']} crop pairs")
        return (f"nirscene1 {self.out}: {what} ({p['size']}x{p['size']}, {p['squares']} per image, "
                f"from {counts['sources']} source images); split by source image, seed {p['seed']}: "
                f"train {counts['train']}, val {counts['val']}, test {counts['test']} -> {self.split_file}")


def find_sources(root: Path) -> tuple[dict[str, Pair], list[str]]:
    """(source pairs by id ``<category>/<id>``, one problem line per unpartnered file)."""
    return FolderPairs(root, nir="*/*_nir.*", rgb="*/*_rgb.*").found


def source_listing(sources: dict[str, Pair], root: Path) -> dict[str, dict]:
    """What identifies the source files (names and byte sizes: not times, which a copy changes)."""
    return {sid: {"nir": p.nir.relative_to(root).as_posix(), "rgb": p.rgb.relative_to(root).as_posix(),
                  "nir_bytes": p.nir.stat().st_size, "rgb_bytes": p.rgb.stat().st_size}
            for sid, p in sources.items()}


def load_current(out: Path, protocol: Protocol, listing: dict[str, dict] | None) -> dict | None:
    """The split file's content if it matches ``protocol`` (and ``listing``, when the sources are there)
    and every crop it names exists with its recorded size; else None."""
    try:
        record = json.loads((out / SPLIT_FILE).read_text())
    except (OSError, ValueError):
        return None
    if record.get("format") != FORMAT or record.get("protocol") != asdict(protocol):
        return None
    if listing is not None:
        recorded = {sid: {k: s[k] for k in ("nir", "rgb", "nir_bytes", "rgb_bytes")}
                    for sid, s in record.get("sources", {}).items()}
        if recorded != listing:
            return None
    for crop in record.get("crops", {}).values():
        for role in ("nir", "rgb"):
            path = out / crop[role]
            if not path.is_file() or path.stat().st_size != crop[f"{role}_bytes"]:
                return None
    return record


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an 8-bit (H, W) or (H, W, 3) array (deterministic: no time stamp)."""
    buf = BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def crop_source(sid: str, pair: Pair, protocol: Protocol, staging: Path) -> tuple[list[str], dict, dict]:
    """Decode one source pair, check it, and write its crops into ``staging``.
    Returns (problems, {crop name: record}, source record); nothing is written if there is a problem."""
    problems: list[str] = []
    arrays = {}
    for role, path, read in (("nir", pair.nir, read_nir), ("rgb", pair.rgb, read_rgb)):
        try:
            arrays[role] = to_uint8(read(path))
        except ImageReadError as err:
            problems.append(str(err))
    if problems:
        return problems, {}, {}
    nir, rgb = arrays["nir"][..., 0], arrays["rgb"]
    (h, w), size = nir.shape, protocol.size
    if rgb.shape[:2] != (h, w):
        return [f"{pair.nir}: size {w}x{h} differs from its RGB partner {pair.rgb} "
                f"({rgb.shape[1]}x{rgb.shape[0]})"], {}, {}
    if min(h, w) < size:
        return [f"{pair.nir}: {w}x{h} is smaller than the crop size {size}x{size}"], {}, {}
    crops = {}
    for k, (left, top, side) in enumerate(square_boxes(w, h, protocol.squares)):
        name = f"{sid.replace('/', '_')}_{k}"
        crop = {"source": sid, "box": [left, top, side]}
        for role, array in (("nir", nir), ("rgb", rgb)):
            square = Image.fromarray(array[top : top + side, left : left + side])
            if side != size:
                square = square.resize((size, size), RESAMPLE[protocol.resample])
            data = encode_png(np.asarray(square))
            rel = f"{CROPS_DIR}/{name}_{role}.png"
            write_bytes_atomic(staging / rel, data)
            crop |= {role: rel, f"{role}_bytes": len(data), f"{role}_sha256": hashlib.sha256(data).hexdigest()}
        crops[name] = crop
    return [], crops, {"width": w, "height": h, "crops": sorted(crops)}


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (so parallel runs prepare once); no-op without fcntl."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(staging: Path, out: Path) -> None:
    """Move the prepared crops and split file from ``staging`` into ``out``: the old split file goes
    first (from then on nothing in ``out`` is trusted), the new one last."""
    (out / SPLIT_FILE).unlink(missing_ok=True)
    shutil.rmtree(out / CROPS_DIR, ignore_errors=True)
    (staging / CROPS_DIR).rename(out / CROPS_DIR)
    os.replace(staging / SPLIT_FILE, out / SPLIT_FILE)


def prepare_nirscene1(
    root: str | Path, out: str | Path, protocol: Protocol = Protocol(), force: bool = False, workers: int = 4
) -> Prepared:
    """Prepare ``out`` from the published folder ``root``, unless it is already prepared with the same
    protocol from the same files. Everything is built in a temporary folder inside ``out`` and moved in
    place at the end, so a failure or interruption leaves no crop or split file behind."""
    root, out = Path(root), Path(out)
    start = time.perf_counter()
    with locked(out):
        for stale in out.glob(".staging-*"):  # left by a killed run; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        sources, unpaired = find_sources(root)
        listing = source_listing(sources, root)
        if not unpaired and not force and (record := load_current(out, protocol, listing)) is not None:
            return Prepared(out, record, wrote=False)
        staging = out / f".staging-{uuid.uuid4().hex}"
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(workers, os.cpu_count() or 1))) as pool:
                results = list(pool.map(lambda item: crop_source(*item, protocol, staging), sources.items()))
            problems = unpaired + [p for r in results for p in r[0]]
            if problems:
                raise DatasetError.listing(f"nirscene1 sources under {root}", problems)
            crops = {name: crop for r in results for name, crop in r[1].items()}
            sizes = {sid: len(r[2]["crops"]) for sid, r in zip(sources, results, strict=True)}
            groups = split_groups(sizes, protocol.test_crops, protocol.val_crops, protocol.seed)
            for crop in crops.values():
                crop["split"] = groups[crop["source"]]
            record = {
                "format": FORMAT,
                "dataset": "nirscene1",
                "crop_rule": CROP_RULE,
                "protocol": asdict(protocol),
                "counts": {"sources": len(sources), "crops": len(crops)}
                | {s: sum(c["split"] == s for c in crops.values()) for s in SPLITS},
                "sources": {sid: listing[sid] | r[2] | {"split": groups[sid]}
                            for sid, r in zip(sources, results, strict=True)},
                "crops": crops,
            }
            text = json.dumps(record, indent=1, sort_keys=True) + "\n"
            write_bytes_atomic(staging / SPLIT_FILE, text.encode())
            install(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Prepared(out, record, wrote=True, seconds=time.perf_counter() - start)


def find_published_root(folder: Path) -> Path | None:
    """The folder (``folder`` or one below it) holding ``<category>/<id>_nir.*`` files."""
    for candidate in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        if any(candidate.glob("*/*_nir.*")):
            return candidate
    return None


class NIRScene1:
    """Pair source for the paper protocol: prepares ``out`` from ``root`` on first use (cached), then
    lists the crops of a split. Without the sources, crops already prepared with the same protocol are
    used; else ``url`` (with ``sha256``) is downloaded and unpacked into ``out/source`` if configured."""

    def __init__(
        self,
        root: str | Path,
        out: str | Path,
        seed: int = 0,
        size: int = 480,
        squares: int = 2,
        resample: str = "bicubic",
        test_crops: int = 57,
        val_crops: int = 57,
        url: str | None = None,
        sha256: str | None = None,
        workers: int = 4,
    ) -> None:
        self.root, self.out = Path(root), Path(out)
        self.protocol = Protocol(size=size, squares=squares, resample=resample, test_crops=test_crops,
                                 val_crops=val_crops, seed=seed)
        self.url, self.sha256, self.workers = url, sha256, workers
        self.prepared: Prepared | None = None

    @property
    def frame_long_side(self) -> int:
        """The long side of a whole 1024x680 frame at the crops' scale (squares of side 680 resized to ``size``)."""
        return round(1024 * self.protocol.size / 680)

    def source_root(self) -> Path | None:
        """Where the published folder is: ``root``, or an earlier download under ``out/source``."""
        for folder in (self.root, self.out / "source"):
            if folder.is_dir() and (found := find_published_root(folder)) is not None:
                return found
        return None

    def prepare(self) -> Prepared:
        """Prepare (or find up to date) and report it."""
        root = self.source_root()
        if root is None:
            record = load_current(self.out, self.protocol, listing=None)
            if record is not None:
                log.info("nirscene1: no source folder at %s; using the crops prepared in %s", self.root, self.out)
                self.prepared = Prepared(self.out, record, wrote=False)
                return self.prepared
            where = (f"place {PUBLISHED} at {self.root} (so that {self.root}/country/0000_nir.tiff exists), "
                     f"or set data.source.root to where it is")
            if not self.url:
                raise DatasetError(f"nirscene1: source folder {self.root} not found or empty: {where}; or set "
                                   f"data.source.url (and data.source.sha256) to download the archive")
            try:
                archive = fetch(self.url, self.out / "download", self.sha256)
            except DownloadError as err:
                raise DatasetError(f"nirscene1: {err}. Offline: {where}") from err
            root = find_published_root(unpack(archive, self.out / "source"))
            if root is None:
                raise DatasetError(f"nirscene1: the archive {archive} holds no <category>/<id>_nir.* files")
        self.prepared = prepare_nirscene1(root, self.out, self.protocol, workers=self.workers)
        log.info(self.prepared.summary())
        return self.prepared

    def pairs(self, split: str) -> list[Pair]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} (use {', '.join(SPLITS)})")
        prepared = self.prepared or self.prepare()
        return prepared.pairs(split)

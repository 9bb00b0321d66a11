"""Image reading and writing: 8/16-bit PNG, TIFF, JPEG; clear errors; atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import png  # pypng: Pillow reads 16-bit colour PNGs as 8-bit
import tifffile
from PIL import Image

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}

# Largest channel difference (on [0, 1]) of an NIR file stored as three "identical" channels:
# two 8-bit levels, so that lossy JPEG round-off passes and a colour image does not.
NIR_CHANNEL_TOLERANCE = 2.0 / 255.0


class ImageReadError(ValueError):
    """An image that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _to_float(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise ImageReadError(path, "contains non-finite values (NaN or inf)")
        if arr.min() < 0.0 or arr.max() > 1.0:
            raise ImageReadError(path, f"float image outside [0, 1] (range {arr.min():.3g}..{arr.max():.3g})")
        return arr
    raise ImageReadError(path, f"unsupported pixel type {arr.dtype} (use 8- or 16-bit images)")


def _decode_png16(path: Path) -> np.ndarray:
    """A 16-bit colour PNG with pypng, keeping all 16 bits (alpha is dropped later)."""
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    arr = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    return arr.reshape(height, width, info["planes"])


def _decode_tiff(path: Path) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tif:
            if not len(tif.pages):  # e.g. cut before its directory, which may sit at the end of the file
                raise ValueError("no image directory: truncated or damaged TIFF")
            return np.asarray(tif.asarray())
    except ValueError as exc:  # a compression tifffile cannot decode without imagecodecs (LZW, JPEG)
        if "imagecodecs" not in str(exc):
            raise
    with Image.open(path) as im:
        im.load()
        return np.asarray(im)


def _decode(path: Path) -> np.ndarray:
    if path.suffix.lower() in {".tif", ".tiff"}:
        return _decode_tiff(path)
    with Image.open(path) as im:
        if im.format == "PNG" and im.mode in {"RGB", "RGBA"} and any(";16" in t.args for t in im.tile):
            return _decode_png16(path)
        im.load()
        if im.mode in {"I;16", "I;16B", "I;16L"}:
            return np.asarray(im, dtype=np.uint16)
        if im.mode == "I":  # 16-bit PNGs often open as 32-bit int
            return np.asarray(im).astype(np.uint16)
        if im.mode not in {"L", "RGB"}:
            im = im.convert("RGB" if im.mode in {"RGBA", "P", "CMYK", "YCbCr", "LA"} else "L")
        return np.asarray(im)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as float32 (H, W, C) in [0, 1], C = 1 or 3; alpha channels are dropped."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    try:
        arr = _decode(path)
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise ImageReadError(path, f"unreadable or corrupt image ({type(exc).__name__}: {exc})") from exc
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise ImageReadError(path, f"unexpected image shape {arr.shape}")
    if arr.shape[-1] == 2:  # gray + alpha
        arr = arr[..., :1]
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    if min(arr.shape[:2]) < 1:
        raise ImageReadError(path, "empty image")
    return _to_float(arr, path)


def read_nir(path: str | os.PathLike) -> np.ndarray:
    """Read an NIR image as (H, W, 1); a 3-channel file must have identical channels
    (within ``NIR_CHANNEL_TOLERANCE``, for JPEG round-off); the first one is kept."""
    arr = read_image(path)
    if arr.shape[-1] == 3:
        diff = max(float(np.abs(arr[..., 0] - arr[..., c]).max()) for c in (1, 2))
        if diff > NIR_CHANNEL_TOLERANCE:
            raise ImageReadError(path, f"NIR image has three different channels (they differ by up to "
                                       f"{diff * 255:.0f}/255; expected a gray image or three identical channels)")
        arr = arr[..., :1]
    return arr


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an RGB image as (H, W, 3); a gray file is an error."""
    arr = read_image(path)
    if arr.shape[-1] != 3:
        raise ImageReadError(path, f"expected a colour (RGB) image, got {arr.shape[-1]} channel(s)")
    return arr


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) from the file header, without decoding the pixels."""
    path = Path(path)
    try:
        if path.suffix.lower() in {".tif", ".tiff"}:
            with tifffile.TiffFile(path) as tif:
                shape = tif.pages[0].shape
                return int(shape[0]), int(shape[1])
        with Image.open(path) as im:
            return im.height, im.width
    except Exception as exc:  # noqa: BLE001
        raise ImageReadError(path, f"unreadable or corrupt image ({type(exc).__name__}: {exc})") from exc


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float (H, W, C) to uint8 with rounding."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path`` (atomic on one
    file system), on any error or interruption it is deleted. A reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a [0, 1] float (or already uint8) (H, W, 3|1) image as 8-bit PNG atomically (temp file + rename)."""
    arr = image if image.dtype == np.uint8 else to_uint8(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return Path(path)

"""Image reading and writing: PNG, TIFF, JPEG of any bit depth and mode, upright; clear errors; atomic writes."""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import png  # pypng: Pillow reads 16-bit colour PNGs as 8-bit and ignores sBIT
import tifffile
from PIL import Image, ImageOps

from nir_colorize.errors import ImageReadError
from nir_colorize.utils.atomic import atomic_path

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}

# Largest channel difference (on [0, 1]) of an NIR file stored as three "identical" channels:
# two 8-bit levels, so that lossy JPEG round-off passes and a colour image does not.
NIR_CHANNEL_TOLERANCE = 2.0 / 255.0


# -------------------------------------------------------------------------------------------- decoding
# Every decoder returns a ``Decoded``: the stored integer (or float, or bool) samples with the file's
# orientation already applied, and what the file says about their range; ``_to_float`` maps them to [0, 1].

LOW_BITS = 4096  # a 16-bit file whose values all stay below this probably holds 12-bit (or fewer) data


@dataclass
class Decoded:
    arr: np.ndarray  # (H, W) or (H, W, C)
    bits: int | None = None  # bits of a stored sample (PNG bit depth, TIFF BitsPerSample); None: the dtype's
    significant: tuple[int, ...] | None = None  # PNG sBIT: significant high bits per channel
    fixed: bool = False  # colours looked up in a palette: ``bit_depth`` does not apply
    invert: bool = False  # TIFF MinIsWhite
    cmyk: bool = False  # TIFF Separated (C, M, Y, K)


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF/TIFF orientation (tag 274, values 1-8) to an (H, W[, C]) array, as
    ``PIL.ImageOps.exif_transpose`` does to an image; unknown values leave it as it is."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(arr, -1)
    if orientation == 7:
        return arr[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(arr, 1)
    return arr


def _swaps_axes(orientation: int) -> bool:
    return orientation in (5, 6, 7, 8)


def _exif_orientation(data: bytes) -> int:
    try:
        exif = Image.Exif()
        exif.load(data)
        return int(exif.get(274, 1))
    except Exception:  # noqa: BLE001 - damaged EXIF: no orientation
        return 1


def _pil_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(274, 1))
    except Exception:  # noqa: BLE001 - damaged EXIF: no orientation
        return 1


# ---------------------------------------------------------------- PNG

@dataclass
class PngHeader:
    width: int
    height: int
    bit_depth: int
    colour_type: int  # 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA
    sbit: tuple[int, ...] | None
    orientation: int


def png_header(path: Path) -> PngHeader:
    """IHDR, sBIT and the eXIf orientation of a PNG, reading chunk headers only (IDAT is skipped)."""
    with open(path, "rb") as f:
        if f.read(8) != png.signature:
            raise ValueError("not a PNG file (bad signature)")
        ihdr, sbit, orientation = None, None, 1
        while True:
            head = f.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind in (b"IHDR", b"sBIT", b"eXIf"):
                data = f.read(length)
                if len(data) < length:
                    raise ValueError(f"truncated {kind.decode()} chunk")
                if kind == b"IHDR":
                    ihdr = struct.unpack(">IIBB", data[:10])
                elif kind == b"sBIT":
                    sbit = tuple(data)
                else:
                    orientation = _exif_orientation(data)
                f.seek(4, os.SEEK_CUR)  # CRC
            else:
                f.seek(length + 4, os.SEEK_CUR)
            if kind == b"IEND":
                break
    if ihdr is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, colour = ihdr
    return PngHeader(width, height, depth, colour, sbit, orientation)


def _decode_png_direct(path: Path, header: PngHeader) -> Decoded:
    """A PNG with pypng: all 16 bits, and the sBIT chunk (Pillow reads 16-bit colour as 8-bit, ignores sBIT)."""
    reader = png.Reader(filename=str(path))
    width, height, rows, info = reader.read()  # stored values: no sBIT shift
    arr = np.vstack([np.asarray(row, dtype=np.uint16 if info["bitdepth"] > 8 else np.uint8) for row in rows])
    arr = arr.reshape(height, width, info["planes"])
    bits, fixed = info["bitdepth"], False
    if header.colour_type == 3:  # palette indices to colours (8-bit entries; any tRNS alpha is dropped)
        palette = np.asarray([entry[:3] for entry in reader.palette()], dtype=np.uint8)
        arr, bits, fixed = palette[np.minimum(arr[..., 0], len(palette) - 1)], 8, True
    return Decoded(orient(arr, header.orientation), bits=bits, significant=header.sbit, fixed=fixed)


# ---------------------------------------------------------------- TIFF

def _unpack_bits(data: bytes, height: int, samples: int, bits: int, lsb_first: bool) -> np.ndarray:
    """Uncompressed TIFF samples of ``bits`` bits (e.g. 12), packed MSB first, each row padded to a byte."""
    row_bytes = (samples * bits + 7) // 8
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size < height * row_bytes:
        raise ValueError(f"image data cut short ({buf.size} of {height * row_bytes} bytes)")
    buf = buf[:height * row_bytes].reshape(height, row_bytes)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint32)
    out = np.empty((height, samples), dtype=np.uint16 if bits <= 16 else np.uint32)
    for start in range(0, height, 64):  # a few rows at a time: the bit array is 8x the packed data
        stripe = np.unpackbits(buf[start:start + 64], axis=1, bitorder="little" if lsb_first else "big")
        stripe = stripe[:, :samples * bits].reshape(stripe.shape[0], samples, bits)
        out[start:start + 64] = stripe @ weights
    return out


def _decode_tiff_packed(tif: tifffile.TiffFile, page: tifffile.TiffPage) -> np.ndarray | None:
    """Samples of 2-31 bits other than 8/16 that tifffile leaves to imagecodecs: uncompressed strips only.
    Also the common non-standard layout: BitsPerSample 10/12/14 stored in 16-bit words."""
    bits, spp = int(page.bitspersample), int(page.samplesperpixel)
    if page.compression != 1 or page.is_tiled or bits in (8, 16, 32, 64) or not 1 < bits < 32:
        return None
    if spp > 1 and page.planarconfig != 1:
        return None
    height, width = int(page.imagelength), int(page.imagewidth)
    fh = tif.filehandle
    data = bytearray()
    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
        fh.seek(offset)
        data += fh.read(count)
    if bits < 16 and len(data) >= height * width * spp * 2 > height * ((width * spp * bits + 7) // 8):
        words = np.frombuffer(bytes(data[:height * width * spp * 2]), dtype=f"{tif.byteorder}u2")
        arr = words.astype(np.uint16)
    else:
        lsb_first = page.tags.valueof(266, 1) == 2  # FillOrder
        arr = _unpack_bits(bytes(data), height, width * spp, bits, lsb_first)
    return arr.reshape(height, width, spp) if spp > 1 else arr.reshape(height, width)


def _tiff_palette(page: tifffile.TiffPage, index: np.ndarray) -> np.ndarray:
    colormap = np.asarray(page.colormap)  # (3, 2 ** bits), 16-bit entries
    if colormap.max() < 256:  # some writers store 8-bit entries
        colormap = colormap.astype(np.uint8)
    elif not (colormap & 0xFF).any():  # 8-bit entries shifted left (Pillow): 255 << 8 is white
        colormap = (colormap >> 8).astype(np.uint8)
    if index.ndim == 3:  # palette + extra samples
        index = index[..., 0]
    return colormap.T[np.minimum(index, colormap.shape[1] - 1)]


def _decode_tiff(path: Path) -> Decoded:
    with tifffile.TiffFile(path) as tif:
        if not len(tif.pages):  # e.g. cut before its directory, which may sit at the end of the file
            raise ValueError("no image directory: truncated or damaged TIFF")
        page = tif.pages[0]
        orientation = int(page.tags.valueof(274, 1))
        photometric = int(page.photometric)
        bits = int(page.bitspersample)
        arr = None
        if photometric in (0, 1, 2, 3, 5):  # MinIsWhite, MinIsBlack, RGB, Palette, Separated
            try:
                arr = np.asarray(page.asarray())
            except (ValueError, NotImplementedError) as exc:  # a codec or packing that needs imagecodecs
                if "imagecodecs" not in str(exc):
                    raise
                arr = _decode_tiff_packed(tif, page)
        if arr is not None:
            if photometric == 3:
                arr = _tiff_palette(page, arr)
                return Decoded(orient(arr, orientation), bits=8 if arr.dtype == np.uint8 else 16, fixed=True)
            cmyk = photometric == 5
            if cmyk and (arr.ndim != 3 or arr.shape[-1] < 4 or page.tags.valueof(332, 1) != 1):  # InkSet CMYK
                raise ValueError(f"separated TIFF with {arr.shape[-1] if arr.ndim == 3 else 1} inks (only CMYK)")
            return Decoded(orient(arr, orientation), bits=bits if arr.dtype.kind in "ui" else None,
                           invert=photometric == 0, cmyk=cmyk)
    # LZW/JPEG/Deflate without imagecodecs, YCbCr, CIELab...: Pillow (it applies palettes, MinIsWhite, CMYK)
    with Image.open(path) as im:
        dec = _from_pillow(im, orient_exif=False)
    dec.arr = orient(dec.arr, orientation)
    if dec.arr.dtype.kind in "ui" and dec.bits is None and bits < dec.arr.dtype.itemsize * 8:
        dec.bits = bits
    return dec


# ---------------------------------------------------------------- Pillow (JPEG, 8-bit PNG, BMP, ...)

def _from_pillow(im: Image.Image, orient_exif: bool = True) -> Decoded:
    im.load()
    if orient_exif and _pil_orientation(im) != 1:
        im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode in ("1", "L", "RGB", "F") or mode.startswith("I;16"):
        arr = np.asarray(im)
        if mode.startswith("I;16"):
            arr = arr.astype(np.uint16)  # the native byte order
        return Decoded(arr)
    if mode == "I":  # 32-bit signed
        return Decoded(np.asarray(im, dtype=np.int32))
    if mode in ("P", "PA"):
        return Decoded(np.asarray(im.convert("RGB")), fixed=True)
    if mode in ("LA", "La"):
        return Decoded(np.asarray(im)[..., 0])
    return Decoded(np.asarray(im.convert("RGB")))  # RGBA, RGBX, RGBa, CMYK, YCbCr, HSV, LAB ...


def _decode(path: Path, bit_depth: int | None) -> Decoded:
    suffix = path.suffix.lower()
    if suffix in {".tif", ".tiff"}:
        return _decode_tiff(path)
    with open(path, "rb") as f:
        is_png = f.read(8) == png.signature
    if is_png:
        header = png_header(path)
        if header.bit_depth > 8 or (header.sbit is not None and bit_depth is None):
            return _decode_png_direct(path, header)
    with Image.open(path) as im:
        return _from_pillow(im)


# -------------------------------------------------------------------------------------------- to [0, 1]

_low_bits_warned = False


def _check_bit_depth(bit_depth: int | None) -> None:
    if bit_depth is not None and (isinstance(bit_depth, bool) or not isinstance(bit_depth, int)
                                  or not 1 <= bit_depth <= 32):
        raise ValueError(f"bit_depth={bit_depth!r}: use null (what the file says) or the number of significant "
                         "bits of the samples, e.g. 10, 12 or 14 for camera data in 16-bit files")


def _to_float(dec: Decoded, path: Path, bit_depth: int | None) -> np.ndarray:
    global _low_bits_warned
    arr = dec.arr
    if arr.dtype == bool:
        out = (~arr if dec.invert else arr).astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise ImageReadError(path, "contains non-finite values (NaN or inf)")
        if out.min() < 0.0 or out.max() > 1.0:
            raise ImageReadError(path, f"float image outside [0, 1] (range {out.min():.3g}..{out.max():.3g})")
        if dec.invert:
            out = 1.0 - out
    elif np.issubdtype(arr.dtype, np.integer):
        kind = np.dtype(arr.dtype)
        width = kind.itemsize * 8 - (1 if kind.kind == "i" else 0)  # value bits of the container
        if kind.kind == "i" and arr.min() < 0:
            raise ImageReadError(path, f"negative pixel values ({kind} image with minimum {arr.min()})")
        peak = int(arr.max())
        bits = min(dec.bits or width, width)
        if bit_depth is not None and not dec.fixed:
            if bit_depth > width:
                raise ImageReadError(path, f"bit_depth={bit_depth} is more than the {width} bits of this "
                                           f"file's samples; use bit_depth=null or at most {width}")
            if peak > 2 ** bit_depth - 1:
                raise ImageReadError(path, f"values up to {peak} do not fit bit_depth={bit_depth} (at most "
                                           f"{2 ** bit_depth - 1}); the file holds more significant bits: "
                                           "set bit_depth=null (read what the file says) or larger")
            top = 2 ** bit_depth - 1
        elif dec.significant and bit_depth is None and all(0 < s <= bits for s in dec.significant):
            # PNG sBIT: a sample's top ``s`` bits are its value, scaled to the full range by the writer
            # (bit replication or a plain shift): keep those bits and map 0..2**s-1 onto [0, 1]
            arr = arr if arr.ndim == 3 else arr[..., None]
            out = np.empty(arr.shape, dtype=np.float32)
            for c in range(arr.shape[-1]):
                s = dec.significant[min(c, len(dec.significant) - 1)]
                out[..., c] = (arr[..., c] >> (bits - s)).astype(np.float32) / np.float32(2 ** s - 1)
            top = None
        else:
            top = 2 ** bits - 1
            if peak > top:
                raise ImageReadError(path, f"values up to {peak} exceed the {bits} bits per sample the file "
                                           f"declares; pass bit_depth= with the real depth (e.g. 16)")
            if (bit_depth is None and bits == 16 and not dec.fixed and not _low_bits_warned
                    and 0 < peak < LOW_BITS):
                _low_bits_warned = True
                log.warning("%s: 16-bit samples that all stay below %d (max %d): if this is 12-bit (or 10/14-bit) "
                            "camera data, pass bit_depth=12 (or 10/14) to read it at full range (warned once)",
                            path, LOW_BITS, peak)
        if top is not None:
            if dec.invert:  # MinIsWhite, exactly, in integers
                arr = top - arr.astype(np.int64)
            out = arr.astype(np.float32) / np.float32(top)
    else:
        raise ImageReadError(path, f"unsupported pixel type {arr.dtype} (use 8- or 16-bit images)")
    if dec.cmyk:  # as Pillow converts CMYK: R = (1 - C)(1 - K), ...
        out = (1.0 - out[..., :3]) * (1.0 - out[..., 3:4])
    return out


def read_image(path: str | os.PathLike, *, bit_depth: int | None = None) -> np.ndarray:
    """Read an image as float32 (H, W, C) in [0, 1], C = 1 or 3, upright (EXIF/TIFF orientation applied).

    PNG (1-16 bit, palette, sBIT), TIFF (1-32 bit integer incl. packed 10/12/14-bit, float, palette,
    MinIsWhite, CMYK, planar), JPEG, BMP and whatever else Pillow opens. Alpha channels are dropped,
    palettes and CMYK become RGB.

    ``bit_depth``: None reads the range the file declares (PNG: bit depth and sBIT; TIFF: BitsPerSample),
    so a 16-bit file maps 0..65535 onto [0, 1]. An integer (e.g. 10, 12, 14 for camera data stored in
    16-bit files) maps 0..2**bit_depth-1 onto [0, 1], whatever the file says; a value above that range,
    or a file with fewer bits, is an ``ImageReadError``. Not applied to palette, 1-bit and float images.
    """
    _check_bit_depth(bit_depth)
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    try:
        dec = _decode(path, bit_depth)
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise ImageReadError(path, f"unreadable or corrupt image ({type(exc).__name__}: {exc})") from exc
    arr = dec.arr
    if arr.ndim == 2:
        dec.arr = arr = arr[..., None]
    if arr.ndim != 3 or not 1 <= arr.shape[-1] <= (5 if dec.cmyk else 4):
        raise ImageReadError(path, f"unexpected image shape {arr.shape}")
    if min(arr.shape[:2]) < 1:
        raise ImageReadError(path, "empty image")
    if not dec.cmyk and arr.shape[-1] in (2, 4):  # drop alpha (gray + alpha, RGBA)
        dec.arr = arr[..., :arr.shape[-1] - 1]
    if dec.cmyk:
        dec.arr = arr[..., :4]
    return np.ascontiguousarray(_to_float(dec, path, bit_depth))


def read_nir(path: str | os.PathLike, *, bit_depth: int | None = None) -> np.ndarray:
    """Read an NIR image as (H, W, 1); a 3-channel file must have identical channels
    (within ``NIR_CHANNEL_TOLERANCE``, for JPEG round-off); the first one is kept.
    ``bit_depth``: see ``read_image``."""
    arr = read_image(path, bit_depth=bit_depth)
    if arr.shape[-1] == 3:
        diff = max(float(np.abs(arr[..., 0] - arr[..., c]).max()) for c in (1, 2))
        if diff > NIR_CHANNEL_TOLERANCE:
            raise ImageReadError(path, f"NIR image has three different channels (they differ by up to "
                                       f"{diff * 255:.0f}/255; expected a gray image or three identical channels)")
        arr = arr[..., :1]
    return arr


def read_rgb(path: str | os.PathLike, *, bit_depth: int | None = None) -> np.ndarray:
    """Read an RGB image as (H, W, 3); a gray file is an error. ``bit_depth``: see ``read_image``."""
    arr = read_image(path, bit_depth=bit_depth)
    if arr.shape[-1] != 3:
        raise ImageReadError(path, f"expected a colour (RGB) image, got {arr.shape[-1]} channel(s)")
    return arr


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) as ``read_image`` returns it (orientation applied), from the file header, without decoding
    the pixels."""
    path = Path(path)
    try:
        if path.suffix.lower() in {".tif", ".tiff"}:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                h, w = int(page.imagelength), int(page.imagewidth)
                orientation = int(page.tags.valueof(274, 1))
        else:
            with open(path, "rb") as f:
                is_png = f.read(8) == png.signature
            if is_png:
                header = png_header(path)
                h, w, orientation = header.height, header.width, header.orientation
            else:
                with Image.open(path) as im:
                    h, w = im.height, im.width
                    orientation = _pil_orientation(im)
    except Exception as exc:  # noqa: BLE001
        raise ImageReadError(path, f"unreadable or corrupt image ({type(exc).__name__}: {exc})") from exc
    return (w, h) if _swaps_axes(orientation) else (h, w)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float (H, W, C) to uint8 with rounding."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write a [0, 1] float (or already uint8) (H, W, 3|1) image as 8-bit PNG atomically (temp file + rename)."""
    arr = image if image.dtype == np.uint8 else to_uint8(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return Path(path)

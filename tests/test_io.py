"""Image reading (nir_colorize.data.io): sBIT, palettes, bit_depth, orientation, every Pillow/tifffile mode.

Every file is written here, by pypng, Pillow or tifffile (or by hand, for layouts none of them writes),
and the expected values come from the data written or from Pillow's own decoding of the same file.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import Image, ImageOps

from nir_colorize.data import io
from nir_colorize.data.io import ImageReadError, image_size, read_image, read_nir, read_rgb

H, W = 37, 50  # odd sizes, not square: orientation mistakes change the shape


def ramp(levels: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """(H, W, channels) integers in [0, levels - 1], both ends included, no two channels alike."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, levels, size=(H, W, channels))
    arr[0, 0], arr[0, 1] = 0, levels - 1
    return arr


def scaled(arr: np.ndarray, top: float) -> np.ndarray:
    """``arr / top`` in float32, as the reader computes it."""
    return np.asarray(arr).astype(np.float32) / np.float32(top)


def write_png_bits(path: Path, arr: np.ndarray, bits: int) -> None:
    """pypng with a bit depth PNG does not have (10, 12): a 16-bit file, values scaled up, an sBIT chunk."""
    writer = png.Writer(arr.shape[1], arr.shape[0], greyscale=arr.ndim == 2, bitdepth=bits)
    with open(path, "wb") as f:
        writer.write(f, arr.reshape(arr.shape[0], -1).tolist())


def png_chunks(path: Path) -> list[tuple[bytes, bytes]]:
    return list(png.Reader(filename=str(path)).chunks())


def write_png_chunks(path: Path, chunks: list[tuple[bytes, bytes]]) -> None:
    with open(path, "wb") as f:
        png.write_chunks(f, chunks)


def add_chunk(path: Path, kind: bytes, data: bytes) -> None:
    """Insert a chunk right after IHDR (sBIT and eXIf must precede IDAT)."""
    chunks = png_chunks(path)
    write_png_chunks(path, [chunks[0], (kind, data), *chunks[1:]])


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[274] = orientation
    return exif.tobytes()


def write_tiff_packed(path: Path, arr: np.ndarray, bits: int, words: bool = False) -> None:
    """A minimal uncompressed gray TIFF with BitsPerSample ``bits``: packed MSB first with rows padded to a
    byte (the TIFF layout), or (``words``) each sample in a 16-bit word, as some cameras write it.
    Neither tifffile (without imagecodecs) nor Pillow writes these."""
    height, width = arr.shape
    if words:
        data = arr.astype("<u2").tobytes()
    else:
        weights = (1 << np.arange(bits - 1, -1, -1))
        bitrows = ((arr[..., None].astype(np.int64) & weights) > 0).astype(np.uint8).reshape(height, -1)
        data = np.packbits(bitrows, axis=1).tobytes()
    tags = [(256, width), (257, height), (258, bits), (259, 1), (262, 1), (273, 0), (277, 1),
            (278, height), (279, len(data))]
    start = 8 + 2 + 12 * len(tags) + 4
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(tags)))
    for tag, value in tags:
        out += struct.pack("<HHII", tag, 4, 1, start if tag == 273 else value)  # LONG values
    out += struct.pack("<I", 0) + data
    path.write_bytes(bytes(out))


# ---------------------------------------------------------------- PNG sBIT

def test_16bit_png_with_sbit_reads_full_range(tmp_path: Path) -> None:
    """pypng writes 12-bit data as a 16-bit PNG scaled to full range with sBIT 12: white must read 1.0."""
    rgb12 = ramp(4096)
    write_png_bits(tmp_path / "rgb12.png", rgb12, 12)
    assert png.Reader(filename=str(tmp_path / "rgb12.png")).read()[3]["bitdepth"] == 16
    got = read_rgb(tmp_path / "rgb12.png")
    np.testing.assert_array_equal(got, scaled(rgb12, 4095))
    assert got.max() == 1.0
    gray10 = ramp(1024, 1)[..., 0]
    write_png_bits(tmp_path / "nir10.png", gray10, 10)
    np.testing.assert_array_equal(read_nir(tmp_path / "nir10.png")[..., 0], scaled(gray10, 1023))


def test_sbit_per_channel_and_plain_left_shift(tmp_path: Path) -> None:
    """sBIT (5, 6, 5) on an 8-bit PNG; a 16-bit PNG whose 12-bit values were shifted left without bit
    replication (white stored as 65520): both read as their significant bits over their own range."""
    rgb565 = np.stack([ramp(32, 1, 1)[..., 0], ramp(64, 1, 2)[..., 0], ramp(32, 1, 3)[..., 0]], -1)
    stored = (rgb565 << np.array([3, 2, 3])).astype(np.uint8)
    png.from_array(stored.reshape(H, -1), "RGB").save(tmp_path / "565.png")
    add_chunk(tmp_path / "565.png", b"sBIT", bytes([5, 6, 5]))
    np.testing.assert_allclose(read_rgb(tmp_path / "565.png"), rgb565 / np.array([31, 63, 31]), atol=1e-7)
    rgb12 = ramp(4096)
    png.from_array((rgb12 << 4).astype(np.uint16).reshape(H, -1), "RGB;16").save(tmp_path / "shift.png")
    add_chunk(tmp_path / "shift.png", b"sBIT", bytes([12, 12, 12]))
    got = read_rgb(tmp_path / "shift.png")
    np.testing.assert_allclose(got, rgb12 / 4095, atol=1e-7)
    assert got.max() == 1.0
    gray3 = ramp(8, 1)[..., 0]  # a 4-bit gray PNG with 3 significant bits
    png.from_array((gray3 << 1).astype(np.uint8).tolist(), "L;4").save(tmp_path / "g4.png")
    add_chunk(tmp_path / "g4.png", b"sBIT", bytes([3]))
    np.testing.assert_allclose(read_nir(tmp_path / "g4.png")[..., 0], gray3 / 7, atol=1e-7)
    pal = Image.fromarray(ramp(256).astype(np.uint8)).quantize(8)  # a palette PNG with sBIT (8, 8, 8)
    pal.save(tmp_path / "pal.png")
    add_chunk(tmp_path / "pal.png", b"sBIT", bytes([8, 8, 8]))
    np.testing.assert_array_equal(read_rgb(tmp_path / "pal.png"), scaled(np.asarray(pal.convert("RGB")), 255))


# ---------------------------------------------------------------- palettes

def test_palette_png_and_tiff_read_as_colours(tmp_path: Path) -> None:
    rgb = ramp(256).astype(np.uint8)
    pal = Image.fromarray(rgb).quantize(16)  # "P" mode, 16 colours
    expected = np.asarray(pal.convert("RGB")).astype(np.float32) / 255
    assert len(np.unique(expected.reshape(-1, 3), axis=0)) > 4
    pal.save(tmp_path / "pal.png")
    pal.save(tmp_path / "pal_pil.tif")
    with Image.open(tmp_path / "pal.png") as im:
        assert im.mode == "P"
    for name in ("pal.png", "pal_pil.tif"):
        np.testing.assert_array_equal(read_rgb(tmp_path / name), expected, err_msg=name)
    index = np.asarray(pal)
    colormap = np.zeros((3, 256), dtype=np.uint16)
    colormap[:, :16] = (np.asarray(pal.getpalette()[:48]).reshape(16, 3).T.astype(np.uint16) * 257)
    tifffile.imwrite(tmp_path / "pal.tif", index, photometric="palette", colormap=colormap)
    np.testing.assert_allclose(read_rgb(tmp_path / "pal.tif"), expected, atol=1e-6)
    # a gray palette is a valid NIR image (three identical channels)
    gray = Image.fromarray(rgb[..., 0]).convert("P")
    gray.save(tmp_path / "gray_pal.png")
    np.testing.assert_array_equal(read_nir(tmp_path / "gray_pal.png")[..., 0], scaled(rgb[..., 0], 255))


# ---------------------------------------------------------------- bit depth

def test_bit_depth_option_for_camera_data_in_16bit_files(tmp_path: Path) -> None:
    nir12 = ramp(4096, 1)[..., 0].astype(np.uint16)
    rgb12 = ramp(4096).astype(np.uint16)
    tifffile.imwrite(tmp_path / "nir.tif", nir12)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb12, photometric="rgb")
    png.from_array(nir12, "L;16").save(tmp_path / "nir.png")  # no sBIT: the file says 16 bits
    for name in ("nir.tif", "nir.png"):
        np.testing.assert_array_equal(read_nir(tmp_path / name)[..., 0], scaled(nir12, 65535))  # as before
        np.testing.assert_array_equal(read_nir(tmp_path / name, bit_depth=12)[..., 0], scaled(nir12, 4095))
    np.testing.assert_array_equal(read_rgb(tmp_path / "rgb.tif", bit_depth=12), scaled(rgb12, 4095))
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.tif", bit_depth=14), scaled(rgb12, 16383))
    with pytest.raises(ImageReadError, match=r"nir\.tif: values up to 4095 do not fit bit_depth=10"):
        read_nir(tmp_path / "nir.tif", bit_depth=10)
    Image.fromarray((nir12 >> 4).astype(np.uint8)).save(tmp_path / "nir8.png")
    np.testing.assert_array_equal(read_nir(tmp_path / "nir8.png", bit_depth=8)[..., 0],
                                  scaled(nir12 >> 4, 255))
    with pytest.raises(ImageReadError, match=r"nir8\.png: bit_depth=12 is more than the 8 bits"):
        read_nir(tmp_path / "nir8.png", bit_depth=12)
    for bad in (0, 40, 12.0, "12", True):
        with pytest.raises(ValueError, match="bit_depth="):
            read_nir(tmp_path / "nir.tif", bit_depth=bad)


def test_bit_depth_none_warns_once_about_low_bits(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(io, "_low_bits_warned", False)
    tifffile.imwrite(tmp_path / "a.tif", ramp(4096, 1)[..., 0].astype(np.uint16))
    with caplog.at_level("WARNING", logger="nir_colorize.data.io"):
        read_nir(tmp_path / "a.tif")
        read_nir(tmp_path / "a.tif")
    warnings = [r for r in caplog.records if "bit_depth=12" in r.getMessage()]
    assert len(warnings) == 1 and "a.tif" in warnings[0].getMessage()


@pytest.mark.parametrize("words", [False, True], ids=["packed", "in_16bit_words"])
def test_tiff_declaring_12_bits(tmp_path: Path, words: bool) -> None:
    nir12 = ramp(4096, 1)[..., 0]
    write_tiff_packed(tmp_path / "nir12.tif", nir12, 12, words=words)
    with tifffile.TiffFile(tmp_path / "nir12.tif") as tif:
        assert tif.pages[0].bitspersample == 12
    np.testing.assert_array_equal(read_nir(tmp_path / "nir12.tif")[..., 0], scaled(nir12, 4095))
    np.testing.assert_array_equal(read_nir(tmp_path / "nir12.tif", bit_depth=12)[..., 0], scaled(nir12, 4095))
    assert image_size(tmp_path / "nir12.tif") == (H, W)


# ---------------------------------------------------------------- orientation

@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_and_tiff_orientation(tmp_path: Path, orientation: int) -> None:
    rgb8 = ramp(256, seed=orientation).astype(np.uint8)
    exif = exif_bytes(orientation)
    Image.fromarray(rgb8).save(tmp_path / "a.jpg", exif=exif, quality=95)
    Image.fromarray(rgb8).save(tmp_path / "a.png", exif=exif)
    with Image.open(tmp_path / "a.png") as im:
        upright = np.asarray(ImageOps.exif_transpose(im)).astype(np.float32) / 255  # Pillow's reference
    with Image.open(tmp_path / "a.jpg") as im:
        upright_jpg = np.asarray(ImageOps.exif_transpose(im)).astype(np.float32) / 255
    assert upright.shape == ((W, H, 3) if orientation >= 5 else (H, W, 3))
    tifffile.imwrite(tmp_path / "a.tif", rgb8, photometric="rgb", extratags=[(274, "H", 1, orientation, True)])
    png.from_array((rgb8.astype(np.uint16) * 257).reshape(H, -1), "RGB;16").save(tmp_path / "a16.png")
    add_chunk(tmp_path / "a16.png", b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    tifffile.imwrite(tmp_path / "a16.tif", rgb8.astype(np.uint16) * 257, photometric="rgb",
                     extratags=[(274, "H", 1, orientation, True)])
    expected = {"a.png": upright, "a.jpg": upright_jpg, "a.tif": upright, "a16.png": upright, "a16.tif": upright}
    for name, want in expected.items():
        got = read_rgb(tmp_path / name)
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=name)
        assert image_size(tmp_path / name) == got.shape[:2], name


# ---------------------------------------------------------------- modes

def test_every_pillow_and_tifffile_mode(tmp_path: Path) -> None:
    rgb8 = ramp(256).astype(np.uint8)
    gray8 = rgb8[..., 0]
    # gray + alpha and RGBA: the alpha is dropped
    Image.fromarray(np.stack([gray8, rgb8[..., 1]], -1), "LA").save(tmp_path / "la.png")
    Image.fromarray(np.dstack([rgb8, gray8]), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.dstack([rgb8, gray8]), "RGBA").save(tmp_path / "rgba.tif")
    png.from_array(np.stack([gray8, gray8], -1).astype(np.uint16).reshape(H, -1) * 257, "LA;16").save(
        tmp_path / "la16.png")
    assert read_image(tmp_path / "la.png").shape == (H, W, 1)
    np.testing.assert_array_equal(read_nir(tmp_path / "la.png")[..., 0], scaled(gray8, 255))
    np.testing.assert_array_equal(read_nir(tmp_path / "la16.png")[..., 0], scaled(gray8, 255))
    for name in ("rgba.png", "rgba.tif"):
        np.testing.assert_array_equal(read_rgb(tmp_path / name), scaled(rgb8, 255), err_msg=name)
    # CMYK (Pillow and tifffile "separated"): as Pillow converts it to RGB
    cmyk = np.dstack([rgb8, 255 - gray8]).astype(np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk_pil.tif")
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    tifffile.imwrite(tmp_path / "cmyk.tif", cmyk, photometric="separated")
    ref = scaled(np.asarray(Image.fromarray(cmyk, "CMYK").convert("RGB")), 255)
    for name in ("cmyk_pil.tif", "cmyk.tif"):
        np.testing.assert_allclose(read_rgb(tmp_path / name), ref, atol=1.01 / 255, err_msg=name)
    with Image.open(tmp_path / "cmyk.jpg") as im:
        np.testing.assert_allclose(read_rgb(tmp_path / "cmyk.jpg"), scaled(np.asarray(im.convert("RGB")), 255), atol=1e-6)
    # I;16 variants: little and big endian TIFF, 16-bit gray PNG written by Pillow
    gray16 = ramp(65536, 1)[..., 0].astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "i16.png")
    tifffile.imwrite(tmp_path / "i16le.tif", gray16, byteorder="<")
    tifffile.imwrite(tmp_path / "i16be.tif", gray16, byteorder=">")
    Image.fromarray(gray16).save(tmp_path / "i16_pil.tif")
    for name in ("i16.png", "i16le.tif", "i16be.tif", "i16_pil.tif"):
        np.testing.assert_array_equal(read_nir(tmp_path / name)[..., 0], scaled(gray16, 65535), err_msg=name)
    # F (32-bit float) and 1 (bilevel)
    flt = scaled(gray8, 255)
    Image.fromarray(flt, "F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(read_nir(tmp_path / "f.tif")[..., 0], flt)
    bits = gray8 > 127
    Image.fromarray(bits).save(tmp_path / "one.png")
    Image.fromarray(bits).save(tmp_path / "one.tif")
    tifffile.imwrite(tmp_path / "one_white.tif", ~bits, photometric="miniswhite")  # 0 is white
    for name in ("one.png", "one.tif", "one_white.tif"):
        np.testing.assert_array_equal(read_nir(tmp_path / name)[..., 0], bits.astype(np.float32), err_msg=name)
    # MinIsWhite 8-bit, planar RGB, a multi-page TIFF (its first page), a palette PNG with transparency
    tifffile.imwrite(tmp_path / "white.tif", 255 - gray8, photometric="miniswhite")
    tifffile.imwrite(tmp_path / "planar.tif", rgb8, photometric="rgb", planarconfig="separate")
    tifffile.imwrite(tmp_path / "pages.tif", np.stack([gray8, 255 - gray8]))
    np.testing.assert_array_equal(read_nir(tmp_path / "white.tif")[..., 0], scaled(gray8, 255))
    np.testing.assert_array_equal(read_rgb(tmp_path / "planar.tif"), scaled(rgb8, 255))
    np.testing.assert_array_equal(read_nir(tmp_path / "pages.tif")[..., 0], scaled(gray8, 255))
    pal = Image.fromarray(rgb8).quantize(8)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal_t.png", transparency=0)
    np.testing.assert_array_equal(read_rgb(tmp_path / "pal_t.png"), scaled(np.asarray(pal.convert("RGB")), 255))


def test_damaged_png_chunks_are_an_image_read_error(tmp_path: Path) -> None:
    rgb12 = ramp(4096)
    write_png_bits(tmp_path / "a.png", rgb12, 12)
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    (tmp_path / "noihdr.png").write_bytes(png.signature + struct.pack(">I4s", 0, b"IEND")
                                          + struct.pack(">I", zlib.crc32(b"IEND")))
    for name in ("cut.png", "noihdr.png"):
        with pytest.raises(ImageReadError, match=f"{name}: unreadable or corrupt image"):
            read_image(tmp_path / name)

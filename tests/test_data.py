"""Data: nirscene1 preparation, user folders, robust reading and the bad-input errors, on the sample."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
import torch
from PIL import Image
from skimage.transform import resize

from nir_colorize import CONFIG_DIR, PROJECT_ROOT
from nir_colorize.data import (
    VCIP2020,
    DatasetError,
    FolderPairs,
    ImageReadError,
    NIRDataModule,
    NIRScene1,
    prepare_nirscene1,
    read_nir,
    read_rgb,
)
from nir_colorize.data import nirscene1 as nirscene1_module
from nir_colorize.data.nirscene1 import SPLIT_FILE, Protocol, load_current, square_boxes
from nir_colorize.data.prepare import main as prepare_main
from nir_colorize.data.splits import split_by_ratio, split_groups

os.environ["HF_HUB_OFFLINE"] = "1"
SAMPLE = PROJECT_ROOT / "data" / "sample"
SCENE = SAMPLE / "nirscene1"  # country/0000 (1024x679) and urban/0000 (1024x680), as published
SMALL = Protocol(test_crops=1, val_crops=0)  # 2 sources: one for test, one for train


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (but the lock) by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def no_output_left(out: Path) -> bool:
    """No crop, split file or temporary folder under ``out``."""
    return not (out / "crops").exists() and not (out / SPLIT_FILE).exists() and not list(out.glob(".staging-*"))


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """A copy of the sample's published-layout pairs."""
    return Path(shutil.copytree(SCENE, tmp_path / "nirscene1"))


def sample_pairs(n: int) -> list[tuple[Path, Path, str]]:
    """The first ``n`` sample training pairs: (NIR, RGB, name)."""
    nirs = sorted((SAMPLE / "NIR").glob("*_nir.png"))[:n]
    return [(p, SAMPLE / "RGB-Registered" / p.name.replace("_nir.png", "_rgb_reg.png"),
             p.name.removesuffix("_nir.png")) for p in nirs]


def parallel_folder(root: Path, n: int) -> Path:
    """``root/nir/<name>.png`` + ``root/rgb/<name>.png`` from the sample."""
    for nir, rgb, name in sample_pairs(n):
        for sub, src in (("nir", nir), ("rgb", rgb)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / sub / f"{name}.png")
    return root


# ---------------------------------------------------------------- nirscene1 protocol

def test_square_boxes_rule() -> None:
    assert square_boxes(1024, 680, 2) == [(0, 0, 680), (344, 0, 680)]
    assert square_boxes(1024, 680, 1) == [(172, 0, 680)]
    assert square_boxes(680, 1024, 3) == [(0, 0, 680), (0, 172, 680), (0, 344, 680)]


def test_prepare_gives_480_crops_split_by_source_and_identical_bytes(scene: Path, tmp_path: Path, capsys) -> None:
    out1 = tmp_path / "out1"
    first = prepare_nirscene1(scene, out1, SMALL)
    assert first.wrote
    record = json.loads((out1 / SPLIT_FILE).read_text())
    assert record["protocol"] == {"size": 480, "squares": 2, "resample": "bicubic", "test_crops": 1,
                                  "val_crops": 0, "seed": 0}
    crops = record["crops"]
    assert sorted(crops) == ["country_0000_0", "country_0000_1", "urban_0000_0", "urban_0000_1"]
    # Split by source image: both crops of a source share its split; one source is test, one train.
    by_source = {sid: {crops[c]["split"] for c in src["crops"]} for sid, src in record["sources"].items()}
    assert sorted(map(tuple, by_source.values())) == [("test",), ("train",)]
    assert record["counts"] == {"sources": 2, "crops": 4, "train": 2, "val": 0, "test": 2}
    for name, crop in crops.items():
        sid = crop["source"]
        nir_src = tifffile.imread(scene / f"{sid}_nir.tiff").astype(np.float64) / 255
        h, w = nir_src.shape
        left = 0 if name.endswith("_0") else w - h  # left and right squares of side H
        assert crop["box"] == [left, 0, h]
        with Image.open(out1 / crop["nir"]) as im_n, Image.open(out1 / crop["rgb"]) as im_c:
            assert (im_n.size, im_n.mode, im_c.size, im_c.mode) == ((480, 480), "L", (480, 480), "RGB")
            nir_crop = np.asarray(im_n, dtype=np.float64) / 255
        # Independent reference: scikit-image's anti-aliased resize of the same square.
        ref = resize(nir_src[:, left : left + h], (480, 480), order=3, anti_aliasing=True)
        other = resize(nir_src[:, (w - h) - left : (w - h) - left + h], (480, 480), order=3, anti_aliasing=True)
        assert np.abs(nir_crop - ref).mean() < 0.01 < np.abs(nir_crop - other).mean()
        assert hashlib.sha256((out1 / crop["rgb"]).read_bytes()).hexdigest() == crop["rgb_sha256"]

    stamps = {p: p.stat().st_mtime_ns for p in out1.rglob("*")}
    again = prepare_nirscene1(scene, out1, SMALL)
    assert not again.wrote and {p: p.stat().st_mtime_ns for p in out1.rglob("*")} == stamps

    assert prepare_main(["nirscene1", "--src", str(scene), "--out", str(tmp_path / "out2"),
                         "--test-crops", "1", "--val-crops", "0"]) == 0
    assert "wrote 4 crop pairs" in capsys.readouterr().out
    assert files_of(tmp_path / "out2") == files_of(out1)


def test_split_groups_keeps_sources_whole_and_is_seeded() -> None:
    sizes = {f"img{i:02d}": 1 + i % 2 for i in range(30)}
    split = split_groups(sizes, test_count=7, val_count=5, seed=3)
    held = {s: sum(sizes[g] for g, v in split.items() if v == s) for s in ("train", "val", "test")}
    assert 7 <= held["test"] <= 8 and 5 <= held["val"] <= 6 and sum(held.values()) == sum(sizes.values())
    assert split == split_groups(dict(reversed(sizes.items())), 7, 5, seed=3)
    assert split != split_groups(sizes, 7, 5, seed=4)
    with pytest.raises(DatasetError, match="nothing is left for training"):
        split_groups({"a": 2, "b": 2}, test_count=2, val_count=2, seed=0)


def test_nirscene1_source_prepares_on_first_use_and_reuses(scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    source = NIRScene1(scene, out, test_crops=1, val_crops=0)
    train, test = source.pairs("train"), source.pairs("test")
    assert len(train) == len(test) == 2 and {p.name[:-2] for p in train}.isdisjoint({p.name[:-2] for p in test})
    assert all(read_nir(p.nir).shape == (480, 480, 1) and read_rgb(p.rgb).shape == (480, 480, 3) for p in train)
    # Another crop rule prepares again and leaves no crop of the old one.
    centre = NIRScene1(scene, out, test_crops=1, val_crops=0, squares=1)
    assert len(centre.pairs("train")) == 1 and len(list((out / "crops").glob("*.png"))) == 4
    # Without the sources, crops prepared with the same parameters are used; others cannot be made.
    shutil.rmtree(scene)
    assert NIRScene1(scene, out, test_crops=1, val_crops=0, squares=1).pairs("train") == centre.pairs("train")
    with pytest.raises(DatasetError) as err:
        NIRScene1(scene, out, test_crops=1, val_crops=0).pairs("train")
    assert str(scene) in str(err.value) and "country/0000_nir.tiff" in str(err.value)


def test_nirscene1_download_verifies_sha256(scene: Path, tmp_path: Path) -> None:
    archive = tmp_path / "nirscene1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(scene.rglob("*.tiff")):
            zf.write(path, f"nirscene1/{path.relative_to(scene)}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = tmp_path / "prepared"
    bad = NIRScene1(tmp_path / "absent", out, test_crops=1, val_crops=0, url=archive.as_uri(), sha256="0" * 64)
    with pytest.raises(DatasetError, match="sha256"):
        bad.pairs("train")
    assert not (out / "download" / "nirscene1.zip").exists() and not list((out / "download").iterdir())
    good = NIRScene1(tmp_path / "absent", out, test_crops=1, val_crops=0, url=archive.as_uri(), sha256=digest)
    assert len(good.pairs("test")) == 2 and (out / "source" / "nirscene1" / "urban" / "0000_rgb.tiff").is_file()


def test_prepare_bad_sources_one_error_and_no_output(scene: Path, tmp_path: Path) -> None:
    nir = scene / "country" / "0000_nir.tiff"
    nir.write_bytes(nir.read_bytes()[: nir.stat().st_size // 2])  # truncated: the header still reads
    shutil.copy(scene / "urban" / "0000_nir.tiff", scene / "urban" / "0001_nir.tiff")  # no RGB partner
    (scene / "field").mkdir()
    shutil.copy(scene / "urban" / "0000_nir.tiff", scene / "field" / "0002_nir.tiff")
    rgb = tifffile.imread(scene / "urban" / "0000_rgb.tiff")
    tifffile.imwrite(scene / "field" / "0002_rgb.tiff", rgb[:, :1000])  # another size
    out = tmp_path / "out"
    with pytest.raises(DatasetError) as err:
        prepare_nirscene1(scene, out, SMALL)
    msg = str(err.value)
    assert "3 problem(s)" in msg  # the good urban/0000 pair is no problem
    assert f"{nir}: unreadable or corrupt image" in msg and "truncated" in msg
    assert f"{scene / 'urban' / '0001_nir.tiff'}: NIR image has no RGB partner" in msg
    assert f"{scene / 'field' / '0002_nir.tiff'}: size 1024x680 differs from its RGB partner" in msg
    assert no_output_left(out)
    shutil.rmtree(scene / "field")
    (scene / "urban" / "0001_nir.tiff").unlink()
    shutil.copy(SCENE / "country" / "0000_nir.tiff", nir)
    with pytest.raises(DatasetError, match=r"0000_nir.tiff: 1024x679 is smaller than the crop size 700x700"):
        prepare_nirscene1(scene, out, Protocol(size=700, test_crops=1, val_crops=0))
    assert no_output_left(out)


def test_prepare_interrupted_midway_leaves_no_output(scene: Path, tmp_path: Path, monkeypatch) -> None:
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    centre = Protocol(squares=1, test_crops=1, val_crops=0)
    prepare_nirscene1(scene, out, centre)
    before = files_of(out)
    real, calls = nirscene1_module.encode_png, []

    def interrupted(array: np.ndarray) -> bytes:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(array)

    monkeypatch.setattr(nirscene1_module, "encode_png", interrupted)
    for folder in (out, fresh):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            prepare_nirscene1(scene, folder, SMALL, workers=1)
    assert no_output_left(fresh)
    assert files_of(out) == before and load_current(out, centre, None) is not None  # the old one intact
    assert load_current(out, SMALL, None) is None


# ---------------------------------------------------------------- user folders

def test_folder_layouts_and_splits(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for nir, rgb, name in sample_pairs(6):
        category, number = name.split("_")
        (tree / category).mkdir(parents=True, exist_ok=True)
        shutil.copy(nir, tree / category / f"{number}_nir.png")
        shutil.copy(rgb, tree / category / f"{number}_rgb.tiff")  # extensions may differ
    expected = {name.replace("_", "/") for _, _, name in sample_pairs(6)}
    assert set(FolderPairs(tree).all_pairs) == expected
    par = parallel_folder(tmp_path / "par", 6)
    source = FolderPairs(par, nir="nir/*", rgb="rgb/*", val_ratio=0.2, test_ratio=0.2, seed=5)
    assert {p.name for p in source.all_pairs.values()} == {name for _, _, name in sample_pairs(6)}
    splits = {s: [p.name for p in source.pairs(s)] for s in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [4, 1, 1]
    assert sorted(sum(splits.values(), [])) == sorted(n for _, _, n in sample_pairs(6))
    assert split_by_ratio(list(source.all_pairs), 0.2, 0.2, seed=5) == source.assignment
    names = sorted(source.all_pairs)
    (par / "train.txt").write_text("# training\n" + "\n".join(names[:3]) + "\n")
    (par / "test.txt").write_text(names[5] + "\n")
    listed = FolderPairs(par, nir="nir/*", rgb="rgb/*", split_files={"train": "train.txt", "test": "test.txt"})
    assert [p.name for p in listed.pairs("train")] == names[:3] and [p.name for p in listed.pairs("test")] == [names[5]]
    (par / "test.txt").write_text("no_such_pair\n")
    with pytest.raises(DatasetError, match="no_such_pair"):
        FolderPairs(par, nir="nir/*", rgb="rgb/*", split_files={"test": "test.txt"}).pairs("test")


def test_combined_sources_repeat_only_their_train_pairs(tmp_path: Path) -> None:
    """``data.source.repeat``: a source's train pairs listed k times an epoch (copies named ``#2``...), its val and
    test pairs once; the datamodule's checks see no leak between the splits."""
    from nir_colorize.data import CombinedPairs

    a = FolderPairs(parallel_folder(tmp_path / "a", 6), nir="nir/*", rgb="rgb/*", val_ratio=0.2, test_ratio=0.2)
    for nir, rgb, name in sample_pairs(12)[6:]:  # other images than a's
        for sub, src in (("nir", nir), ("rgb", rgb)):
            (tmp_path / "b" / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, tmp_path / "b" / sub / f"{name}.png")
    b = FolderPairs(tmp_path / "b", nir="nir/*", rgb="rgb/*", val_ratio=0.2, test_ratio=0.2)
    once, thrice = CombinedPairs({"a": a, "b": b}), CombinedPairs({"a": a, "b": b}, repeat={"b": 3})
    train = [p.name for p in thrice.pairs("train")]
    assert len(train) == len(once.pairs("train")) + 2 * len(b.pairs("train")) == 16
    b_train = [p.name for p in b.pairs("train")]
    assert train[4:] == [f"b_{n}" for n in b_train] + [f"b_{n}#{k}" for k in (2, 3) for n in b_train]
    for split in ("val", "b_test"):
        assert [p.name for p in thrice.pairs(split)] == [p.name for p in once.pairs(split)]
    sets = NIRDataModule(thrice, crop_size=64, leakage="error").check()  # copies are not leaks
    assert len(sets["train"]) == 16 and len(sets["val"]) == 2
    for bad, match in (({"c": 2}, "no such source"), ({"b": 0}, "whole number"), ({"b": 1.5}, "whole number")):
        with pytest.raises(DatasetError, match=match):
            CombinedPairs({"a": a, "b": b}, repeat=bad)


def test_folder_trains_with_fast_dev_run(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from nir_colorize.train import run

    root = parallel_folder(tmp_path / "pairs", 10)
    out, cache = tmp_path / "run", tmp_path / "checked.json"
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=folder", f"data.source.root={root}", "data.source.nir=nir/*", "data.source.rgb=rgb/*",
            "debug=fast_dev_run", f"paths.output_dir={out}", f"data.check_cache={cache}",
            "data.crop_size=128", "data.batch_size=2"])
    metrics = run(cfg)
    assert math.isfinite(metrics["test/test/psnr"]) and (out / "test" / "metrics.json").is_file()
    checked = json.loads(cache.read_text())["files"]
    assert len(checked) == 2 * 10  # every file of the train, val and test splits, each checked once
    assert all(str(root.resolve()) in key for key in checked)


# ---------------------------------------------------------------- bad input, one named error

def _bad_folder(root: Path, case: str) -> tuple[Path, str]:
    """A folder of 3 good pairs (``<name>_nir.png`` / ``_rgb.png``) plus one bad case: (bad file, reason)."""
    root.mkdir(parents=True, exist_ok=True)
    for nir, rgb, name in sample_pairs(3):
        shutil.copy(nir, root / f"{name}_nir.png")
        shutil.copy(rgb, root / f"{name}_rgb.png")
    nir, rgb = root / "bad_nir.png", root / "bad_rgb.png"
    good_nir, good_rgb = (np.asarray(Image.open(p)) for p in sample_pairs(1)[0][:2])
    if case == "unreadable":
        nir.write_bytes(b"not an image at all")
        shutil.copy(sample_pairs(1)[0][1], rgb)
        return nir, "unreadable or corrupt image"
    if case == "truncated":
        data = sample_pairs(1)[0][0].read_bytes()
        nir.write_bytes(data[: len(data) * 3 // 4])
        shutil.copy(sample_pairs(1)[0][1], rgb)
        return nir, "truncated"
    if case == "no_partner":
        shutil.copy(sample_pairs(1)[0][0], nir)
        return nir, "NIR image has no RGB partner"
    if case == "no_nir_partner":
        shutil.copy(sample_pairs(1)[0][1], rgb)
        return rgb, "RGB image has no NIR partner"
    if case == "sizes":
        Image.fromarray(good_nir).save(nir)
        Image.fromarray(good_rgb[:200]).save(rgb)
        return nir, "size 256x256 differs from its RGB partner"
    if case == "small":
        Image.fromarray(good_nir[:100, :120]).save(nir)
        Image.fromarray(good_rgb[:100, :120]).save(rgb)
        return nir, "120x100 is smaller than the training crop 128"
    if case == "colour_nir":
        Image.fromarray(good_rgb).save(nir)
        Image.fromarray(good_rgb).save(rgb)
        return nir, "NIR image has three different channels"
    raise AssertionError(case)


CASES = ["unreadable", "truncated", "no_partner", "no_nir_partner", "sizes", "small", "colour_nir"]


def _folder_module(root: Path, cache: Path | None = None) -> NIRDataModule:
    complete = sorted(p.name.removesuffix("_nir.png") for p in root.glob("*_nir.png")
                      if (root / p.name.replace("_nir.png", "_rgb.png")).exists())
    val = sample_pairs(1)[0][2]  # a good pair
    (root / "train.txt").write_text("\n".join(n for n in complete if n != val))
    (root / "val.txt").write_text(val)
    return NIRDataModule(FolderPairs(root, split_files={"train": "train.txt", "val": "val.txt"}),
                         crop_size=128, check_cache=str(cache) if cache else None)


@pytest.mark.parametrize("case", CASES)
def test_each_bad_input_gives_its_named_error(tmp_path: Path, case: str) -> None:
    bad, reason = _bad_folder(tmp_path / "pairs", case)
    cache = tmp_path / "checked.json"
    with pytest.raises(DatasetError) as err:
        _folder_module(tmp_path / "pairs", cache).setup("fit")
    assert f"{bad}: {reason}" in str(err.value) or (str(bad) in str(err.value) and reason in str(err.value))
    assert "1 problem(s)" in str(err.value)
    recorded = json.loads(cache.read_text())["files"] if cache.exists() else {}
    if case in ("unreadable", "truncated", "colour_nir"):
        assert str(bad.resolve()) not in recorded  # a bad file is never recorded as good
    with pytest.raises(DatasetError) as again:  # pair checks (sizes, crop) run on the recorded sizes too
        _folder_module(tmp_path / "pairs", cache).setup("fit")
    assert str(again.value) == str(err.value)


def test_all_bad_inputs_in_one_error(tmp_path: Path) -> None:
    root = tmp_path / "pairs"
    bad = {}
    for case in CASES:
        path, reason = _bad_folder(tmp_path / case, case)
        shutil.copytree(tmp_path / case, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("bad_*"))
        for p in path.parent.glob("bad_*"):
            shutil.copy(p, root / p.name.replace("bad", case))
        bad[root / path.name.replace("bad", case)] = reason
    with pytest.raises(DatasetError) as err:
        _folder_module(root).setup("fit")
    lines = str(err.value).splitlines()
    for path, reason in bad.items():
        assert any(str(path) in line and reason in line for line in lines), (path, reason)


def test_empty_folder_and_empty_split(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        NIRDataModule(FolderPairs(tmp_path / "empty")).setup("fit")
    root = parallel_folder(tmp_path / "par", 4)
    with pytest.raises(DatasetError, match="val split is empty"):
        NIRDataModule(FolderPairs(root, nir="nir/*", rgb="rgb/*", val_ratio=0), crop_size=128).setup("fit")


def test_file_damaged_after_the_check_is_named_on_load(tmp_path: Path) -> None:
    root = parallel_folder(tmp_path / "par", 4)
    cache = tmp_path / "checked.json"
    dm = NIRDataModule(FolderPairs(root, nir="nir/*", rgb="rgb/*", val_ratio=0.25, test_ratio=0.25),
                       crop_size=128, check_cache=str(cache), in_memory=False)  # streamed: read at every access
    dm.setup("fit")
    victim = dm.split("train").pairs[0].nir
    victim.write_bytes(victim.read_bytes()[:2000])
    with pytest.raises(ImageReadError, match="truncated") as err:
        dm.split("train")[0]
    assert err.value.path == victim
    with pytest.raises(DatasetError, match=f"{victim}: unreadable or corrupt image"):  # the record is not trusted
        NIRDataModule(dm.source, crop_size=128, check_cache=str(cache)).setup("fit")


# ---------------------------------------------------------------- reading formats

def test_16bit_png_tiff_and_jpeg_read_correctly(tmp_path: Path) -> None:
    nir_path, rgb_path, _ = sample_pairs(1)[0]
    rgb8, nir8 = np.asarray(Image.open(rgb_path)), np.asarray(Image.open(nir_path))
    ramp = (np.arange(256, dtype=np.uint16)[None, :] % 200)  # low bits that 8 bits cannot hold
    rgb16 = rgb8.astype(np.uint16) * 256 + ramp[..., None]
    nir16 = nir8.astype(np.uint16) * 256 + ramp
    png.from_array(rgb16.reshape(256, -1), "RGB;16").save(tmp_path / "rgb16.png")
    png.from_array(nir16, "L;16").save(tmp_path / "nir16.png")
    tifffile.imwrite(tmp_path / "rgb16.tiff", rgb16)
    tifffile.imwrite(tmp_path / "nir16.tif", nir16)
    for suffix in ("png", "tiff"):
        np.testing.assert_array_equal(read_rgb(tmp_path / f"rgb16.{suffix}"), rgb16.astype(np.float32) / 65535)
    for name in ("nir16.png", "nir16.tif"):
        np.testing.assert_array_equal(read_nir(tmp_path / name)[..., 0], nir16.astype(np.float32) / 65535)
    np.testing.assert_array_equal(read_rgb(rgb_path), rgb8.astype(np.float32) / 255)
    Image.fromarray(rgb8).save(tmp_path / "rgb.jpg", quality=95)
    Image.fromarray(nir8).save(tmp_path / "nir.jpeg", quality=95)
    assert np.abs(read_rgb(tmp_path / "rgb.jpg") - rgb8 / 255).mean() < 2 / 255
    assert np.abs(read_nir(tmp_path / "nir.jpeg")[..., 0] - nir8 / 255).mean() < 2 / 255
    cut = tmp_path / "cut16.png"
    cut.write_bytes((tmp_path / "rgb16.png").read_bytes()[:50_000])
    with pytest.raises(ImageReadError, match="cut16.png: unreadable or corrupt"):
        read_rgb(cut)


def test_nir_with_three_channels(tmp_path: Path) -> None:
    nir_path, rgb_path, _ = sample_pairs(1)[0]
    nir8 = np.asarray(Image.open(nir_path))
    Image.fromarray(np.repeat(nir8[..., None], 3, axis=-1)).save(tmp_path / "nir3.png")
    Image.fromarray(np.repeat(nir8[..., None], 3, axis=-1)).save(tmp_path / "nir3.jpg", quality=95)
    np.testing.assert_array_equal(read_nir(tmp_path / "nir3.png")[..., 0], nir8.astype(np.float32) / 255)
    assert read_nir(tmp_path / "nir3.jpg").shape == (256, 256, 1)
    with pytest.raises(ImageReadError, match=f"{rgb_path}: NIR image has three different channels"):
        read_nir(rgb_path)


def test_vcip_testing_layout_with_capital_t(tmp_path: Path) -> None:
    pairs = VCIP2020(SAMPLE).pairs("testing")
    assert len(pairs) == 8 and all(p.rgb.name.startswith("Testing_") and p.nir.name.startswith("testing_")
                                   for p in pairs)
    dm = NIRDataModule(VCIP2020(SAMPLE), crop_size=128)
    dm.setup("test")
    item = dm.split("testing")[0]
    assert item["nir"].shape == (1, 256, 256) and item["rgb"].shape == (3, 256, 256)
    np.testing.assert_array_equal(item["rgb"].permute(1, 2, 0).numpy(),
                                  np.asarray(Image.open(pairs[0].rgb), dtype=np.float32) / 255)


def test_rescaled_crops_take_windows_of_the_drawn_scale(tmp_path: Path) -> None:
    """data.rescale: a crop of side c from a window c / s wide: on a horizontal ramp the slope per pixel of the
    crop is the image's slope over s."""
    from nir_colorize.data.dataset import PairDataset
    from nir_colorize.data.pairs import Pair

    ramp = np.tile((np.arange(512) / 2).astype(np.uint8), (300, 1))  # 0.5 levels a pixel
    Image.fromarray(ramp).save(tmp_path / "r_nir.png")
    Image.fromarray(np.stack([ramp] * 3, -1)).save(tmp_path / "r_rgb.png")
    dataset = PairDataset([Pair("r", tmp_path / "r_nir.png", tmp_path / "r_rgb.png")], crop=64)
    torch.manual_seed(0)
    for scales, expected in (((1.0, 1.0), 0.5), ((0.5, 0.5), 1.0), ((0.25, 0.25), 2.0)):
        dataset.rescale = scales
        item = dataset[0]
        assert item["nir"].shape == (1, 64, 64) and item["rgb"].shape == (3, 64, 64)
        slope = item["nir"][0, :, 8:-8].diff(dim=-1).mean().item() * 255  # levels a pixel, away from the edges
        assert slope == pytest.approx(expected, rel=0.03), scales
    dataset.rescale = (0.5, 1.0)
    slopes = []
    for _ in range(40):
        slopes.append(dataset[0]["nir"][0, :, 8:-8].diff(dim=-1).mean().item() * 255)
    assert min(slopes) > 0.48 and max(slopes) < 1.02 and np.ptp(slopes) > 0.3  # scales drawn across the range


def test_rescale_reaches_the_training_split_only(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from tests.conftest import train_cfg

    datamodule = instantiate(train_cfg(tmp_path, "data.rescale=[0.5,1.0]").data)
    assert datamodule.split("train").rescale == (0.5, 1.0) and datamodule.split("val").rescale is None
    with pytest.raises(Exception, match=r"data.rescale=\[1.0, 0.5\]: give \[lo, hi\]") as info:  # Hydra wraps it
        instantiate(train_cfg(tmp_path, "data.rescale=[1.0,0.5]").data)
    assert isinstance(info.value.__cause__ or info.value, DatasetError)

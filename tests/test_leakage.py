"""Honest evaluation (design section 6): duplicates between splits, the carve-out, clean rows, bootstrap intervals."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nir_colorize.data import VCIP2020, DatasetError, FolderPairs, NIRDataModule
from nir_colorize.data.leakage import find_duplicates, fingerprint
from nir_colorize.results import bootstrap_ci, summarize

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def _copy_pair(nir: Path, rgb: Path, dst_dir: Path, idx: int, transform=None) -> None:
    for src, name in ((nir, f"testing_{idx:04d}_nir_reg.png"), (rgb, f"Testing_{idx:04d}_rgb_reg.png")):
        img = Image.open(src)
        if transform is not None:
            img = transform(img)
        img.save(dst_dir / name)


def _jpeg(img: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=60)
    return Image.open(buf)


@pytest.fixture
def leaky(tmp_path: Path) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A VCIP layout whose Testing/ holds: exact copies of 2 training pairs (one of them carved out for val),
    a mirrored copy and a JPEG re-encoded copy of training pairs, copies of 2 Validation/ pairs, and 3 new
    pairs. Returns the root and, per Testing/ pair, (what it copies, the expected kind)."""
    root = tmp_path / "vcip"
    for sub in ("NIR", "RGB-Registered", "Validation"):
        shutil.copytree(SAMPLE / sub, root / sub)
    (root / "Testing").mkdir()
    carve = VCIP2020(root, val_ratio=0.25, seed=0).carve_out(VCIP2020(root)._folder("train"))
    train = sorted(k for k, v in carve.items() if v == "train")
    val = sorted(k for k, v in carve.items() if v == "val")

    def train_files(name: str) -> tuple[Path, Path]:
        stem = name.removesuffix("_nir")
        return root / "NIR" / f"{stem}_nir.png", root / "RGB-Registered" / f"{stem}_rgb_reg.png"

    expected: dict[str, tuple[str, str]] = {}
    plan = [(train[0], "train", "exact", None), (val[0], "val", "exact", None),
            (train[1], "train", "exact-flip", lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
            (train[2], "train", "near", _jpeg)]
    for idx, (name, split, kind, transform) in enumerate(plan):
        _copy_pair(*train_files(name), root / "Testing", idx, transform)
        expected[f"testing_{idx:04d}_nir_reg"] = (f"{split}:{name}", kind)
    for idx, vid in ((4, 0), (5, 1)):
        v = SAMPLE / "Validation"
        _copy_pair(v / f"validation_{vid:04d}_nir.png", v / f"validation_{vid:04d}_rgb_reg.png", root / "Testing", idx)
        expected[f"testing_{idx:04d}_nir_reg"] = (f"validation:validation_{vid:04d}_nir", "exact")
    for idx, tid in ((6, 0), (7, 1), (8, 2)):  # the sample's Testing/ pairs are VCIP validation pairs 8..15: new
        t = SAMPLE / "Testing"
        _copy_pair(t / f"testing_{tid:04d}_nir_reg.png", t / f"Testing_{tid:04d}_rgb_reg.png", root / "Testing", idx)
    return root, expected


def _datamodule(root: Path, tmp_path: Path, **kw) -> NIRDataModule:
    source_kw = {k: kw.pop(k) for k in ("protocol",) if k in kw}
    source = VCIP2020(root, val_ratio=0.25, seed=0, split_file=tmp_path / "split.json", **source_kw)
    return NIRDataModule(source, crop_size=64, batch_size=4, eval_batch_size=4, check_cache=None, **kw)


def test_check_finds_exactly_the_copies(leaky, tmp_path: Path) -> None:
    root, expected = leaky
    dm = _datamodule(root, tmp_path)
    dm.check()
    found = {(d.name): (f"{d.of_set}:{d.of_name}", d.kind) for d in dm.duplicates}
    assert found == expected
    assert {d.name for d in dm.duplicates if d.leak} == {k for k, (of, _) in expected.items()
                                                          if of.split(":")[0] in ("train", "val")}
    assert all(d.set == "testing" for d in dm.duplicates)  # train/val/validation of the sample are distinct
    record = json.loads(dm.write_splits(tmp_path / "splits.json").read_text())
    assert record["counts"] == {"train": 24, "val": 8, "validation": 8, "testing": 9}
    assert len(record["duplicates"]) == 6 and record["policy"] == "warn"
    assert set(record["sets"]["val"]) <= {p.name for p in VCIP2020(root)._folder("train")}


def test_drop_removes_the_leaks_and_clean_rows_count_the_rest(leaky, tmp_path: Path) -> None:
    root, expected = leaky
    leaks = {k for k, (of, _) in expected.items() if of.split(":")[0] in ("train", "val")}
    dm = _datamodule(root, tmp_path, leakage="drop")
    names = {p.name for p in dm.check()["testing"]}
    assert len(names) == 9 - len(leaks) and not names & leaks
    assert dm.dropped == {"testing": sorted(leaks)}

    warn = _datamodule(root, tmp_path)
    warn.check()
    labels, leak_keys = warn.duplicate_labels(), warn.leaks()
    rows = [{"set": "testing", "name": p.name, "stage": "raw", "psnr": float(i),
             "duplicates": labels.get(("testing", p.name), ""), "clean": ("testing", p.name) not in leak_keys}
            for i, p in enumerate(warn.check()["testing"])]
    summary = summarize(rows)["testing"]
    assert summary["all"]["raw"]["images"] == 9 and summary["clean"]["raw"]["images"] == 9 - len(leaks)
    assert all(r["duplicates"] for r in rows if r["name"] in expected)


def test_error_policy_names_the_duplicates(leaky, tmp_path: Path) -> None:
    root, _ = leaky
    with pytest.raises(DatasetError, match=r"testing: 4 of 9 pairs leak.*data.leakage=drop"):
        _datamodule(root, tmp_path, leakage="error").check()


def test_published_protocol_counts_validation_copies_as_leaks(leaky, tmp_path: Path, caplog) -> None:
    root, expected = leaky
    with caplog.at_level("WARNING"):
        dm = _datamodule(root, tmp_path, protocol="published")
        dm.check()
    assert "Validation/ picks the checkpoint" in caplog.text
    assert dm.test_sets == ["testing"]
    assert {p.name for p in dm.check()["val"]} == {p.stem for p in (root / "Validation").glob("*_nir.png")}
    # every copy of a training pair leaks, and now the copies of Validation/ pairs too
    assert {d.name for d in dm.duplicates if d.leak} == set(expected)


def test_default_config_never_validates_on_validation_or_testing(leaky, tmp_path: Path) -> None:
    from nir_colorize.utils.compose import compose_config

    root, _ = leaky
    cfg = compose_config("train", ["data=vcip2020", f"data.source.root={root}",
                                   f"data.source.split_file={tmp_path / 'split.json'}", "data.check_cache=null"],
                         output_dir=tmp_path / "run")
    from hydra.utils import instantiate

    dm = instantiate(cfg.data)
    dm.setup("fit")
    seen = {name for batch in dm.val_dataloader() for name in batch["name"]}
    pool = {p.stem for p in (root / "NIR").glob("*.png")}
    assert seen and seen <= pool and len(seen) == round(0.1 * 32)
    assert dm.test_sets == ["validation", "testing"]


def test_carve_out_file_is_reused_and_checked(tmp_path: Path) -> None:
    split_file = tmp_path / "split.json"
    first = VCIP2020(SAMPLE, val_ratio=0.25, seed=3, split_file=split_file)
    val = [p.name for p in first.pairs("val")]
    record = json.loads(split_file.read_text())
    assert record["val"] == sorted(val) and len(val) == 8 and record["seed"] == 3
    record["val"] = record["val"][1:] + record["train"][:1]  # edited by hand: the file wins
    record["train"] = record["train"][1:] + [sorted(val)[0]]
    split_file.write_text(json.dumps(record))
    again = VCIP2020(SAMPLE, val_ratio=0.25, seed=3, split_file=split_file)
    assert sorted(p.name for p in again.pairs("val")) == sorted(record["val"])
    with pytest.raises(DatasetError, match="made with val_ratio=0.25, seed=3.*seed=4"):
        VCIP2020(SAMPLE, val_ratio=0.25, seed=4, split_file=split_file).pairs("val")
    split_file.write_text("{broken")
    with pytest.raises(DatasetError, match="split.json: unreadable split file"):
        VCIP2020(SAMPLE, val_ratio=0.25, seed=3, split_file=split_file).pairs("train")


def test_near_duplicate_rule_on_transformed_copies() -> None:
    """Mirrored, re-encoded, brightened and 2-pixel-shifted copies are found; distinct sample images are not."""
    from nir_colorize.data.io import read_nir, read_rgb

    nir_files = sorted((SAMPLE / "NIR").glob("*.png"))[:8]
    pairs = {p.stem: (read_nir(p), read_rgb(SAMPLE / "RGB-Registered" / p.name.replace("_nir", "_rgb_reg")))
             for p in nir_files}
    ref = {k: (fingerprint(n), fingerprint(r)) for k, (n, r) in pairs.items()}
    name, (nir, rgb) = next(iter(pairs.items()))
    variants = {"bright": (nir * 0.8, rgb * 0.8), "shift2": (np.roll(nir, 2, 1), np.roll(rgb, 2, 1)),
                "mirror": (nir[:, ::-1] * 0.9, rgb[:, ::-1] * 0.9)}
    query = {k: (fingerprint(n), fingerprint(r)) for k, (n, r) in variants.items()}
    found = find_duplicates({"train": ref, "test": query})
    assert {(d.name, d.of_name, d.kind) for d in found} == {("bright", name, "near"), ("shift2", name, "near"),
                                                             ("mirror", name, "near-flip")}
    assert not find_duplicates({"a": dict(list(ref.items())[:4]), "b": dict(list(ref.items())[4:])})


def test_bootstrap_interval_is_seeded_and_contains_the_mean() -> None:
    values = np.random.default_rng(1).normal(20, 3, size=18)
    lo, hi = bootstrap_ci(values, seed=0)
    assert (lo, hi) == bootstrap_ci(values, seed=0) and lo < values.mean() < hi
    assert bootstrap_ci(values, seed=1) != (lo, hi)
    # close to the normal-theory interval of the mean
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert abs((hi - lo) / 2 - half) < 0.25 * half


def test_folder_source_gets_the_same_check(tmp_path: Path) -> None:
    """A user folder with a duplicated pair under another name: found between the splits, whichever side."""
    root = tmp_path / "pairs"
    root.mkdir()
    nirs = sorted((SAMPLE / "NIR").glob("*.png"))[:10]
    for i, p in enumerate(nirs):
        shutil.copy(p, root / f"{i:02d}_nir.png")
        shutil.copy(SAMPLE / "RGB-Registered" / p.name.replace("_nir", "_rgb_reg"), root / f"{i:02d}_rgb.png")
    for i in range(10, 20):  # every pair twice: any split of 20 puts some copies on two sides
        shutil.copy(root / f"{i - 10:02d}_nir.png", root / f"{i:02d}_nir.png")
        shutil.copy(root / f"{i - 10:02d}_rgb.png", root / f"{i:02d}_rgb.png")
    dm = NIRDataModule(FolderPairs(root, val_ratio=0.2, test_ratio=0.2, seed=0), crop_size=64, check_cache=None)
    sets = dm.check()
    side = {p.name: k for k, v in sets.items() for p in v}
    across = {frozenset((f"{i:02d}", f"{i + 10:02d}")) for i in range(10) if side[f"{i:02d}"] != side[f"{i + 10:02d}"]}
    assert across  # the seeded split does separate some copies
    assert {frozenset((d.name, d.of_name)) for d in dm.duplicates} == across
    assert all(d.kind == "exact" and d.images == "nir+rgb" for d in dm.duplicates)

"""``nir_colorize.report.compare``: two evaluations on the same images, paired differences with intervals."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nir_colorize.report.compare import main
from nir_colorize.results import bootstrap_ci


def _write(path: Path, psnr: dict[str, float], clean: set[str]) -> Path:
    path.mkdir(parents=True)
    with open(path / "per_image.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["set", "name", "stage", "clean", "duplicates", "psnr"])
        writer.writeheader()
        for name, value in psnr.items():
            writer.writerow({"set": "validation", "name": name, "stage": "raw", "clean": name in clean,
                             "duplicates": "" if name in clean else "train:x (exact)", "psnr": value})
    return path


def test_paired_difference_on_common_images(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    names = [f"img{i:02d}" for i in range(12)]
    a = dict(zip(names, rng.normal(18, 2, 12), strict=True))
    b = {n: v + 0.5 + rng.normal(0, 0.1) for n, v in a.items() if n != "img11"}  # B lacks one image
    clean = set(names[:9])
    out = tmp_path / "cmp.md"
    assert main([str(_write(tmp_path / "a", a, clean)), str(_write(tmp_path / "b", b, clean)), "--out", str(out)]) == 0
    rows = [line.split("|")[1:-1] for line in out.read_text().splitlines() if line.startswith("| validation")]
    by_subset = {r[1].strip(): r for r in rows}
    assert set(by_subset) == {"all: 11", "clean: 9"}
    diffs = np.array([b[n] - a[n] for n in names[:9]])
    lo, hi = bootstrap_ci(diffs, seed=0)
    assert by_subset["clean: 9"][5].strip() == f"{diffs.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]"
    assert by_subset["clean: 9"][6].strip() == "9/9" and lo > 0.3
    assert main([str(tmp_path / "a"), str(tmp_path / "nowhere")]) == 2
    assert "no per_image.csv" in capsys.readouterr().err


def test_groups_split_the_paired_differences(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    names = [f"img{i:02d}" for i in range(8)]
    a = {n: 15.0 + i for i, n in enumerate(names)}
    b = {n: v + (1.0 if int(n[-2:]) % 2 else -2.0) for n, v in a.items()}  # odd images gain 1 dB, even lose 2
    groups = tmp_path / "types.csv"
    groups.write_text("# scene types\nname,type\n" + "".join(f"{n},{'odd' if i % 2 else 'even'}\n"
                                                             for i, n in enumerate(names[:-1])))  # img07: no type
    out = tmp_path / "cmp.md"
    assert main([str(_write(tmp_path / "a", a, set(names))), str(_write(tmp_path / "b", b, set(names))),
                 "--groups", str(groups), "--out", str(out)]) == 0
    rows = {(r[0].strip(), r[1].strip()): r for r in (line.split("|")[1:-1] for line in out.read_text().splitlines()
                                                      if line.startswith("| validation"))}
    assert rows["validation/odd", "clean: 3"][5].strip().startswith("+1.0000")
    assert rows["validation/even", "clean: 4"][5].strip().startswith("-2.0000")
    assert rows["validation", "clean: 8"][5].strip().startswith(f"{np.mean([b[n] - a[n] for n in names]):+.4f}")
    groups.write_text("image;type\n")
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--groups", str(groups)]) == 2
    assert "header `name,<group>`" in capsys.readouterr().err


def test_the_command_line_runs_without_runpy_warnings(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", {"x": 18.0, "y": 19.0}, {"x", "y"})
    b = _write(tmp_path / "b", {"x": 18.5, "y": 19.5}, {"x", "y"})
    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "nir_colorize.report.compare",
                           str(a), str(b)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "+0.5000" in done.stdout and "Warning" not in done.stderr

"""The GPU bundle (``make gpu-bundle``, nir_colorize.offline.bundle): built from the wheels ``make install`` keeps,
installed by its own ``install.py`` with ``pip --no-index`` against this machine's torch, then used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nir_colorize.offline import bundle, bundle_install
from tests.conftest import ROOT

WHEELS = ROOT / ".cache" / "wheels"


def local_wheels() -> Path:
    missing = [pin for pin in bundle.locked_pins() if bundle.wheel_of(pin, WHEELS) is None]
    if missing:  # under CI (.ci/run sets CI=true) the recipe must be tested: fail, not skip
        give_up = pytest.fail if os.environ.get("CI") else pytest.skip
        give_up(f"no wheel of {', '.join(missing)} in {WHEELS}: make them once with "
                "`python -m nir_colorize.offline.bundle wheels` (make install)")
    return WHEELS


def test_locked_pins_follow_the_lock() -> None:
    pins = dict(p.split("==") for p in bundle.locked_pins())
    lock = (ROOT / "requirements.lock").read_text()
    assert set(pins) == set(bundle.BUNDLE_PINS)
    for name, version in pins.items():
        assert f"{name}=={version}" in lock
    assert "torch" not in pins and "torchvision" not in pins  # the machine's own


def test_build_names_the_wheels_it_lacks(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "pypng-0.1-py3-none-any.whl").write_bytes(b"")  # another version: not the pinned one
    with pytest.raises(SystemExit, match=r"no wheel of hydra-core==.*pypng==0\.2022"):
        bundle.build(tmp_path / "out", wheels=tmp_path / "wheels")
    assert not (tmp_path / "out" / "install.py").exists()


def test_install_refuses_an_older_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bundle_install.version_tuple("2.11.0+cu130") == (2, 11, 0)
    monkeypatch.setattr(bundle_install, "TORCH_MIN", "99.0")
    with pytest.raises(SystemExit, match=r"install.py: torch .* is older than 99.0, the oldest supported"):
        bundle_install.check_torch()


@pytest.mark.slow
def test_bundle_installs_offline_and_colorizes(tmp_path: Path) -> None:
    """The README's GPU recipe on this CPU: build, then ``python install.py`` with this Python's torch, no index,
    the venv path a dangling link (a checkout copied without its target); the smoke run writes a colour image."""
    out = bundle.build(tmp_path / "bundle", wheels=local_wheels())
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest["torch"] == {"min": bundle_install.TORCH_MIN, "tested": bundle_install.TORCH_TESTED}
    assert (out / "src" / "nir_colorize" / "weights" / "reference.safetensors").is_file()
    assert (out / "cache" / "lpips" / "alexnet_features.pth").is_file()
    env_dir = out / "venv"
    env_dir.symlink_to(tmp_path / "gone")
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NIR_COLORIZE_CACHE")}
    environ |= {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(out / "install.py")], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "which does not exist: replacing it with a venv" in done.stdout
    import torch

    assert f"torch {torch.__version__}" in done.stdout
    # in the venv: the bundle's pinned wheels and its src/, the machine's torch
    probe = ("import hydra, kornia, nir_colorize, torch; "
             "print(hydra.__file__, kornia.__file__, nir_colorize.__file__, torch.__file__, sep='\\n')")
    files = subprocess.run([str(env_dir / "bin" / "python"), "-c", probe], cwd=tmp_path, env=environ,
                           capture_output=True, text=True, check=True).stdout.split()
    assert files[0].startswith(str(env_dir)) and files[1].startswith(str(env_dir))
    assert files[2] == str(out / "src" / "nir_colorize" / "__init__.py")
    assert files[3] == torch.__file__
    written = sorted((out / "smoke").glob("*.png"))
    assert len(written) == 1
    rgb = np.asarray(Image.open(written[0]))
    nir = np.asarray(Image.open(next((out / "src").glob(bundle_install.SMOKE_IMAGES))))
    assert rgb.shape == (*nir.shape[:2], 3)
    assert np.abs(rgb[..., 0].astype(int) - rgb[..., 2]).mean() > 3  # colour, not a gray copy of the NIR
    assert "NIR_COLORIZE_CACHE=" in (out / "activate.sh").read_text()

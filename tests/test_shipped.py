"""The shipped reference model: strict loading, a stored reference output, predict/eval without ckpt_path, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from nir_colorize import PROJECT_ROOT, inference
from nir_colorize.data.io import read_nir
from nir_colorize.loading import load_shipped
from nir_colorize.shipped import DEFAULT_ID, MAX_BYTES, export, read_metadata, weights_path

SAMPLE = PROJECT_ROOT / "data" / "sample"
REFERENCE_INPUT = SAMPLE / "Testing" / "testing_0000_nir_reg.png"
REFERENCE_OUTPUT = PROJECT_ROOT / "tests" / "data" / "reference_testing_0000.png"  # made by the shipped model
TOLERANCE = 2  # 8-bit levels: bf16/oneDNN kernels differ from machine to machine by less than this
pytestmark = pytest.mark.usefixtures("one_thread")


def test_shipped_weights_are_fp16_within_the_size_limit_and_load_strictly() -> None:
    path = weights_path(DEFAULT_ID)
    assert path.stat().st_size <= MAX_BYTES
    state = load_file(str(path))
    assert {v.dtype for v in state.values()} == {torch.float16}
    meta = read_metadata(DEFAULT_ID)
    module = load_shipped(DEFAULT_ID)  # load_state_dict(strict=True) inside
    # every float tensor shipped (BatchNorm's integer step counters are not: BN restores them itself)
    assert {k for k, v in module.net.state_dict().items() if v.is_floating_point()} == set(state)
    assert meta["model"]["name"] == module.hparams.model["name"] and meta["recipe"]
    assert (path.parent / f"{DEFAULT_ID}.md").is_file()  # the model card


def test_shipped_model_reproduces_its_stored_output() -> None:
    """Colorizes a sample test image to within TOLERANCE levels of the output stored when it was shipped."""
    net = load_shipped(DEFAULT_ID).net
    nir = torch.from_numpy(read_nir(REFERENCE_INPUT)[..., 0])[None, None]
    with torch.no_grad():
        out = (inference.colorize(net, nir)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.int16)
    ref = np.asarray(Image.open(REFERENCE_OUTPUT).convert("RGB")).astype(np.int16)
    diff = np.abs(out - ref)
    assert diff.max() <= TOLERANCE, f"max difference {diff.max()} levels"
    assert np.ptp(ref, axis=2).mean() > 5  # a colour image, not gray


def test_export_round_trip(trained_run: Path, tmp_path: Path) -> None:
    path = export(trained_run / "checkpoints" / "best.ckpt", "tiny", {"recipe": "test"}, out_dir=tmp_path)
    state = load_file(str(path))
    ckpt = torch.load(trained_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    key = next(iter(state))
    torch.testing.assert_close(state[key].float(), ckpt["state_dict"][f"net.{key}"].half().float())


def test_predict_and_eval_without_ckpt_path_use_the_shipped_model_offline(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1",
           "NO_PROXY": "*", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}  # no network
    out = tmp_path / "pred"
    proc = subprocess.run([sys.executable, "-m", "nir_colorize.predict", f"input={REFERENCE_INPUT}",
                           f"output={out}", "precision=fp32", f"hydra.run.dir={tmp_path / 'p'}"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = np.asarray(Image.open(out / "testing_0000_nir_reg.png").convert("RGB")).astype(np.int16)
    ref = np.asarray(Image.open(REFERENCE_OUTPUT).convert("RGB")).astype(np.int16)
    assert np.abs(written - ref).max() <= TOLERANCE
    proc = subprocess.run([sys.executable, "-m", "nir_colorize.eval", "metrics=[psnr,ssim]", "split=testing",
                           f"hydra.run.dir={tmp_path / 'e'}"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert summary["meta"]["checkpoint"] == f"shipped model_id={DEFAULT_ID}"
    assert summary["summary"]["testing"]["all"]["raw"]["images"] == 8


def test_init_from_a_shipped_id_loads_its_weights_and_keeps_a_frozen_encoder() -> None:
    """``train init_from=reference``: fine-tuning the shipped model; the network's frozen flags stay its own."""
    from nir_colorize.init_weights import init_weights
    from nir_colorize.module import ColorizationModule

    model = read_metadata(DEFAULT_ID)["model"] | {"encoder_weights": None, "freeze_encoder": True}
    module = ColorizationModule(model=model)
    init_weights(module, DEFAULT_ID)
    shipped = load_shipped(DEFAULT_ID).net.state_dict()
    assert all(torch.equal(v, shipped[k]) for k, v in module.net.state_dict().items())
    encoder = module.net.core.encoder
    assert not any(p.requires_grad for p in encoder.parameters())
    assert all(p.requires_grad for n, p in module.net.named_parameters() if not n.startswith("core.encoder."))

"""Prediction through the public entry point writes one PNG per input, at the input's size."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from nir_colorize import predict
from nir_colorize.data.io import read_nir
from nir_colorize.utils.compose import compose_config


def test_predict_writes_input_sized_pngs(trained_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_dir / "Testing" / "testing_0000_nir_reg.png", inputs)
    shutil.copy(sample_dir / "nirscene1" / "urban" / "0000_nir.tiff", inputs)
    out = tmp_path / "out"
    cfg = compose_config("predict", [f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", f"input={inputs}",
                                     f"output={out}", "trainer.accelerator=cpu"], output_dir=tmp_path / "run")
    predict.run(cfg)
    for src in inputs.iterdir():
        written = out / f"{src.stem}.png"
        assert written.is_file(), written
        with Image.open(written) as im:
            assert im.mode == "RGB"
            h, w = read_nir(src).shape[:2]
            assert im.size == (w, h)
            assert np.asarray(im).std() > 0  # a real image, not a constant fill

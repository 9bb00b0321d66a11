"""Prediction: input-sized PNGs, tiled inference that matches the whole image, failure and overwrite rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from nir_colorize import PROJECT_ROOT, inference, loading, pipeline
from nir_colorize.bench import predict as bench_predict
from nir_colorize.data.io import read_nir
from nir_colorize.errors import UserError
from nir_colorize.fusion import BFWLS
from nir_colorize.loading import load_checkpoint
from nir_colorize.models import Colorizer
from nir_colorize.utils.compose import compose_config

ODD = Path("nirscene1") / "country" / "0000_nir.tiff"  # 1024 x 679: not a multiple of any output stride
TEST_PNG = Path("Testing") / "testing_0000_nir_reg.png"


def predict_cfg(ckpt: Path, inputs: Path | str, out: Path, tmp_path: Path, *overrides: str):
    return compose_config("predict", [f"ckpt_path={ckpt}", f"input={inputs}", f"output={out}",
                                      "trainer.accelerator=cpu", "progress=false", "precision=fp32",
                                      *overrides], output_dir=tmp_path / "run")


def nir_tensor(path: Path) -> torch.Tensor:
    return torch.from_numpy(read_nir(path)[..., 0])[None, None]


def test_predict_writes_input_sized_pngs(trained_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_dir / TEST_PNG, inputs)
    shutil.copy(sample_dir / ODD, inputs)
    gray = np.asarray(Image.open(sample_dir / TEST_PNG).convert("L"))[:250, :201]
    Image.fromarray(np.stack([gray] * 3, -1)).save(inputs / "three.jpg", quality=95)  # 3 identical channels
    Image.fromarray(gray.astype(np.uint16) * 257).save(inputs / "deep.png")  # 16-bit
    out = tmp_path / "out"
    result = pipeline.run(predict_cfg(trained_run / "checkpoints" / "last.ckpt", inputs, out, tmp_path))
    assert sorted(p.name for p in result.written) == ["0000_nir.png", "deep.png", "testing_0000_nir_reg.png",
                                                      "three.png"]
    assert not result.failed
    for src in inputs.iterdir():
        with Image.open(out / f"{src.stem}.png") as im:
            assert im.mode == "RGB"
            h, w = read_nir(src).shape[:2]
            assert im.size == (w, h)
            assert np.asarray(im).std() > 0  # a real image, not a constant fill
    assert Image.open(out / "0000_nir.png").size == (1024, 679)
    assert Image.open(out / "three.png").size == Image.open(out / "deep.png").size == (201, 250)
    assert not any(p.name.endswith(".part") for p in out.iterdir())  # no temp file left


def test_tile_starts_cover_with_overlap_on_the_stride_grid() -> None:
    for length in (100, 512, 679, 680, 1024, 4096, 4097):
        starts = inference.tile_starts(length, 512, 64, 32)
        assert starts[0] == 0 and all(s % 32 == 0 for s in starts)
        assert starts[-1] + 512 == max(512, inference.align_up(length, 32))  # last tile ends at the (padded) edge
        assert all(b - a <= 512 - 64 for a, b in zip(starts, starts[1:], strict=False))  # overlap >= 64
        assert starts == sorted(set(starts))


def test_config_defaults_are_the_inference_defaults(tmp_path: Path) -> None:
    cfg = compose_config("predict", ["ckpt_path=x.ckpt", "input=in"], output_dir=tmp_path)
    assert (cfg.tile, cfg.overlap, cfg.tile_above) == (inference.TILE, inference.OVERLAP, inference.TILE_ABOVE)
    assert cfg.overwrite is False


def test_tiling_is_exact_for_a_model_with_a_small_receptive_field(sample_dir: Path) -> None:
    """A conv net of receptive radius 4: tiles whose used pixels lie >= overlap/4 = 16 px from every cut
    must reproduce the whole image exactly (blending weights normalised, edge tiles padded like the whole)."""
    torch.manual_seed(0)
    core = nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.Tanh(), nn.Conv2d(8, 3, 5, padding=2), nn.Tanh())
    net = Colorizer(core, output_stride=16).eval()
    nir = nir_tensor(sample_dir / ODD)[..., :301, :517]  # odd sizes on both axes
    whole = inference.colorize(net, nir, tile=None)
    calls = []
    tiled = inference.colorize(net, nir, tile=128, overlap=64, tile_above=0, batch_size=3,
                               progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] == len(inference.tile_starts(301, 128, 64, 16)) * len(
        inference.tile_starts(517, 128, 64, 16)) > 1
    assert tiled.shape == whole.shape == (1, 3, 301, 517)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_tiled_matches_whole_image_on_the_trained_model(trained_run: Path, sample_dir: Path) -> None:
    net = load_checkpoint(trained_run / "checkpoints" / "last.ckpt").net.eval()
    nir = nir_tensor(sample_dir / ODD)
    assert nir.shape[-2:] == (679, 1024) and nir.numel() > inference.TILE_ABOVE  # tiled by default
    with torch.inference_mode():
        whole = net(nir).clamp(0, 1)
    tiled = inference.colorize(net, nir)  # the defaults: TILE, OVERLAP, TILE_ABOVE
    diff = (tiled - whole).abs().amax(1) * 255
    assert (diff <= 2).float().mean() >= 0.999, f"max {diff.max():.2f}/255"


@pytest.fixture(scope="module")
def trained_colornet(tmp_path_factory: pytest.TempPathFactory) -> nn.Module:
    """ColorNet after three training steps on the sample (a few seconds): its GLFFNet works at /32."""
    from nir_colorize import train
    from tests.conftest import train_cfg

    tmp = tmp_path_factory.mktemp("colornet")
    train.run(train_cfg(tmp, "model=colornet", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                        "trainer.limit_val_batches=1", "data.crop_size=128", "data.batch_size=4", "test=false",
                        "callbacks.validation_images=null"))
    return load_checkpoint(tmp / "run" / "checkpoints" / "last.ckpt").net.eval()


def test_tiled_colornet_matches_whole_image(trained_colornet: nn.Module, sample_dir: Path) -> None:
    """Tiles aligned to 32 (not 16) keep GLFFNet's stride-2 branch on the whole image's grid: misaligned
    tiles agreed within 2/255 on about half of the pixels (mean 3.5/255). A barely trained net reacts to the
    tiles' borders more than a trained one (measured 98.5 % here; 99.99 % after 3 epochs), hence the bound."""
    assert trained_colornet.pad_multiple == 32
    nir = nir_tensor(sample_dir / "nirscene1" / "urban" / "0000_nir.tiff")
    whole = inference.colorize(trained_colornet, nir, tile=None)
    tiled = inference.colorize(trained_colornet, nir, tile_above=0)
    diff = (tiled - whole).abs().amax(1) * 255
    assert (diff <= 2).float().mean() >= 0.95 and diff.mean() < 0.5, (
        f"{(diff <= 2).float().mean():.4f} within 2/255, mean {diff.mean():.3f}/255")


def test_unreadable_file_is_reported_and_the_good_ones_are_written(trained_run: Path, sample_dir: Path,
                                                                    tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_dir / TEST_PNG, inputs / "a.png")
    shutil.copy(sample_dir / "Testing" / "testing_0001_nir_reg.png", inputs / "c.png")
    (inputs / "b.png").write_bytes((sample_dir / TEST_PNG).read_bytes()[:200])  # truncated
    out = tmp_path / "out"
    args = [f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", f"input={inputs}", f"output={out}",
            "trainer.accelerator=cpu", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run([sys.executable, "-m", "nir_colorize.predict", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(PROJECT_ROOT)})
    assert proc.returncode == 1, proc.stderr
    assert "failed: 1 image(s)" in proc.stdout and f"{inputs / 'b.png'}: unreadable or corrupt image" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]


def test_outputs_never_overwrite_inputs_or_each_other(trained_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_dir / TEST_PNG, inputs / "x.png")
    before = (inputs / "x.png").read_bytes()
    with pytest.raises(ValueError, match="would overwrite an input"):
        pipeline.run(predict_cfg(ckpt, inputs, inputs, tmp_path, "overwrite=true"))
    assert (inputs / "x.png").read_bytes() == before

    (tmp_path / "other").mkdir()
    shutil.copy(sample_dir / TEST_PNG, tmp_path / "other" / "x.tiff")
    with pytest.raises(ValueError, match="same name"):
        pipeline.run(predict_cfg(ckpt, f"{tmp_path}/*/x.*", tmp_path / "out", tmp_path))

    out = tmp_path / "out"
    pipeline.run(predict_cfg(ckpt, inputs, out, tmp_path))
    (out / "x.png").write_bytes(b"earlier result")
    with pytest.raises(FileExistsError, match="overwrite=true"):
        pipeline.run(predict_cfg(ckpt, inputs, out, tmp_path))
    assert (out / "x.png").read_bytes() == b"earlier result"
    pipeline.run(predict_cfg(ckpt, inputs, out, tmp_path, "overwrite=true"))
    assert Image.open(out / "x.png").size == (256, 256)


def test_predict_with_bfwls_fusion(trained_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    src = sample_dir / TEST_PNG
    pipeline.run(predict_cfg(ckpt, src, tmp_path / "fused", tmp_path, "fusion=bfwls"))
    fused = np.asarray(Image.open(tmp_path / "fused" / f"{src.stem}.png"), dtype=np.float32)
    nir = nir_tensor(src)
    with torch.inference_mode():
        raw = load_checkpoint(ckpt).net.eval()(nir).clamp(0, 1)
        expected = BFWLS()(nir, raw)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(fused - expected).max() <= 1.0  # 8-bit rounding only
    assert np.abs(fused - raw[0].permute(1, 2, 0).numpy() * 255).mean() > 1.0  # the fusion changed the image


def test_prediction_benchmark_reports_speed_and_memory(tmp_path: Path) -> None:
    """The benchmark at a tiny size, tiled (the 4096 x 4096 run is not part of the suite)."""
    bench_predict.main(["--sizes", "200x120", "--model", "linknet", "--scales", "1,2", "--out", str(tmp_path),
                        "tile=64", "overlap=32", "tile_above=0"])
    result = json.loads(next(tmp_path.glob("predict-*.json")).read_text())
    assert [(r["size"], r["scale"]) for r in result["rows"]] == [("200x120", "1"), ("200x120", "2")]
    for row in result["rows"]:
        assert row["isolated"] and "error" not in row
        assert row["tiling"] == {"tile": 64, "overlap": 32, "tile_above": 0}
        assert row["megapixels_per_s"] == pytest.approx(200 * 120 / 1e6 / row["seconds"])
        assert row["rss_setup_mb"] < row["peak_rss_mb"] < result["max_rss_mb"]
    one, two = result["rows"]
    table = next(tmp_path.glob("predict-*.md")).read_text()
    assert f"| 200x120 | 2 | {two['seconds']:.2f} |" in table and f"| {one['seconds'] / two['seconds']:.1f}x |" in table


def test_progress_in_a_log_file_is_one_line_per_image(trained_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    """stderr not a terminal (a log file): no tqdm redraws (they left dozens of partial lines per image),
    one plain line per image with its time, one summary."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        shutil.copy(sample_dir / "Testing" / f"testing_000{i}_nir_reg.png", inputs)
    shutil.copy(sample_dir / ODD, inputs / "big.tiff")  # 1024 x 679
    (inputs / "cut.png").write_bytes((sample_dir / TEST_PNG).read_bytes()[:200])
    out, log_file = tmp_path / "out", tmp_path / "predict.log"
    args = [f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", f"input={inputs}", f"output={out}",
            "trainer.accelerator=cpu", f"hydra.run.dir={tmp_path / 'run'}"]
    with open(log_file, "w") as stderr:
        proc = subprocess.run([sys.executable, "-m", "nir_colorize.predict", *args], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, stderr=stderr, text=True,
                              env=os.environ | {"PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"})
    text = log_file.read_text()
    assert proc.returncode == 1, text  # the truncated input
    assert "\r" not in text and "\x1b[" not in text, text[:2000]
    lines = text.splitlines()
    per_image = [line for line in lines if line.startswith("[")]
    assert len(per_image) == 5 and len(lines) <= len(per_image) + 3, text
    for i, src in enumerate(sorted(inputs.iterdir()), 1):
        assert sum(f"{src}" in line for line in per_image) == 1, (src, text)
        assert any(line.startswith(f"[{i}/5] {src}") for line in per_image), text
    # a whole camera frame: colorized at the training scale (scale=auto), in one pass
    assert any(line.startswith(f"[1/5] {inputs / 'big.tiff'} -> {out / 'big.png'} (1024x679, at 384x255 "
                               "(scale=auto, band, flip-averaged), whole): ")
               and line.endswith(" s") for line in per_image), text
    assert any(f"[2/5] {inputs / 'cut.png'}: skipped (unreadable or corrupt image" in line for line in per_image)
    assert lines[-1].startswith("colorized 4 of 5 image(s) in ") and lines[-1].endswith("; 1 skipped"), text


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_precision_auto_picks_bf16_on_an_ampere_class_gpu(monkeypatch, native, expected) -> None:
    """A mocked CUDA device: one that computes bf16 natively (Ampere, Hopper), and one that does not (Turing)."""
    import contextlib

    from nir_colorize import runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device", lambda _device: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native and not including_emulation)
    assert runtime.resolve_precision("auto", torch.device("cuda")) == expected
    assert runtime.resolve_precision("fp32", torch.device("cuda")) == "fp32"  # fp32 stays selectable
    if expected == "fp32":
        with pytest.raises(UserError, match="no native bf16"):
            runtime.resolve_precision("bf16", torch.device("cuda"))


def test_bf16_wrapper_autocasts_on_its_input_device_in_channels_last() -> None:
    from nir_colorize import runtime

    seen = {}

    class Probe(nn.Module):
        pad_multiple = output_stride = 1

        def forward(self, x):
            seen.update(dtype=torch.get_autocast_dtype(x.device.type), on=torch.is_autocast_enabled(x.device.type),
                        channels_last=x.is_contiguous(memory_format=torch.channels_last))
            return x.repeat(1, 3, 1, 1)

    out = runtime.Bf16ChannelsLast(Probe())(torch.rand(1, 1, 8, 8))
    assert seen == {"dtype": torch.bfloat16, "on": True, "channels_last": True} and out.dtype == torch.float32


def test_precision_bf16_is_close_to_fp32_and_auto_follows_the_cpu(trained_run: Path, sample_dir: Path, tmp_path: Path,
                                                                  monkeypatch) -> None:
    from nir_colorize import runtime
    from nir_colorize.utils import hardware

    cpu = torch.device("cpu")
    for fast, expected in (("bf16-mixed", "bf16"), ("32-true", "fp32")):
        monkeypatch.setattr(hardware, "fast_precision", lambda device="cpu", fast=fast: fast)
        assert runtime.resolve_precision("auto", cpu) == expected
    assert runtime.resolve_precision("auto", torch.device("cuda")) == "fp32"  # no native bf16 there (patched)
    with pytest.raises(UserError, match="precision=bf16: device cuda has no native bf16"):
        runtime.resolve_precision("bf16", torch.device("cuda"))
    with pytest.raises(UserError, match="precision=fp16: choose one of fp32, bf16, auto"):
        runtime.resolve_precision("fp16", cpu)
    monkeypatch.undo()

    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_dir / TEST_PNG, inputs)
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    cfg = predict_cfg(ckpt, inputs, tmp_path / "bf16", tmp_path, "precision=bf16")
    assert isinstance(loading.load_net(cfg, cpu), runtime.Bf16ChannelsLast)
    pipeline.run(cfg)
    pipeline.run(predict_cfg(ckpt, inputs, tmp_path / "fp32", tmp_path))
    name = Path(TEST_PNG).with_suffix(".png").name
    a, b = (np.asarray(Image.open(tmp_path / d / name)).astype(np.int16) for d in ("bf16", "fp32"))
    assert a.shape == b.shape and np.abs(a - b).mean() < 1.0 and np.abs(a - b).max() <= 8  # bf16 rounding only

"""Colorizing at the training scale (nir_colorize.scale, design section 10): the factor, the restoration, the
scale a model records, and predict's scale=auto against scale=1 on real frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kornia.color import rgb_to_yuv
from torch import nn

from nir_colorize import inference, loading, pipeline
from nir_colorize.data.io import read_nir
from nir_colorize.errors import UserError
from nir_colorize.scale import RESTORE, TRAIN_LONG_SIDE, colorize_at_scale, restore, shrink, working_factor
from nir_colorize.utils.compose import compose_config
from tests.conftest import train_cfg
from tests.test_predict import predict_cfg

FRAME = Path("nirscene1") / "country" / "0000_nir.tiff"  # a whole 1024x679 camera frame of the sample

pytestmark = pytest.mark.usefixtures("one_thread")


class Recorder(nn.Module):
    """A 1x1 convolution that records the size of every input it colorizes."""

    pad_multiple = output_stride = 1

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 1)
        self.sizes: list[tuple[int, int]] = []

    def forward(self, nir: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(nir.shape[-2:]))
        return torch.sigmoid(self.conv(nir))


def frame(sample_dir: Path) -> torch.Tensor:
    return torch.from_numpy(read_nir(sample_dir / FRAME)[..., 0])[None, None]


def test_working_factor() -> None:
    assert working_factor(680, 1024, "auto") == pytest.approx(1024 / TRAIN_LONG_SIDE)
    assert working_factor(1080, 1920, "auto", train_long_side=480) == pytest.approx(4.0)
    assert working_factor(256, 384, "auto") == 1.0  # at the training scale
    assert working_factor(200, 300, "auto") == 1.0  # smaller: never upsized
    assert working_factor(394, 394, "auto") == 1.0  # within MIN_FACTOR: not worth the blur
    assert working_factor(680, 1024, 2) == 2.0 and working_factor(5, 5, "1") == 1.0
    for bad in (0.5, 0, -2, "big", float("nan")):
        with pytest.raises(ValueError, match="scale="):
            working_factor(680, 1024, bad)


def test_the_network_runs_at_the_working_scale_and_the_output_at_the_input_size() -> None:
    net = Recorder()
    for size, scale, seen in (((679, 1024), "auto", (255, 384)),  # a camera frame: shrunk to a 384 long side
                              ((3000, 4000), "auto", (288, 384)),  # huge: cheap at the working scale
                              ((677, 1001), "auto", (260, 384)),  # odd sizes
                              ((200, 300), "auto", (200, 300)),  # smaller than the working scale: as it is
                              ((5, 7), "auto", (5, 7)),  # tiny
                              ((679, 1024), 1, (679, 1024)),  # scale=1: the input's own size
                              ((600, 900), 3, (200, 300))):  # a given factor
        p = pipeline.Pipeline(net, torch.device("cpu"), None, {"tile": None}, scale, "band")
        net.sizes.clear()
        out = p(torch.rand(1, 1, *size))
        assert net.sizes == [seen], (size, scale)
        assert out.shape == (1, 3, *size) and out.min() >= 0 and out.max() <= 1


def test_band_restores_exactly_the_detail_the_shrink_removed(sample_dir: Path) -> None:
    nir = frame(sample_dir)
    small = shrink(nir, (255, 384))
    gray = small.expand(-1, 3, -1, -1)  # a "colorization" that is the shrunk NIR itself
    out = restore(nir, small, gray, "band")
    # the Y of a gray image is the image: band restoration gives back the full-size NIR (but for clamping)
    assert torch.allclose(rgb_to_yuv(out)[:, :1], nir, atol=2e-3)
    bicubic = restore(nir, small, gray, "bicubic")
    assert (bicubic - nir).abs().mean() > 10 * (out - nir).abs().mean()  # no restoration: the detail is gone
    for method in RESTORE:
        result = restore(nir, small, gray, method)
        assert result.shape == (1, 3, *nir.shape[-2:]) and torch.isfinite(result).all()
    with pytest.raises(ValueError, match="restore="):
        restore(nir, small, gray, "sharpen")


def test_scale_one_is_todays_output(trained_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    cfg = predict_cfg(trained_run / "checkpoints" / "last.ckpt", sample_dir / FRAME, tmp_path / "out", tmp_path,
                      "scale=1")
    p = pipeline.load_pipeline(cfg)
    nir = frame(sample_dir)
    today = inference.colorize(p.net, nir, **p.tiling)  # predict before scale=: the network at the input size
    assert torch.equal(p(nir), today)


def test_scale_auto_reads_the_scale_the_model_recorded(trained_run: Path, sample_dir: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    assert loading.load_checkpoint(ckpt).hparams["train_long_side"] == 384  # the sample (VCIP): 384-pixel frames
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    state["hyper_parameters"]["train_long_side"] = 256
    other = tmp_path / "other.ckpt"
    torch.save(state, other)
    for path, side in ((ckpt, 384), (other, 256)):
        p = pipeline.load_pipeline(predict_cfg(path, sample_dir / FRAME, tmp_path / "out", tmp_path))
        assert p.scale == "auto" and p.train_long_side == side
        assert p.factor(679, 1024) == pytest.approx(1024 / side)
    with pytest.raises(UserError, match="scale="):
        pipeline.load_pipeline(predict_cfg(ckpt, sample_dir / FRAME, tmp_path / "out", tmp_path, "scale=0.5"))


def test_a_folder_source_records_its_frames_long_side(tmp_path: Path, sample_copy: Path) -> None:
    from hydra.utils import instantiate

    cfg = train_cfg(tmp_path, "data=folder", f"data.source.root={sample_copy / 'Validation'}",
                    "data.source.nir=*_nir.*", "data.source.rgb=*_rgb_reg.*", "data.crop_size=64")
    datamodule = instantiate(cfg.data)
    assert datamodule.frame_long_side == 256  # unknown: the median long side of the training images
    cfg.data.source.frame_long_side = 640
    assert instantiate(cfg.data).frame_long_side == 640


def test_a_frame_upsized_keeps_its_colours_at_scale_auto(sample_dir: Path, tmp_path: Path) -> None:
    """The shipped model on a real frame at its training scale, and on the same frame upsized 2x: scale=auto gives
    nearly the same colours (chroma), scale=1 does not."""
    cfg = compose_config("predict", [f"input={sample_dir / FRAME}", f"output={tmp_path / 'out'}", "model_id=reference",
                                     "trainer.accelerator=cpu", "progress=false", "precision=fp32"],
                         output_dir=tmp_path / "run")
    p = pipeline.load_pipeline(cfg)
    small = shrink(frame(sample_dir), (255, 384))  # the frame at the training scale
    big = F.interpolate(small, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    chroma = rgb_to_yuv(p(small))[:, 1:]

    def chroma_error(scale: float | str) -> float:
        p.scale = scale
        return (shrink(rgb_to_yuv(p(big))[:, 1:], (255, 384)) - chroma).abs().mean().item()

    at_auto, at_one = chroma_error("auto"), chroma_error(1)
    # measured: 0.0039 at scale=auto (flip-averaged), 0.0146 at scale=1 (mean |U, V| difference; U, V in [-0.44, 0.62])
    assert at_auto < 0.006 and at_one > 2 * at_auto, (at_auto, at_one)


def test_colorize_at_scale_is_the_network_itself_at_factor_one() -> None:
    net = Recorder()
    nir = torch.rand(1, 1, 40, 60)
    assert torch.equal(colorize_at_scale(net, nir, 1.0), net(nir))
    assert np.allclose(colorize_at_scale(net, nir, 2.0).shape, (1, 3, 40, 60))


def test_flip_averaging_runs_where_the_frame_is_shrunk() -> None:
    net = Recorder()
    nir = torch.rand(1, 1, 679, 1024)
    for scale, flip, passes in (("auto", "auto", 2), (1, "auto", 1), ("auto", False, 1), (1, True, 2)):
        p = pipeline.Pipeline(net, torch.device("cpu"), None, {"tile": None}, scale, "band", flip=flip)
        net.sizes.clear()
        p(nir)
        assert len(net.sizes) == passes, (scale, flip)
    mirror = pipeline.Pipeline(net, torch.device("cpu"), None, {"tile": None}, 1, "band", flip=True)
    plain = pipeline.Pipeline(net, torch.device("cpu"), None, {"tile": None}, 1, "band", flip=False)
    assert torch.allclose(mirror(nir), (plain(nir) + plain(nir.flip(-1)).flip(-1)) / 2)
    with pytest.raises(ValueError, match="flip="):
        pipeline.Pipeline(net, torch.device("cpu"), None, {"tile": None}, "auto", "band", flip="often")(nir)

"""BFWLS fusion: the exact WLS solver against SciPy's direct solve, BFWLS, and its Lightning callback."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch
from kornia.color import rgb_to_yuv, yuv_to_rgb

from nir_colorize.data.dataset import to_tensor
from nir_colorize.data.io import read_nir, read_rgb
from nir_colorize.fusion import BFWLS, BFWLSCallback, WLSConvergenceError, bfwls, wls_smooth

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SCENES = ROOT / "data" / "sample" / "nirscene1"
HALF_LEVEL = 1.0 / 510.0


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def country() -> tuple[torch.Tensor, torch.Tensor]:
    nir = to_tensor(read_nir(SCENES / "country" / "0000_nir.tiff"))[None]
    rgb = to_tensor(read_rgb(SCENES / "country" / "0000_rgb.tiff"))[None]
    return nir, rgb


@pytest.fixture(scope="module")
def urban_y() -> torch.Tensor:
    rgb = to_tensor(read_rgb(SCENES / "urban" / "0000_rgb.tiff"))[None]
    return rgb_to_yuv(rgb)[0, 0]


def test_pcg_matches_direct_on_nir_crop(country):
    image = country[0][0, 0, 200:456, 300:556]  # 256 x 256
    exact = wls_smooth(image, solver="direct")
    fast = wls_smooth(image)
    assert fast.shape == image.shape and fast.dtype == image.dtype
    assert (fast - exact).abs().max().item() <= HALF_LEVEL
    assert (exact - image).abs().max().item() > 0.05  # it does smooth


def test_pcg_matches_direct_on_luminance_odd_crop(urban_y):
    image = urban_y[101:288, 333:564]  # 187 x 231, odd sides
    exact = wls_smooth(image, solver="direct")
    assert (wls_smooth(image) - exact).abs().max().item() <= HALF_LEVEL


def test_batched_channels_and_shared_guide(country):
    nir, rgb = country
    crop = rgb[:, :, 50:150, 700:833]  # (1, 3, 100, 133)
    guide = nir[:, :, 50:150, 700:833]
    exact = wls_smooth(crop, guide, lam=2.0, solver="direct")
    fast = wls_smooth(crop, guide, lam=2.0)
    assert fast.shape == crop.shape
    assert (fast - exact).abs().max().item() <= HALF_LEVEL
    for c in range(3):  # channel c is the 2-D problem of that channel alone
        alone = wls_smooth(crop[0, c], guide[0, 0], lam=2.0, solver="direct")
        assert torch.allclose(exact[0, c], alone, atol=1e-6)


def test_large_batches_are_solved_in_chunks_with_the_same_result(country, monkeypatch):
    from nir_colorize.fusion import wls

    crop = country[1][:, :, 40:140, 600:730]  # (1, 3, 100, 130): three channels
    whole = wls_smooth(crop)
    monkeypatch.setattr(wls, "BATCH_PIXELS", 2 * 100 * 130)  # chunks of 2 channels, then 1
    calls = []
    solve = wls.solve_pcg
    monkeypatch.setattr(wls, "solve_pcg", lambda g, *a, **k: calls.append(g.shape[0]) or solve(g, *a, **k))
    chunked = wls_smooth(crop)
    assert calls == [2, 1]
    assert (chunked - whole).abs().max().item() <= 1e-5


@pytest.mark.slow
def test_pcg_matches_direct_on_full_image(country):
    image = country[0][0, 0]  # 1024 x 679
    assert (wls_smooth(image) - wls_smooth(image, solver="direct")).abs().max().item() <= HALF_LEVEL


def test_lambda_zero_returns_input_and_constant_stays_constant(country):
    image = country[0][0, 0, :128, :160]
    assert torch.allclose(wls_smooth(image, lam=0.0), image, atol=1e-6)
    assert (wls_smooth(image, lam=1e-6) - image).abs().max().item() < 1e-3
    flat = torch.full((97, 130), 0.37)
    assert torch.allclose(wls_smooth(flat, lam=5.0), flat, atol=1e-5)


def test_unconverged_solver_raises_or_warns(country):
    image = country[0][0, 0, :128, :128]
    with pytest.raises(WLSConvergenceError, match="did not converge"):
        wls_smooth(image, max_iter=1)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        wls_smooth(image, max_iter=1, on_fail="warn")


def test_wls_rejects_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        wls_smooth(torch.tensor([[0.1, float("nan")], [0.2, 0.3]]))
    with pytest.raises(ValueError, match="solver"):
        wls_smooth(torch.rand(8, 8), solver="magic")
    with pytest.raises(ValueError, match="guide must be >= 0"):
        wls_smooth(torch.rand(8, 8), guide=-torch.rand(8, 8))


def test_bfwls_range_shape_and_solvers_agree(country):
    nir, rgb = (x[:, :, 300:427, 500:700] for x in country)  # (1, C, 127, 200)
    fused = bfwls(nir, rgb)
    assert fused.shape == rgb.shape
    assert fused.min() >= 0 and fused.max() <= 1
    assert torch.allclose(BFWLS()(nir, rgb), fused)
    assert (bfwls(nir, rgb, solver="direct") - fused).abs().max().item() <= 2 * HALF_LEVEL
    # detail_gain = 0: the luminance is replaced by its WLS-smoothed version, U and V are kept
    yuv = rgb_to_yuv(rgb)
    expected = yuv_to_rgb(torch.cat([wls_smooth(yuv[:, :1]), yuv[:, 1:]], 1)).clamp(0, 1)
    assert (bfwls(nir, rgb, detail_gain=0.0) - expected).abs().max().item() <= 2 * HALF_LEVEL  # each solve within tol


def test_bfwls_rejects_bad_input(country):
    nir, rgb = (x[:, :, :64, :64] for x in country)
    with pytest.raises(ValueError, match="differ"):
        bfwls(nir, rgb[:, :, :63])
    with pytest.raises(ValueError, match=r"rgb must be \(B, 3, H, W\)"):
        bfwls(nir, rgb[:, :2])
    bad = nir.clone()
    bad[0, 0, 3, 3] = float("inf")
    with pytest.raises(ValueError, match="nir contains non-finite"):
        bfwls(bad, rgb)


def test_callback_reports_raw_and_fused_metrics(tmp_path):
    from nir_colorize.data import VCIP2020, NIRDataModule
    from nir_colorize.module import ColorizationModule

    L.seed_everything(0)
    module = ColorizationModule(model={"name": "linknet"})
    data = NIRDataModule(VCIP2020(ROOT / "data" / "sample"), crop_size=64, batch_size=2, eval_batch_size=2)
    trainer = L.Trainer(accelerator="cpu", devices=1, limit_test_batches=2, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, callbacks=[BFWLSCallback()])
    logged = trainer.test(module, datamodule=data, verbose=False)[0]
    prefix = "test/validation/"  # the datamodule's first test set
    assert {f"{prefix}psnr", f"{prefix}bfwls/psnr", f"{prefix}bfwls/ssim", f"{prefix}bfwls/mae"} <= set(logged)
    stages = [row["stage"] for row in module.test_rows]
    assert stages.count("raw") == 4 and stages.count("bfwls") == 4
    fused = [row for row in module.test_rows if row["stage"] == "bfwls"]
    assert logged[f"{prefix}bfwls/psnr"] == pytest.approx(sum(r["psnr"] for r in fused) / 4, rel=1e-4)
    assert logged[f"{prefix}bfwls/psnr"] != pytest.approx(logged[f"{prefix}psnr"], rel=1e-6)
    assert {row["set"] for row in module.test_rows} == {"validation"}


def test_callback_fuses_predictions_with_full_size_nir(country):
    nir, rgb = (x[:, :, :96, :128] for x in country)
    callback = BFWLSCallback()
    outputs = {"pred": rgb.clone(), "nir": nir}
    callback.on_predict_batch_end(None, None, outputs, {"nir": torch.zeros(1, 1, 8, 8)}, 0)
    assert torch.allclose(outputs["pred"], bfwls(nir, rgb))
    outputs = {"pred": rgb.clone()}
    callback.on_predict_batch_end(None, None, outputs, {"nir": nir}, 0)
    assert torch.allclose(outputs["pred"], bfwls(nir, rgb))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pcg_on_cuda_matches_direct(country):
    image = country[0][0, 0, 200:456, 300:556]
    fast = wls_smooth(image.cuda())
    assert fast.is_cuda
    assert (fast.cpu() - wls_smooth(image, solver="direct")).abs().max().item() <= HALF_LEVEL


def test_fusion_config_builds_the_callback_with_spec_defaults():
    from hydra import compose, initialize_config_dir

    from nir_colorize.utils.instantiate import instantiate_callbacks

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("eval", overrides=["fusion=bfwls", "ckpt_path=unused", "logger=none"])
    callbacks = [c for c in instantiate_callbacks(cfg) if isinstance(c, BFWLSCallback)]
    assert len(callbacks) == 1
    assert callbacks[0].fusion.kwargs | {"solver": "pcg"} == BFWLS().kwargs
    assert cfg.fusion.lam == 1.0 and cfg.fusion.alpha == 1.2 and cfg.fusion.bf_kernel == 9



@pytest.mark.parametrize("name", ["urban", "scene_230", "scene_450"])
def test_pcg_is_exact_on_other_scene_types(name):
    """The hardest frames of the fusion benchmark set (urban, nirscene1 street/building frames), at their size."""
    from nir_colorize.bench.fusion import BENCH_SET

    image = to_tensor(read_nir(BENCH_SET[name]))[0]
    if name == "urban":
        image = image[150:406, 400:656]  # 256 x 256 of the full-resolution frame
    info: dict = {}
    fast = wls_smooth(image, info=info)
    assert (fast - wls_smooth(image, solver="direct")).abs().max().item() <= HALF_LEVEL
    assert len(info["iterations"]) == 1 and info["residual"] <= HALF_LEVEL


def test_longer_line_solves_converge_in_fewer_iterations_on_the_hardest_frame():
    """scene_450 at 1024 x 680 (upscaled street frame: 1-px-wide columns of equal values), torch's V-cycle: 33 CG
    iterations with 3 cyclic-reduction steps per line solve and tol 1/1020 (before), 25 with 5 steps and tol
    0.99/510, 17 with lines on every grid (``line_depth=None``: fewer iterations, but slower per iteration on the
    CPU). The fused kernels' exact line solves (the CPU default) take 25 too."""
    from nir_colorize.bench.fusion import load_nir
    from nir_colorize.fusion import wls

    image, _ = load_nir("scene_450", (1024, 680))
    info: dict = {}
    wls_smooth(image, info=info)
    assert info["iterations"][0] <= 27 and info["residual"] <= 0.99 * HALF_LEVEL
    ax, ay = wls.wls_weights(image[None])
    multigrid = wls.Multigrid
    counts = {}
    for name, kwargs, tol in (("before", {"line_levels": 3, "fused": False}, 1 / 1020),
                              ("torch", {"fused": False}, None), ("all grids", {"line_depth": None, "fused": False}, None)):
        run: dict = {}
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(wls, "Multigrid", lambda op, kwargs=kwargs, **_: multigrid(op, **kwargs))
            wls.solve_pcg(image[None], ax, ay, tol=tol or wls.DEFAULT_TOL, info=run)
        counts[name] = run["iterations"]
    assert counts["before"] >= 30 and counts["torch"] <= 27 and counts["all grids"] <= 20, counts

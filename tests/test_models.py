"""The networks of design section 1: shapes, strides, gradients, encoder weights, configs, one training run."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from hydra import compose, initialize_config_dir
from safetensors.torch import save_file

from nir_colorize import CONFIG_DIR, PROJECT_ROOT
from nir_colorize.data.io import read_nir, read_rgb
from nir_colorize.models import MODELS, EncoderWeightsError, GLFFNet, build_model
from nir_colorize.models.__main__ import main as models_main
from nir_colorize.models.acd import acd_encoder
from nir_colorize.models.summary import encoder_features
from nir_colorize.models.weights import SMP_ENCODERS

SAMPLE = PROJECT_ROOT / "data" / "sample"
VARIANTS = ["scd", "linknet", "acd", "colornet"]
RESNET_VARIANTS = ["linknet", "acd", "colornet"]


def real_batch(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two real NIR/RGB crops of h x w from the full-size RGB-NIR Scene sample images."""
    nirs, rgbs = [], []
    for scene in ("country", "urban"):
        nir = read_nir(SAMPLE / "nirscene1" / scene / "0000_nir.tiff")[:h, :w]
        rgb = read_rgb(SAMPLE / "nirscene1" / scene / "0000_rgb.tiff")[:h, :w]
        nirs.append(torch.from_numpy(np.ascontiguousarray(nir)).permute(2, 0, 1))
        rgbs.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1))
    return torch.stack(nirs), torch.stack(rgbs)


@pytest.fixture(scope="module")
def resnet34_path(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    state = torchvision.models.resnet34(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet34.pth"
    torch.save(state, path)
    return path, state


def test_registry_has_every_variant():
    assert sorted(MODELS) == sorted([*VARIANTS, "unet_vgg16", "nir_copy"])  # the paper's four + two of ours
    with pytest.raises(ValueError, match="unknown model 'unet'"):
        build_model("unet")


@pytest.mark.parametrize("name", VARIANTS)
def test_output_has_the_input_size_and_range(name):
    torch.manual_seed(0)
    model = build_model(name=name, encoder_weights=None).eval()
    for h, w in [(64, 64), (256, 256), (250, 333)]:
        nir, _ = real_batch(h, w)
        with torch.no_grad():
            out = model(nir)
        assert out.shape == (2, 3, h, w)
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", VARIANTS)
def test_every_parameter_gets_a_finite_gradient(name):
    """Training mode, L2-sum loss on real pairs at the three sizes of the issue, the odd one needing padding
    and cropping (about 1-8 s per variant on 2 quiet cores)."""
    torch.manual_seed(0)
    model = build_model(name=name, encoder_weights=None).train()
    for h, w in [(64, 64), (256, 256), (250, 333)]:
        nir, rgb = real_batch(h, w)
        model.zero_grad(set_to_none=True)
        out = model.forward_tanh(nir)
        assert out.shape == (2, 3, h, w)
        F.mse_loss(out, rgb * 2 - 1, reduction="sum").backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None, f"{name} {h}x{w}: no gradient for {pname}"
            assert torch.isfinite(p.grad).all(), f"{name} {h}x{w}: non-finite gradient for {pname}"
            assert p.grad.abs().sum() > 0, f"{name} {h}x{w}: zero gradient for {pname}"


@pytest.mark.parametrize(("name", "stride"), [("scd", 16), ("linknet", 32), ("acd", 16), ("colornet", 16)])
def test_output_stride_is_the_deepest_map(name, stride):
    model = build_model(name)
    assert model.output_stride == stride
    padded, feats = encoder_features(model, (250, 333))
    assert padded == (256, math.ceil(333 / stride) * stride)
    assert max(f.stride for f in feats) == stride


def test_acd_encoder_is_resnet34_with_stride1_stem():
    encoder = acd_encoder()
    assert encoder.conv1.stride == (1, 1) and encoder.conv1.in_channels == 1
    nir, _ = real_batch(64, 96)
    feats = encoder.eval()(nir)
    # design section 1 skips: stem (64, /1), stage 1 (64, /2), stage 2 (128, /4), stage 3 (256, /8), stage 4 (512, /16)
    assert [tuple(f.shape[1:]) for f in feats[1:]] == [
        (64, 64, 96), (64, 32, 48), (128, 16, 24), (256, 8, 12), (512, 4, 6)]
    # Independent reference: torchvision's ResNet34 with the stem at stride 1, same weights, on the NIR
    # repeated to RGB (a 1-channel stem with summed kernels equals a 3-channel one on three equal channels).
    ref = torchvision.models.resnet34(weights=None).eval()
    state = {k: v for k, v in encoder.state_dict().items()}
    state["conv1.weight"] = state["conv1.weight"].repeat(1, 3, 1, 1) / 3
    ref.load_state_dict(state, strict=False)
    ref.conv1.stride = (1, 1)
    with torch.no_grad():
        x = ref.maxpool(ref.relu(ref.bn1(ref.conv1(nir.repeat(1, 3, 1, 1)))))
        expected = ref.layer4(ref.layer3(ref.layer2(ref.layer1(x))))
    torch.testing.assert_close(feats[-1].detach(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("h", "w"), [(16, 16), (15, 21), (1, 1), (16, 21)])
def test_glffnet_keeps_shape(h, w):
    net = GLFFNet(512).eval()
    x = torch.randn(1, 512, h, w)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, 512, h, w)
    if h < 15:
        return
    # [local, global]: a change at (0, 0) reaches (3, 3) only through the global branch (stride 2, two 3x3
    # convs, bilinear resize), not through the local 3x3 conv
    x2 = x.clone()
    x2[..., 0, 0] += 10
    with torch.no_grad():
        y2 = net(x2)
    torch.testing.assert_close(y[:, :256, 3, 3], y2[:, :256, 3, 3])
    assert not torch.allclose(y[:, 256:, 3, 3], y2[:, 256:, 3, 3])


@pytest.mark.parametrize("name", RESNET_VARIANTS)
def test_torchvision_resnet34_state_dict_loads(name, resnet34_path):
    path, state = resnet34_path
    encoder = build_model(name, encoder_weights=str(path)).core.encoder
    loaded = encoder.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith("fc.")}
    torch.testing.assert_close(loaded["conv1.weight"], state["conv1.weight"].sum(dim=1, keepdim=True))
    for key, value in loaded.items():
        if key != "conv1.weight":
            assert torch.equal(value, state[key]), key


def test_scd_loads_torchvision_vgg13_bn_features(tmp_path):
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["B"], batch_norm=True)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    torch.save(state, tmp_path / "vgg13_bn.pth")
    encoder = build_model("scd", encoder_weights=str(tmp_path / "vgg13_bn.pth")).core.encoder.encoder
    loaded = encoder.state_dict()
    torch.testing.assert_close(loaded["features.0.weight"], state["features.0.weight"].sum(1, keepdim=True))
    assert all(torch.equal(loaded[k], state[k]) for k in loaded if k != "features.0.weight")


def test_bad_weights_give_clear_errors(tmp_path, resnet34_path):
    path, state = resnet34_path
    with pytest.raises(EncoderWeightsError, match="no such file"):
        build_model("acd", encoder_weights=str(tmp_path / "missing.pth"))
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(EncoderWeightsError, match="junk.pth: cannot be read"):
        build_model("acd", encoder_weights=str(tmp_path / "junk.pth"))
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4")}, tmp_path / "no_layer4.pth")
    with pytest.raises(EncoderWeightsError, match=r"no_layer4.pth: .*missing keys \(\d+\): layer4"):
        build_model("colornet", encoder_weights=str(tmp_path / "no_layer4.pth"))
    with pytest.raises(EncoderWeightsError, match=r"resnet34.pth: .*unexpected keys"):
        build_model("scd", encoder_weights=str(path))  # a ResNet for the VGG encoder


def empty_hub_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)


@pytest.mark.parametrize("name", RESNET_VARIANTS)
def test_imagenet_offline_with_empty_cache_fails_fast(name, monkeypatch, tmp_path):
    empty_hub_cache(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(EncoderWeightsError, match=r"HF_HUB_OFFLINE.*encoder_weights=null.*path to a"):
        build_model(name, encoder_weights="imagenet")
    assert time.perf_counter() - start < 3


def test_imagenet_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    from huggingface_hub import constants

    empty_hub_cache(monkeypatch, tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(EncoderWeightsError, match=r"cannot be reached.*encoder_weights=null"):
        build_model("acd", encoder_weights="imagenet")
    assert time.perf_counter() - start < 5


def test_imagenet_from_filled_cache(monkeypatch, tmp_path, resnet34_path):
    """smp's repo and revision, read from the cache with no network (weights: a stand-in ResNet34)."""
    _, state = resnet34_path
    empty_hub_cache(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = SMP_ENCODERS["resnet34"]["pretrained_settings"]["imagenet"]
    snapshot = (tmp_path / "hf" / "hub" / f"models--{settings['repo_id'].replace('/', '--')}" / "snapshots"
                / settings["revision"])
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, snapshot / "model.safetensors")
    encoder = build_model("linknet", encoder_weights="imagenet").core.encoder
    assert torch.equal(encoder.state_dict()["layer3.2.conv2.weight"], state["layer3.2.conv2.weight"])
    torch.testing.assert_close(encoder.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=overrides)


@pytest.mark.parametrize("name", VARIANTS)
def test_ablation_experiment_config(name):
    cfg = compose_train([f"+experiment=ablation_{name}", "paths.output_dir=/unused"])
    assert cfg.model.name == name and cfg.model.encoder_weights is None
    assert list(cfg.tags) == ["ablation", name]
    assert (cfg.data.batch_size, cfg.trainer.max_epochs) == (16, 300)
    m = cfg.module
    assert (m.lr, list(m.betas), m.eps, m.loss_reduction) == (1e-4, [0.9, 0.999], 1e-8, "sum")
    assert cfg.data.source.root.endswith("data/sample")
    real = compose_train([f"+experiment=ablation_{name}", "data=vcip2020", "data.source.root=/data/vcip"])
    assert (real.data.batch_size, real.data.crop_size, real.model.name) == (16, 256, name)


def test_ablation_colornet_trains_in_process(tmp_path):
    from nir_colorize.train import run

    cfg = compose_train(["+experiment=ablation_colornet", "debug=fast_dev_run", f"paths.output_dir={tmp_path}",
                         f"paths.log_dir={tmp_path}", "data.batch_size=2", "data.eval_batch_size=1",
                         "data.crop_size=64"])
    metrics = run(cfg)
    assert math.isfinite(metrics["train/loss"]) and metrics["train/loss"] > 0
    assert 0 < metrics["test/validation/psnr"] < 60 and 0 < metrics["test/testing/psnr"] < 60
    assert (tmp_path / "test" / "metrics.json").is_file()


def test_summary_cli(capsys):
    models_main(["--summary", "--size", "250", "333", "--models", "colornet"])
    out = capsys.readouterr().out
    assert "output stride 16" in out and "| stage 4 | 512 | 16 x 21 | /16 |" in out
    assert "| neck (GLFFNet) | 512 | 16 x 21 | /16 |" in out
    models_main(["--step-time", "--batch", "2", "--size", "64", "64", "--repeats", "1", "--models", "linknet"])
    params = sum(p.numel() for p in build_model("linknet").parameters())
    assert f"| `linknet` | {params:,} | 32 | " in capsys.readouterr().out


def test_imagenet_vgg16_stem_fold_is_exact_inside_the_border() -> None:
    """The folded 1-channel stem on NIR in [-1, 1] = the RGB stem on the ImageNet-normalised gray image."""
    import torch.nn.functional as F

    from nir_colorize.data.io import read_nir
    from nir_colorize.models.imagenet import IMAGENET_MEAN, IMAGENET_STD, fold_gray_stem

    torch.manual_seed(0)
    weight, bias = torch.randn(64, 3, 3, 3), torch.randn(64)
    nir = torch.from_numpy(read_nir(SAMPLE / "NIR" / "country_0000_nir.png")[..., 0])[None, None, :64, :64]
    rgb = (nir.expand(1, 3, -1, -1) - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    gray_w, gray_b = fold_gray_stem(weight, bias)
    ours = F.conv2d(nir * 2 - 1, gray_w, gray_b, padding=1)
    ref = F.conv2d(rgb, weight, bias, padding=1)
    torch.testing.assert_close(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-4, rtol=1e-4)


def test_unet_vgg16_loads_the_offline_imagenet_features() -> None:
    from nir_colorize.models.imagenet import vgg16_path

    state = torch.load(vgg16_path(), map_location="cpu", weights_only=True)
    net = build_model("unet_vgg16", encoder_weights="lpips_vgg16")
    enc = net.core.encoder.encoder.state_dict()
    assert set(enc) == set(state) and torch.equal(enc["features.28.weight"], state["features.28.weight"])
    assert enc["features.0.weight"].shape == (64, 1, 3, 3)
    out = net(torch.rand(1, 1, 70, 90))
    assert out.shape == (1, 3, 70, 90) and out.min() >= 0 and out.max() <= 1


def test_unet_vgg16_frozen_encoder_keeps_its_imagenet_weights_while_the_decoder_learns() -> None:
    """``freeze_encoder``: an Adam step over all parameters (as the module builds it) moves the decoder only."""
    net = build_model("unet_vgg16", encoder_weights="lpips_vgg16", freeze_encoder=True)
    encoder = {k: v.clone() for k, v in net.core.encoder.state_dict().items()}
    others = {k: v.clone() for k, v in net.named_parameters() if not k.startswith("core.encoder.")}
    assert not any(p.requires_grad for p in net.core.encoder.parameters()) and others
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    nir = torch.rand(2, 1, 64, 64)
    (net(nir) - torch.rand(2, 3, 64, 64)).abs().mean().backward()
    opt.step()
    assert all(torch.equal(v, encoder[k]) for k, v in net.core.encoder.state_dict().items())
    moved = [k for k, v in net.named_parameters() if k in others and not torch.equal(v, others[k])]
    assert len(moved) > len(others) // 2


def test_nir_copy_baseline_repeats_the_nir_image() -> None:
    from nir_colorize.data.io import read_nir

    nir = torch.from_numpy(read_nir(SAMPLE / "NIR" / "field_0010_nir.png")[..., 0])[None, None]
    out = build_model("nir_copy")(nir)
    assert out.shape == (1, 3, 256, 256)
    torch.testing.assert_close(out, nir.expand(-1, 3, -1, -1), atol=1e-6, rtol=0)

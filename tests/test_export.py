"""ONNX export (``nir_colorize.export``), ``predict backend=onnxruntime`` and the deployment benchmark.

On real sample images: onnxruntime agrees with torch within 1/255 at three sizes (256x256, an odd 200x333
crop, the odd 1024x679 scene) and in ``predict``'s PNGs within one level.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")  # the `deploy` extra (requirements.lock installs it)

import onnx  # noqa: E402

from nir_colorize import export, onnx_export, pipeline, runtime  # noqa: E402
from nir_colorize.bench import deploy  # noqa: E402
from nir_colorize.data.io import read_nir  # noqa: E402
from nir_colorize.loading import load_checkpoint  # noqa: E402
from nir_colorize.offline.cache import CACHE_ENV  # noqa: E402
from nir_colorize.utils.compose import compose_config  # noqa: E402
from nir_colorize.utils.errors import user_error_message  # noqa: E402

TEST_PNG = Path("Testing") / "testing_0000_nir_reg.png"  # 256 x 256
ODD = Path("nirscene1") / "country" / "0000_nir.tiff"  # 1024 x 679
LEVEL = 1 / 255


def nir_tensor(path: Path) -> torch.Tensor:
    return torch.from_numpy(read_nir(path)[..., 0])[None, None]


@pytest.fixture(scope="module")
def linknet_onnx(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The trained LinkNet exported through the CLI's ``run`` (config ``export``)."""
    tmp = tmp_path_factory.mktemp("export")
    cfg = compose_config("export", [f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}"], output_dir=tmp / "run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return export.run(cfg)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def colornet_prepared(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ColorNet (random weights, seed 0) and its export, as the benchmark prepares them."""
    return deploy.prepare("colornet", tmp_path_factory.mktemp("colornet"))


def test_export_writes_a_checked_onnx_file_with_dynamic_shapes_and_metadata(linknet_onnx: dict) -> None:
    path = linknet_onnx["path"]
    assert path.name == "model.onnx" and path.parent.name == "run"  # default: <run dir>/model.onnx
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part") or p.suffix == ".data"]
    assert linknet_onnx["max_abs_diff"] < 1e-4 and linknet_onnx["opset"] == onnx_export.DEFAULT_OPSET
    model = onnx.load(str(path))
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {onnx_export.DEFAULT_OPSET}
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (model.graph.input[0], model.graph.output[0])]
    assert dims == [["batch", 1, "height", "width"], ["batch", 3, "height", "width"]]
    meta = onnx_export.read_metadata(path)
    assert (meta["model"], meta["pad_multiple"], meta["output_stride"]) == ("linknet", "32", "32")
    assert "best.ckpt" in meta["source"] and len(meta["weights_sha256"]) == 16
    assert meta["train_long_side"] == "384"  # the training scale travels with the export (scale=auto reads it)
    assert runtime.OnnxColorizer(path).train_long_side == 384


def test_onnxruntime_matches_torch_on_real_images(linknet_onnx: dict, trained_run: Path, sample_dir: Path,
                                                  one_thread) -> None:
    net = load_checkpoint(trained_run / "checkpoints" / "best.ckpt").net.eval()
    ort_net = runtime.OnnxColorizer(linknet_onnx["path"])
    assert (ort_net.pad_multiple, ort_net.output_stride, ort_net.threads) == (32, 32, 1)
    assert next(ort_net.parameters()).device == torch.device("cpu")
    scene = nir_tensor(sample_dir / ODD)
    crops = [nir_tensor(sample_dir / TEST_PNG), scene[..., 101:301, 203:536], scene]
    assert [tuple(c.shape[-2:]) for c in crops] == [(256, 256), (200, 333), (679, 1024)]
    for nir in crops:
        with torch.inference_mode():
            expected, got = net(nir), ort_net(nir)
        assert got.shape == expected.shape
        assert float((got - expected).abs().max()) <= LEVEL, nir.shape
    batch = torch.cat([scene[..., :200, :333], scene[..., 300:500, 600:933]])  # dynamic batch
    with torch.inference_mode():
        assert float((ort_net(batch) - net(batch)).abs().max()) <= LEVEL


def test_colornet_exports_with_dynamic_odd_sizes(colornet_prepared: dict, sample_dir: Path, one_thread) -> None:
    """ColorNet's GLFFNet resizes its /32 branch to the /16 map's size (bilinear): the size must stay dynamic."""
    net, ort_net = colornet_prepared["net"], runtime.OnnxColorizer(colornet_prepared["onnx"])
    assert (ort_net.pad_multiple, ort_net.output_stride, ort_net.model_name) == (32, 16, "colornet")
    scene = nir_tensor(sample_dir / ODD)
    for nir in (scene[..., 7:82, 11:122], scene[..., :12, :27], torch.cat([scene[..., :65, :97]] * 2)):
        with torch.inference_mode():  # 75x111, 12x27 (at most its padding: replicated), batch 2 at 65x97
            expected, got = net(nir), ort_net(nir)
        assert got.shape == expected.shape
        assert float((got - expected).abs().max()) <= LEVEL, nir.shape


def predict_cfg(inputs: Path, out: Path, tmp_path: Path, *overrides: str):
    return compose_config("predict", [f"input={inputs}", f"output={out}", "trainer.accelerator=cpu", "progress=false",
                                      "precision=fp32", *overrides], output_dir=tmp_path / "run")


def test_predict_onnxruntime_writes_the_torch_pngs(linknet_onnx: dict, trained_run: Path, sample_dir: Path,
                                                   tmp_path: Path, one_thread) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_dir / TEST_PNG, inputs)
    shutil.copy(sample_dir / ODD, inputs)  # 1024x679: above tile_above, tiled
    ckpt = f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}"
    torch_out, ort_out = tmp_path / "torch", tmp_path / "ort"
    pipeline.run(predict_cfg(inputs, torch_out, tmp_path, ckpt))
    result = pipeline.run(predict_cfg(inputs, ort_out, tmp_path, "backend=onnxruntime",
                                     f"onnx_path={linknet_onnx['path']}"))
    assert sorted(p.name for p in result.written) == ["0000_nir.png", "testing_0000_nir_reg.png"]
    for name in ("0000_nir.png", "testing_0000_nir_reg.png"):
        a = np.asarray(Image.open(torch_out / name), dtype=np.int16)
        b = np.asarray(Image.open(ort_out / name), dtype=np.int16)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, name
    # fusion=bfwls after the onnxruntime network, as after torch's
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(np.asarray(Image.open(sample_dir / TEST_PNG).convert("L"))[:96, :131]).save(small / "s.png")
    pipeline.run(predict_cfg(small, tmp_path / "tf", tmp_path, ckpt, "fusion=bfwls"))
    pipeline.run(predict_cfg(small, tmp_path / "of", tmp_path, "fusion=bfwls", "backend=onnxruntime",
                            f"onnx_path={linknet_onnx['path']}"))
    a = np.asarray(Image.open(tmp_path / "tf" / "s.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "of" / "s.png"), dtype=np.int16)
    assert np.abs(a - b).max() <= 1


def test_predict_onnxruntime_without_onnx_path_exports_once_into_the_cache(
        linknet_onnx: dict, trained_run: Path, sample_dir: Path, tmp_path: Path, monkeypatch, one_thread) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    calls = []

    def fake_export(net, path, opset, model_name=None, meta=None):  # the real one is tested above
        calls.append((model_name, opset, meta))
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(linknet_onnx["path"], path)

    monkeypatch.setattr(onnx_export, "export_onnx", fake_export)
    (tmp_path / "in").mkdir()
    Image.fromarray(np.asarray(Image.open(sample_dir / TEST_PNG).convert("L"))[:64, :80]).save(tmp_path / "in" / "a.png")
    for out in ("o1", "o2"):
        cfg = predict_cfg(tmp_path / "in", tmp_path / out, tmp_path, "backend=onnxruntime",
                          f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}")
        assert pipeline.run(cfg).written
    cached = list((tmp_path / "cache" / "onnx").glob("linknet-*-opset20-*.onnx"))
    assert len(cached) == 1 and len(calls) == 1 and calls[0][:2] == ("linknet", onnx_export.DEFAULT_OPSET)


def test_missing_or_foreign_onnx_file_is_a_clear_error(tmp_path: Path, sample_dir: Path) -> None:
    missing = tmp_path / "nowhere" / "model.onnx"
    cfg = predict_cfg(sample_dir / TEST_PNG, tmp_path / "out", tmp_path, "backend=onnxruntime",
                      f"onnx_path={missing}")
    with pytest.raises(FileNotFoundError, match="no such ONNX file") as info:
        pipeline.run(cfg)
    assert str(missing) in user_error_message(info.value)  # the CLI's one error line names it
    foreign = tmp_path / "model.onnx"
    foreign.write_text("not a model")
    with pytest.raises(Exception, match="not an ONNX model") as info:
        runtime.OnnxColorizer(foreign)
    assert str(foreign) in user_error_message(info.value)
    with pytest.raises(Exception, match="backend=cuda: choose one of torch, onnxruntime"):
        pipeline.run(predict_cfg(sample_dir / TEST_PNG, tmp_path / "out", tmp_path, "backend=cuda"))


def test_export_refuses_other_formats_and_unknown_opsets(tmp_path: Path) -> None:
    for override, message in (("format=tflite", "format=tflite: exports as onnx"), ("opset=11", "opset=11: ")):
        cfg = compose_config("export", ["ckpt_path=x.ckpt", override], output_dir=tmp_path / "run")
        with pytest.raises(Exception, match=message) as info:
            export.run(cfg)
        assert user_error_message(info.value)


def test_deploy_bench_at_a_tiny_size(colornet_prepared: dict, tmp_path: Path, one_thread) -> None:
    assert deploy.parse_size("2048x2048:tiled") == (2048, 2048, True)
    result = deploy.run_bench(["colornet"], [(97, 67, False), (150, 130, True)], warmup=0, repeat=1, tile=64,
                              overlap=32, bf16="always", prepared={"colornet": colornet_prepared}, log=lambda _: None)
    rows = result["rows"]
    assert [(r["size"], r["tiled"], r["backend"]) for r in rows] == [
        (size, tiled, backend) for size, tiled in (("97x67", False), ("150x130", True)) for backend in deploy.BACKENDS]
    assert all(r["megapixels_per_s"] > 0 for r in rows)
    ort_rows = [r for r in rows if r["backend"] == "onnxruntime"]
    assert all(r["max_abs_diff_levels"] <= 1 and (r["psnr_vs_torch_fp32_db"] or 99) > 60 for r in ort_rows)
    assert all(r["psnr_vs_torch_fp32_db"] > 15 for r in rows if r["backend"] == "torch-bf16")
    json_path, md_path = deploy.write(result, tmp_path)
    assert json_path.name.startswith("deploy-cpu-") and json.loads(json_path.read_text())["rows"] == json.loads(
        json.dumps(rows))
    text = md_path.read_text()
    assert "| colornet | 150x130 tiled | onnxruntime |" in text and "1.00x" in text

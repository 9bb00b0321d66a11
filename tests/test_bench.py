"""``python -m nir_colorize.bench``: a tiny configuration runs every section and writes consistent files;
the hardware probe (bf16 support, fast precision) on canned ``/proc/cpuinfo`` texts."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nir_colorize.bench import report
from nir_colorize.bench.__main__ import BenchConfig, main, run_bench
from nir_colorize.bench.cases import BASELINE, has_module, real_nir, run_isolated
from nir_colorize.bench.timing import measure, summarize
from nir_colorize.utils import hardware

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2
"""
COOPER_LAKE = "model name\t: Intel(R) Xeon(R) Platinum 8380H CPU @ 2.90GHz\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
ZEN3 = "model name\t: AMD EPYC 7B13 64-Core Processor\nflags\t\t: fpu sse2 avx avx2 fma sha_ni vaes\n"
AMX_WITHOUT_TILE = "flags\t\t: avx2 amx_bf16\n"  # a kernel that does not enable the AMX tiles
GRAVITON3 = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_summarize_matches_numpy_quartiles():
    seconds = [0.5, 0.1, 0.4, 0.2, 0.3, 0.9]
    t = summarize(seconds)
    assert t.median == pytest.approx(np.median(seconds))
    assert (t.q1, t.q3) == pytest.approx(tuple(np.percentile(seconds, [25, 75])))  # numpy "linear" = inclusive
    assert (t.min, t.max, t.n) == (0.1, 0.9, 6)
    with pytest.raises(ValueError, match="at least one"):
        summarize([])


def test_measure_warms_up_then_times_each_call():
    calls = []
    t = measure(lambda: calls.append(1), warmup=2, repeat=3)
    assert len(calls) == 5 and t.n == 3 and 0 <= t.min <= t.median <= t.max
    with pytest.raises(ValueError, match="repeat"):
        measure(lambda: None, repeat=0)


def test_real_nir_crops_and_mirror_extends_the_sample():
    small, big = real_nir(64, 48), real_nir(1500, 700)
    assert small.shape == (48, 64) and big.shape == (700, 1500) and big.dtype == np.float32
    assert 0 <= big.min() < big.max() <= 1
    assert np.array_equal(big[:, :10], big[:, :10]) and big.std() > 0.01


def test_machine_name_and_slug():
    assert report.slug("AMD EPYC 7B13 64-Core Processor") == "amd-epyc-7b13"
    assert report.slug("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz") == "intel-xeon-platinum-8375c"
    assert report.machine_name("cpu").startswith(f"cpu-{report.cpu_count()}c-")


def test_cpuinfo_flags_and_model_of_the_first_cpu():
    assert {"avx512_bf16", "amx_bf16", "amx_tile"} <= hardware.cpu_flags(SAPPHIRE_RAPIDS)
    assert hardware.cpu_model(SAPPHIRE_RAPIDS) == "Intel(R) Xeon(R) Platinum 8480+"
    assert "bf16" in hardware.cpu_flags(GRAVITON3) and hardware.cpu_flags("") == set()
    assert report.slug(hardware.cpu_model(ZEN3)) == "amd-epyc-7b13"


@pytest.mark.parametrize(("text", "avx512", "amx", "fast"), [
    (SAPPHIRE_RAPIDS, True, True, True), (COOPER_LAKE, True, False, True), (ZEN3, False, False, False),
    (AMX_WITHOUT_TILE, False, False, False), (GRAVITON3, False, False, False), ("", False, False, False)])
def test_cpu_bf16_support_from_cpuinfo(monkeypatch, text, avx512, amx, fast):
    support = hardware.cpu_bf16_support(text)
    assert (support["avx512_bf16"], support["amx_bf16"] and support["amx_tile"], support["fast_bf16"]) == (avx512, amx,
                                                                                                        fast)
    assert support["capability"] == torch.backends.cpu.get_cpu_capability()
    monkeypatch.setattr(hardware, "read_cpuinfo", lambda: text)
    assert hardware.fast_precision("cpu") == ("bf16-mixed" if fast else "32-true")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)  # no oneDNN: no fast bf16 kernels
    assert hardware.fast_precision("cpu") == "32-true"


def test_cpuinfo_missing_means_no_flags(monkeypatch, tmp_path):
    monkeypatch.setattr(hardware, "CPUINFO", tmp_path / "absent")
    assert hardware.read_cpuinfo() == "" and not hardware.cpu_bf16_support()["fast_bf16"]
    assert hardware.fast_precision("cpu") == "32-true" and hardware.cpu_model()


@pytest.mark.parametrize("native", [True, False])
def test_fast_precision_on_cuda_needs_native_bf16(monkeypatch, native):
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device", lambda _dev: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: asked.append(
        including_emulation) or native)
    assert hardware.fast_precision("cuda:1") == ("bf16-mixed" if native else "32-true") and asked == [False]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.fast_precision("cuda") == "32-true" and hardware.fast_precision("meta") == "32-true"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """Every section at tiny sizes, one repetition, in-process (fast); the baseline and LinkNet only."""
    cfg = BenchConfig(warmup=0, repeat=1, train_size=32, train_batch=2, train_models=["linknet"], infer_model="linknet",
                      infer_sizes=[(64, 48, False), (160, 96, True)], tile=64, overlap=32, fusion_sizes=[(48, 32)],
                      isolate=False)
    return run_bench(cfg, tmp_path_factory.mktemp("bench"), log=lambda _: None)


def test_tiny_run_writes_json_with_every_section(tiny_run):
    json_path, md_path = tiny_run
    result = json.loads(json_path.read_text())
    assert json_path.stem == md_path.stem == result["meta"]["machine"] == report.machine_name("cpu")
    for key in ("torch", "torch_threads", "date", "git_commit", "cpu", "cpus", "total_s"):
        assert key in result["meta"], key
    assert result["meta"]["complete"] is True
    assert set(result) >= {"meta", "config", "training", "inference", "fusion"}

    train = result["training"]
    assert [r["model"] for r in train["rows"]] == [BASELINE, "linknet"]
    base = train["rows"][0]
    for r in train["rows"]:
        assert "error" not in r, r
        s = r["seconds"]
        assert 0 < s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["n"] == 1
        assert r["images_per_s"] == pytest.approx(train["batch"] / s["median"])
        assert r["throughput_ratio_to_baseline"] == pytest.approx(r["images_per_s"] / base["images_per_s"])
        assert r["parameters"] > 1e6
    assert base["throughput_ratio_to_baseline"] == pytest.approx(1.0)

    rows = result["inference"]["rows"]
    assert [r["size"] for r in rows] == ["64x48", "160x96"]
    for r, (w, h) in zip(rows, [(64, 48), (160, 96)], strict=True):
        if r["tiled"] and not has_module("nir_colorize.inference"):
            assert "not available" in r["error"]
            continue
        assert "error" not in r, r
        assert r["megapixels_per_s"] == pytest.approx(w * h / 1e6 / r["seconds"]["median"])

    fusion = result["fusion"]
    if not has_module("nir_colorize.bench.fusion"):
        assert fusion["rows"] == [] and "not available" in fusion["note"]
    else:
        assert {r["op"] for r in fusion["rows"]} == {"wls", "bfwls"}
        assert {r["solver"] for r in fusion["rows"] if r["op"] == "wls"} >= {"direct"}
        for r in fusion["rows"]:
            assert "error" not in r, r
            assert 0 < r["seconds"]["min"] <= r["seconds"]["median"] <= r["seconds"]["max"]
            direct = next((d for d in fusion["rows"] if (d["op"], d["size"], d["solver"]) == (r["op"], r["size"], "direct")),
                          None)
            if direct is None:
                assert r["speedup_vs_direct"] is None
            else:
                assert r["speedup_vs_direct"] == pytest.approx(direct["seconds"]["median"] / r["seconds"]["median"])


def test_tiny_run_writes_markdown_tables(tiny_run):
    text = tiny_run[1].read_text()
    for heading in ("## Training step", "## Inference", "## Fusion"):
        assert heading in text
    assert f"| {BASELINE} |" in text and "| linknet |" in text and "| 64x48 | whole image |" in text
    assert "| 1.00 |" in text  # the baseline against itself


def test_isolated_case_reports_its_own_peak_memory():
    r = run_isolated({"kind": "infer", "model": "linknet", "width": 64, "height": 64, "tile": None, "overlap": None,
                      "device": "cpu", "warmup": 0, "repeat": 1}, timeout=300)
    assert "error" not in r, r
    assert r["isolated"] and 0 < r["rss_setup_mb"] <= r["peak_rss_mb"]
    assert r["peak_cuda_mb"] is None and math.isfinite(r["megapixels_per_s"])


def test_isolated_failure_is_reported_not_raised():
    r = run_isolated({"kind": "train", "model": "no_such_model", "size": 32, "batch": 1, "device": "cpu",
                      "warmup": 0, "repeat": 1}, timeout=300)
    assert "no_such_model" in r["error"]


def test_cli_rejects_a_missing_device(tmp_path):
    for bad in ("tpu", "meta"):
        with pytest.raises(SystemExit, match=f"--device '{bad}': choose cpu or cuda"):
            main(["--device", bad, "--out", str(tmp_path)])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="CUDA is not available"):
            main(["--device", "cuda", "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())

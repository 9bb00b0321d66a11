"""``python -m nir_colorize.bench``: a tiny configuration runs every section and writes consistent files;
the hardware probe (bf16 support, fast precision) on canned ``/proc/cpuinfo`` texts."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nir_colorize.bench import report, training
from nir_colorize.bench.__main__ import BenchConfig, _csv, main, run_bench
from nir_colorize.bench.common import BASELINE, has_module, real_nir, real_rgb, run_isolated
from nir_colorize.bench.timing import measure, summarize
from nir_colorize.utils import hardware
from tests.conftest import task_nices

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


def test_measure_reports_the_cpu_share_of_the_timed_calls():
    """CPU time / (wall x torch threads): ~0 while sleeping, ~1/threads for a single-threaded busy loop."""
    def busy() -> None:
        end = time.perf_counter() + 0.03
        while time.perf_counter() < end:
            pass

    assert measure(lambda: time.sleep(0.03), warmup=0, repeat=2).cpu_share < 0.2
    assert measure(busy, warmup=0, repeat=2).cpu_share > 0.3 / torch.get_num_threads()
    seconds = {"median": 1.0, "q1": 1.0, "q3": 1.0, "min": 1.0, "max": 1.0, "n": 1}
    assert "CPU share 40 %" in report._t(seconds | {"cpu_share": 0.4})
    assert "CPU share" not in report._t(seconds | {"cpu_share": 0.95}) + report._t(seconds)


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


def test_resolve_precisions_and_combos(monkeypatch):
    monkeypatch.setattr(training, "fast_precision", lambda _device: "bf16-mixed")
    assert training.resolve_precisions(["fp32", "fast", "bf16"], "cpu") == ["fp32", "bf16"]
    monkeypatch.setattr(training, "fast_precision", lambda _device: "32-true")
    assert training.resolve_precisions(["fp32", "fast"], "cpu") == ["fp32"]  # fast = fp32 here: one row, not two
    with pytest.raises(ValueError, match="fp16"):
        training.resolve_precisions(["fp16"], "cpu")
    assert training.combos(["bf16", "fp32"], ["channels_last", "nchw"]) == [
        ("fp32", "nchw"), ("bf16", "channels_last"), ("bf16", "nchw"), ("fp32", "channels_last")]
    with pytest.raises(ValueError, match="nhwc"):
        training.combos(["fp32"], ["nhwc"])
    assert _csv(("a", "b"))("a, b") == ["a", "b"] and _csv(None)("x") == ["x"]
    with pytest.raises(argparse.ArgumentTypeError):
        _csv(("a",))("a,c")


def test_real_batch_is_side_by_side_crops_of_the_sample():
    nir, target = training.real_batch(3, 40, "cpu")
    assert nir.shape == (3, 1, 40, 40) and target.shape == (3, 3, 40, 40)
    assert torch.equal(nir[1, 0], torch.from_numpy(real_nir(120, 40))[:, 40:80])
    assert torch.equal(target[2], torch.from_numpy(real_rgb(120, 40))[:, 80:].permute(2, 0, 1) * 2 - 1)
    assert -1 <= target.min() < target.max() <= 1


def test_step_flops_of_one_convolution_forward_and_backward():
    """Forward: 2 x B x H x W x Cout x Cin x k x k; backward: the weight gradient only (the input needs none)."""
    from nir_colorize.models import Colorizer

    net = Colorizer(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.Tanh()), output_stride=1)
    opt = torch.optim.Adam(net.parameters())
    for precision in ("fp32", "bf16"):
        flops: dict = {}
        loss = training.step(net, opt, torch.rand(2, 1, 8, 8), torch.rand(2, 3, 8, 8), precision, flops)
        assert flops == {"forward": 2 * 2 * 8 * 8 * 3 * 9, "backward": 2 * 2 * 8 * 8 * 3 * 9}
        assert loss.dtype == torch.float32 and loss > 0


def test_compare_relative_differences():
    ref = {"loss": 2.0, "grad": [torch.tensor([[3.0, 0.0]]), torch.tensor([4.0])], "update": [torch.ones(2), torch.ones(1)]}
    other = {"loss": 2.5, "grad": [torch.tensor([[3.0, 0.0]]), torch.tensor([-4.0])],
             "update": [torch.ones(2), -torch.ones(1)]}
    c = training.compare(ref, other, ["w", "b"])
    assert c["loss_rel_diff"] == pytest.approx(0.25) and c["grad_rel_diff"] == pytest.approx(8 / 5)
    assert c["grad_cosine"] == pytest.approx((9 - 16) / 25) and c["update_rel_diff"] == pytest.approx(2 / math.sqrt(3))
    assert (c["worst_grad_param"], c["worst_grad_rel_diff"]) == ("w", 0.0)  # weights only: the bias is left out
    same = training.compare(ref, ref, ["w", "b"])
    assert same["grad_rel_diff"] == same["loss_rel_diff"] == 0 and same["grad_cosine"] == pytest.approx(1)


def test_derive_ratios_flops_and_peak_fractions():
    def row(model, precision, layout, seconds):
        return {"model": model, "precision": precision, "layout": layout, "seconds": {"median": seconds},
                "images_per_s": 4 / seconds}

    rows = [row("base", "fp32", "nchw", 1.0), row("base", "bf16", "channels_last", 0.5), row("m", "fp32", "nchw", 2.0),
            row("m", "bf16", "channels_last", 0.5), {"model": "m", "precision": "bf16", "layout": "nchw", "error": "x"}]
    profiles = {"base": {"flops_per_step": 1e9}, "m": {"error": "failed"}}
    peaks = {"fp32": {"flop_per_s": 4e9}, "bf16": {"flop_per_s": 8e9}}
    training.derive(rows, profiles, peaks, "base")
    assert [r["speedup_vs_fp32"] for r in rows] == [1.0, 2.0, 1.0, 4.0, None]
    assert [r["throughput_ratio_to_baseline"] for r in rows] == [1.0, 1.0, 0.5, 1.0, None]
    assert rows[1]["achieved_flop_per_s"] == 2e9 and rows[1]["peak_fraction"] == 0.25
    assert rows[0]["peak_fraction"] == 0.25 and rows[2]["flops_per_step"] is None and rows[2]["peak_fraction"] is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """Every section at tiny sizes, one repetition, in-process (fast); the baseline and LinkNet only, in fp32
    and bf16 (whatever this CPU has), NCHW and channels_last. 64 x 64 (not less): the deepest maps (2 x 2)
    still give BatchNorm 8 values per channel, so that the gradients are well defined."""
    cfg = BenchConfig(warmup=0, repeat=1, train_size=64, train_batch=2, train_models=["linknet"], infer_model="linknet",
                      precisions=["fp32", "bf16"], peak_size=256, infer_sizes=[(64, 48, False), (160, 96, True)],
                      tile=64, overlap=32, fusion_sizes=[(48, 32)], fusion_set_size=(48, 32),
                      fusion_set_images=["country", "scene_450"], fusion_busy=False, isolate=False)
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
    pairs = [("fp32", "nchw"), ("fp32", "channels_last"), ("bf16", "nchw"), ("bf16", "channels_last")]
    assert [(r["model"], r["precision"], r["layout"]) for r in train["rows"]] == [
        (m, *pair) for m in (BASELINE, "linknet") for pair in pairs]
    assert train["before"] == ["fp32", "nchw"] and train["after"] == ["bf16", "channels_last"]
    assert train["fast_precision"] == hardware.fast_precision("cpu")
    assert train["lightning_precision"] == {"fp32": "32-true", "bf16": "bf16-mixed"}
    for p in ("fp32", "bf16"):
        peak = train["peak"][p]
        assert peak["n"] == 256 and peak["flop_per_s"] == pytest.approx(2 * 256**3 / peak["seconds"]["median"])
        assert peak["flop_per_s"] == max(train["peak_runs"][when][p]["flop_per_s"] for when in ("start", "end"))
    rows = {(r["model"], r["precision"], r["layout"]): r for r in train["rows"]}
    for (model, precision, layout), r in rows.items():
        assert "error" not in r, r
        s = r["seconds"]
        assert 0 < s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["n"] == 1
        assert r["images_per_s"] == pytest.approx(train["batch"] / s["median"])
        base = rows[(BASELINE, precision, layout)]
        assert r["throughput_ratio_to_baseline"] == pytest.approx(r["images_per_s"] / base["images_per_s"])
        assert r["speedup_vs_fp32"] == pytest.approx(r["images_per_s"] / rows[(model, "fp32", "nchw")]["images_per_s"])
        assert r["flops_per_step"] == train["profiles"][model]["flops_per_step"] > 1e8
        assert r["achieved_flop_per_s"] == pytest.approx(r["flops_per_step"] / s["median"])
        assert r["peak_fraction"] == pytest.approx(r["achieved_flop_per_s"] / train["peak"][precision]["flop_per_s"])
        assert r["parameters"] > 1e6
    for model, profile in train["profiles"].items():
        assert "error" not in profile, profile
        assert profile["flops_per_step"] == profile["forward_flops"] + profile["backward_flops"]
        assert 1.5 < profile["backward_flops"] / profile["forward_flops"] < 2.5  # ~2x: input and weight gradients
        acc = {(a["precision"], a["layout"]): a for a in profile["accuracy"]}
        assert list(acc) == pairs[1:]
        assert acc["fp32", "channels_last"]["loss_rel_diff"] < 1e-4  # only the summation order changes
        assert acc["fp32", "channels_last"]["grad_rel_diff"] < 0.05, (model, acc)
        for (precision, layout), a in acc.items():
            assert a["channels_last_conv_inputs"] == (1.0 if layout == "channels_last" else 0.0), (model, a)
            assert a["worst_grad_rel_diff"] >= a["grad_rel_diff"] * 0.5 and a["worst_grad_param"].endswith("weight")
            if precision == "bf16":  # bf16 keeps 8 bits of mantissa: the loss moves, a little
                assert 0 < a["loss_rel_diff"] < 0.01 and a["grad_cosine"] < 1

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
    for heading in ("## Training step", "### Before (fp32 NCHW) and after (bf16 channels_last)", "### Accuracy cost",
                    "## Inference", "## Fusion"):
        assert heading in text
    assert ("| variant | precision / layout | parameters | s / step | images / s | GFLOP / step | achieved GFLOP/s "
            f"| % of peak | speed-up vs fp32 | x {BASELINE} | peak memory MiB |") in text
    assert f"| {BASELINE} | fp32 NCHW |" in text and "| linknet | bf16 channels_last |" in text
    assert "| 64x48 | whole image |" in text and "Peak (one n x n matmul, this run; the faster" in text
    assert "| 1.00 | 1.00 |" in text  # the baseline in fp32 NCHW against itself, twice


def test_markdown_of_a_result_without_the_new_training_fields():
    """A result written before precision / layout rows existed (the committed ones) still renders."""
    path = Path(report.PROJECT_ROOT) / "experiments" / "bench" / "cpu-2c-amd-epyc.json"
    if not path.exists():
        pytest.skip("no committed result")
    text = report.markdown(json.loads(path.read_text()))
    assert "| linknet | fp32 NCHW | 21.8 M |" in text and "## Fusion" in text


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
    for option, bad in (("--precision", "fp32,fp16"), ("--layout", "nhwc"), ("--sections", "training,scaling")):
        with pytest.raises(SystemExit):  # argparse: exit status 2, before anything is measured
            main([option, bad, "--device", "cpu", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="unknown section"):
        run_bench(BenchConfig(sections=["scaling"]), tmp_path)
    assert not any(tmp_path.iterdir())


def test_fusion_benchmark_set_rows_are_exact_and_summarised(tiny_run):
    fusion_set = json.loads(tiny_run[0].read_text())["fusion"]["set"]
    assert "error" not in fusion_set, fusion_set
    rows = fusion_set["rows"]
    assert [r["name"] for r in rows] == ["country", "scene_450"]
    assert list(fusion_set["orderings"])[0] == rows[0]["direct_ordering"]  # the fastest ordering is the one used
    for r in rows:
        assert r["iterations"] >= 1 and r["pcg"]["median_s"] > 0 and r["max_abs_diff_vs_direct"] <= 1 / 510
        assert r["speedup_vs_direct"] == pytest.approx(r["direct"]["median_s"] / r["pcg"]["median_s"])
    assert rows[1]["source_size"] == [384, 256] and not rows[1]["upscaled"]  # 48 x 32 is a downscale
    spread = fusion_set["spread"]
    assert spread["pcg_max_s"] == max(r["pcg"]["median_s"] for r in rows)
    assert spread["iterations_max"] == max(r["iterations"] for r in rows)
    text = tiny_run[1].read_text()
    assert "### The exact WLS on real images of several scene types" in text and "| scene_450 | 384x256 |" in text


def test_thread_policies_are_timed_quiet_and_beside_a_busy_process(monkeypatch):
    from nir_colorize.bench import threads

    monkeypatch.setattr(threads, "POLICIES", {"1 thread": threads.POLICIES["1 thread"]})  # one policy: 2 fresh processes
    with threads.busy(settle=1.0) as proc:
        assert proc.poll() is None  # running while the block runs
    assert proc.poll() is not None  # and gone after it
    with threads.busy(settle=1.0, nice=3) as proc:  # the "training" neighbour: every thread at its priority
        assert set(task_nices(proc.pid)) == {os.getpriority(os.PRIO_PROCESS, 0) + 3}
    result = threads.run("urban", repeat=1, size=(48, 32), log=lambda _: None)
    rows = result["policies"]
    assert all(rows["1 thread"][state]["threads"] == 1 for state in threads.STATES)  # its env applied
    assert set(threads.STATES) == {"quiet", "busy", "training"} and result["train_nice"] == threads.train_nice() == 10
    for row in rows.values():
        assert set(row) == {*threads.STATES, "busy_over_quiet"}
        for state in threads.STATES:
            assert "error" not in row[state], row[state]
            assert 0 < row[state]["wls"]["min_s"] <= row[state]["wls"]["median_s"] <= row[state]["wls"]["max_s"]
        assert row["busy_over_quiet"]["busy"]["wls"] == pytest.approx(
            row["busy"]["wls"]["median_s"] / row["quiet"]["wls"]["median_s"])
    assert result["chosen"].startswith("OMP_WAIT_POLICY=PASSIVE where other processes") and "load-adaptive" in result["chosen"]
    text = "\n".join(threads.markdown(result))
    assert "| 1 thread | 1 |" in text and "Chosen default: OMP_WAIT_POLICY=PASSIVE where" in text

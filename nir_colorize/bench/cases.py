"""Benchmark cases (training step, inference, fusion), each runnable in a fresh process.

A case is a JSON-able dict ``{"kind": "train" | "train_profile" | "matmul" | "infer" | "fusion" | "predict", ...}``
(the training kinds are in ``nir_colorize.bench.training``); ``run_case`` measures it
in this process, ``run_isolated`` in a fresh ``python -m nir_colorize.bench.cases`` subprocess so
that its peak resident memory (``VmHWM``, see ``timing.peak_rss_mb``) belongs to that case alone.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import traceback

import numpy as np
import torch

from nir_colorize import PROJECT_ROOT
from nir_colorize.bench.timing import cuda_peak_mb, measure, peak_rss_mb, reset_cuda_peak

SOURCE = PROJECT_ROOT / "data" / "sample" / "nirscene1" / "country" / "0000_nir.tiff"
SOURCE_RGB = SOURCE.with_name("0000_rgb.tiff")
BASELINE = "unet_resnet34"
MARKER = "BENCH_RESULT "


def has_module(name: str) -> bool:
    """Whether ``name`` (e.g. ``nir_colorize.inference``) can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def paper_model() -> str:
    """The paper's model (``colornet``) when the registry has it, else ``linknet``."""
    from nir_colorize.models import MODELS

    return "colornet" if "colornet" in MODELS else "linknet"


def build_net(name: str) -> torch.nn.Module:
    """A model of ``MODELS`` (random weights), or the baseline: plain smp ``Unet``-ResNet34, 1 in, 3 out, tanh."""
    from nir_colorize.models import Colorizer, build_model

    if name != BASELINE:
        return build_model(name)
    import segmentation_models_pytorch as smp

    unet = smp.Unet(encoder_name="resnet34", encoder_weights=None, in_channels=1, classes=3, activation=None)
    return Colorizer(torch.nn.Sequential(unet, torch.nn.Tanh()), output_stride=32)


def fit(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """``img`` (H x W [x C]) centre-cropped or mirror-extended to ``width`` x ``height``."""
    reps_h, reps_w = -(-height // img.shape[0]), -(-width // img.shape[1])
    if reps_h > 1 or reps_w > 1:  # mirror-extend: no hard seams, content like a real scene
        pad = ((0, (reps_h - 1) * img.shape[0]), (0, (reps_w - 1) * img.shape[1])) + ((0, 0),) * (img.ndim - 2)
        img = np.pad(img, pad, mode="symmetric")
    top, left = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
    return np.ascontiguousarray(img[top : top + height, left : left + width])


def real_nir(width: int, height: int) -> np.ndarray:
    """The real sample NIR image (float32 HxW in [0, 1]), centre-cropped or mirror-extended to ``width`` x ``height``."""
    from nir_colorize.data.io import read_nir

    return fit(read_nir(SOURCE)[..., 0], width, height)


def real_rgb(width: int, height: int) -> np.ndarray:
    """The sample's RGB image (float32 HxWx3 in [0, 1]), cropped or extended as ``real_nir``."""
    from nir_colorize.data.io import read_rgb

    return fit(read_rgb(SOURCE_RGB), width, height)


def train_case(**kwargs) -> dict:
    """Seconds per training step at one precision and layout (``nir_colorize.bench.training.train_case``)."""
    from nir_colorize.bench.training import train_case as run

    return run(**kwargs)


def train_profile_case(**kwargs) -> dict:
    """FLOPs per step and the accuracy of bf16 / channels_last (``nir_colorize.bench.training``)."""
    from nir_colorize.bench.training import train_profile_case as run

    return run(**kwargs)


def matmul_case(**kwargs) -> dict:
    """The matmul peak at one dtype (``nir_colorize.bench.training.matmul_case``)."""
    from nir_colorize.bench.training import matmul_case as run

    return run(**kwargs)


def infer_case(model: str, width: int, height: int, tile: int | None, overlap: int | None, device: str,
               warmup: int, repeat: int) -> dict:
    """Seconds per colorization of one real NIR image (``inference.colorize``: tiled when ``tile`` is set)."""
    if tile is not None and not has_module("nir_colorize.inference"):
        raise RuntimeError("tiled inference not available (nir_colorize.inference is missing)")
    torch.manual_seed(0)
    net = build_net(model).to(device).eval()
    nir = torch.from_numpy(real_nir(width, height))[None, None].to(device)
    extra: dict = {}
    if has_module("nir_colorize.inference"):
        from nir_colorize import inference

        tile_opts = {"tile": tile or inference.TILE, "overlap": inference.OVERLAP if overlap is None else overlap,
                     "tile_above": 0} if tile is not None else {"tile": None}
        extra["tiling"] = {k: v for k, v in tile_opts.items() if k != "tile_above"}

        def run() -> None:
            with torch.inference_mode():
                inference.colorize(net, nir, **tile_opts)
    else:
        def run() -> None:
            with torch.inference_mode():
                net(nir)

    return timed(run, device, warmup, repeat, per_call=width * height / 1e6, unit="megapixels_per_s", **extra)


def fusion_case(width: int, height: int, device: str, warmup: int, repeat: int) -> dict:
    """WLS with every solver and the whole BFWLS at one size on the real sample, through
    ``nir_colorize.bench.fusion.run`` (which warms up once and times ``repeat`` calls, ``direct`` once)."""
    import contextlib
    import io

    from nir_colorize.bench import fusion as fusion_bench  # the fusion package's own benchmark

    rss_setup = peak_rss_mb()
    reset_cuda_peak(device)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its own table
        raw = fusion_bench.run(size=(width, height), device=device, repeat=repeat)
    return {"raw": raw, "rss_setup_mb": rss_setup, "peak_rss_mb": peak_rss_mb(), "peak_cuda_mb": cuda_peak_mb(device)}


def fusion_set_case(width: int, height: int, device: str, repeat: int, images: list[str] | None = None) -> dict:
    """The exact WLS on every image of the fusion benchmark set, against the fastest direct solve
    (``nir_colorize.bench.fusion.run_set``, all SuperLU orderings timed on the first image)."""
    from nir_colorize.bench import fusion as fusion_bench

    return fusion_bench.run_set(size=(width, height), device=device, repeat=repeat, images=images, orderings=True,
                                log=lambda s: print(s, file=sys.stderr, flush=True))


def threads_case(image: str, repeat: int, size: list[int]) -> dict:
    """Every OpenMP thread policy quiet and beside a busy process (``nir_colorize.bench.threads.run``)."""
    from nir_colorize.bench import threads

    return threads.run(image, repeat, tuple(size), log=lambda s: print(s, file=sys.stderr, flush=True))


def timed(fn, device: str, warmup: int, repeat: int, *, per_call: float, unit: str, **extra) -> dict:
    """``measure`` plus memory: RSS before the first call and peak after, CUDA peak allocated."""
    rss_setup = peak_rss_mb()
    reset_cuda_peak(device)
    t = measure(fn, warmup=warmup, repeat=repeat, device=device)
    return {"seconds": t.as_dict(), unit: per_call / t.median, "rss_setup_mb": rss_setup,
            "peak_rss_mb": peak_rss_mb(), "peak_cuda_mb": cuda_peak_mb(device), **extra}


def predict_case(**kwargs) -> dict:
    """End to end ``nir_colorize.predict`` of one image (``nir_colorize.bench.predict``)."""
    from nir_colorize.bench.predict import predict_case as run

    return run(**kwargs)


CASES = {"train": train_case, "train_profile": train_profile_case, "matmul": matmul_case, "infer": infer_case,
         "fusion": fusion_case, "fusion_set": fusion_set_case, "threads": threads_case, "predict": predict_case}


def run_case(case: dict) -> dict:
    """Measure ``case`` in this process; a failure becomes ``{"error": ...}`` (the run goes on)."""
    kwargs = {k: v for k, v in case.items() if k != "kind"}
    try:
        return CASES[case["kind"]](**kwargs)
    except Exception as exc:  # noqa: BLE001 - one failed case must not lose the others' numbers
        return {"error": f"{type(exc).__name__}: {exc}"}


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (a traceback's exception), or '(no output)'."""
    return next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "(no output)")


def run_isolated(case: dict, timeout: float | None = None) -> dict:
    """Measure ``case`` in a fresh subprocess (its own peak RSS); its failure becomes ``{"error": ...}``."""
    try:
        proc = subprocess.run([sys.executable, "-m", "nir_colorize.bench.cases", json.dumps(case)],
                              capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    if proc.returncode or not lines:
        return {"error": f"subprocess failed (rc {proc.returncode}): {last_line(proc.stderr)}"}
    result = json.loads(lines[-1][len(MARKER):])
    result["isolated"] = True
    return result


def main(argv: list[str] | None = None) -> None:
    """Child entry point: ``python -m nir_colorize.bench.cases '<case json>'`` prints one result line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m nir_colorize.bench.cases '<case json>'")
    try:
        result = CASES[json.loads(args[0])["kind"]](**{k: v for k, v in json.loads(args[0]).items() if k != "kind"})
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    print(MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

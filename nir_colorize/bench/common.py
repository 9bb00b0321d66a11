"""What the benchmarks share: the real sample image at any size, the networks they time, timing with memory, and
running a case in a fresh process (``python -m nir_colorize.bench.cases``, so that its peak memory is its own)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

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


def timed(fn, device: str, warmup: int, repeat: int, *, per_call: float, unit: str, **extra) -> dict:
    """``measure`` plus memory: RSS before the first call and peak after, CUDA peak allocated."""
    rss_setup = peak_rss_mb()
    reset_cuda_peak(device)
    t = measure(fn, warmup=warmup, repeat=repeat, device=device)
    return {"seconds": t.as_dict(), unit: per_call / t.median, "rss_setup_mb": rss_setup,
            "peak_rss_mb": peak_rss_mb(), "peak_cuda_mb": cuda_peak_mb(device), **extra}


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

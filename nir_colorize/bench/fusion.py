"""Benchmark of the exact WLS solvers and of BFWLS on a real image.

``python -m nir_colorize.bench.fusion [--size 1024 680] [--device cpu|cuda] [--repeat N] [--threads T]``

Times WLS with every solver (after a warm-up; median and min-max of ``--repeat`` runs), the speed-up
over ``direct`` measured in the same run, the max abs difference to ``direct``, and the whole BFWLS.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from nir_colorize.data.dataset import to_tensor
from nir_colorize.data.io import read_nir, read_rgb
from nir_colorize.fusion import SOLVERS, bfwls, wls_smooth

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "nirscene1" / "country"


def load_sample(size: tuple[int, int], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The sample NIR (1, 1, H, W) and RGB (1, 3, H, W) resized (bilinear) to ``size`` = (W, H)."""
    nir = to_tensor(read_nir(SAMPLE / "0000_nir.tiff"))[None]
    rgb = to_tensor(read_rgb(SAMPLE / "0000_rgb.tiff"))[None]
    w, h = size
    if nir.shape[-2:] != (h, w):
        nir = F.interpolate(nir, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
        rgb = F.interpolate(rgb, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
    return nir.to(device), rgb.to(device)


def timed(fn: Callable[[], torch.Tensor], repeat: int, device: str) -> tuple[torch.Tensor, list[float], list[float]]:
    """Output, wall times and process CPU times (all threads) of ``repeat`` calls after one warm-up.

    On a shared machine the CPU time is the steadier number: it leaves out time lost to other jobs."""
    out = fn()  # warm-up
    walls, cpus = [], []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        cpu, start = time.process_time(), time.perf_counter()
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return out, walls, cpus


def _stats(walls: list[float], cpus: list[float]) -> dict:
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
            "cpu_median_s": statistics.median(cpus), "repeat": len(walls)}


def run(size: tuple[int, int] = (1024, 680), device: str = "cpu", repeat: int = 5, direct_repeat: int = 1) -> dict:
    """Run the benchmark; returns ``{"wls": {solver: {...}}, "bfwls": {...}, ...}`` and prints a table."""
    nir, rgb = load_sample(size, device)
    image = nir[0, 0]
    results: dict = {"size": list(size), "device": device, "threads": torch.get_num_threads(), "wls": {}}
    outputs = {}
    for solver in ("direct", *[s for s in SOLVERS if s != "direct"]):
        n = direct_repeat if solver == "direct" else repeat
        out, walls, cpus = timed(lambda s=solver: wls_smooth(image, solver=s), n, device)
        outputs[solver] = out
        results["wls"][solver] = _stats(walls, cpus)
    for solver, row in results["wls"].items():
        row["speedup_vs_direct"] = results["wls"]["direct"]["median_s"] / row["median_s"]
        row["max_abs_diff_vs_direct"] = (outputs[solver].double().cpu() - outputs["direct"].double().cpu()).abs().max().item()
    _, walls, cpus = timed(lambda: bfwls(nir, rgb), repeat, device)
    results["bfwls"] = _stats(walls, cpus)
    print(f"WLS / BFWLS on a {size[0]}x{size[1]} image, device {device}, torch threads {results['threads']}")
    print("| what | median wall s | min-max wall s | median CPU s | x faster than direct | max abs diff to direct |")
    print("|---|---|---|---|---|---|")
    for solver, row in results["wls"].items():
        print(f"| WLS {solver} | {row['median_s']:.3f} | {row['min_s']:.3f}-{row['max_s']:.3f} | "
              f"{row['cpu_median_s']:.3f} | {row['speedup_vs_direct']:.1f} | {row['max_abs_diff_vs_direct']:.2e} |")
    row = results["bfwls"]
    print(f"| BFWLS (pcg) | {row['median_s']:.3f} | {row['min_s']:.3f}-{row['max_s']:.3f} | {row['cpu_median_s']:.3f} | | |")
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 680), metavar=("W", "H"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    return run(tuple(args.size), args.device, args.repeat)


if __name__ == "__main__":
    main()

"""``python -m nir_colorize.bench [--quick] [--device cpu|cuda] [--out experiments/bench]`` (``make bench``).

Measures, on one device and in one run: the training step of every variant of ``MODELS`` next to a plain
smp Unet-ResNet34 baseline, in fp32 and the fast precision (bf16 where the hardware has it), NCHW and
channels_last, with FLOPs per step against the machine's matmul peak and the accuracy cost of bf16;
inference of the paper's model at 480x480, 1024x680 and 4096x4096 (tiled), WLS / BFWLS fusion per
solver next to the ``direct`` reference, the exact WLS on a set of real images of several scene types, and the
OpenMP thread policies quiet and beside a busy process; each case in a fresh process.
Writes ``<out>/<machine>.json`` and ``<out>/<machine>.md``. See docs/bench.md.
"""

from __future__ import annotations

import nir_colorize.utils.openmp  # noqa: F401  # isort: skip  (first: libgomp reads its wait policy when torch loads it)
import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from nir_colorize import PROJECT_ROOT
from nir_colorize.bench import report
from nir_colorize.bench.cases import run_case
from nir_colorize.bench.common import BASELINE, has_module, paper_model, run_isolated
from nir_colorize.utils.hardware import cpu_bf16_support, fast_precision

SECTIONS = ("training", "inference", "fusion")


@dataclass
class BenchConfig:
    """What to measure. ``large_pixels``: images above this size get ``large_warmup`` / ``large_repeat``."""

    device: str = "cpu"
    warmup: int = 1
    repeat: int = 3
    large_pixels: int = 2048 * 2048
    large_warmup: int = 0
    large_repeat: int = 2
    train_size: int = 256
    train_batch: int | None = None  # None: 4 on the CPU, 16 on CUDA
    train_models: list[str] | None = None  # None: every variant of MODELS
    train_baseline: bool = True  # also the smp Unet-ResNet34 baseline (first row)
    precisions: list[str] = field(default_factory=lambda: ["fp32", "fast"])  # fp32, bf16, fast (fast_precision)
    layouts: list[str] = field(default_factory=lambda: ["nchw", "channels_last"])
    peak_size: int | None = None  # matmul for the peak: None: 4096 on the CPU, 8192 on CUDA
    infer_model: str | None = None  # None: colornet if present, else linknet
    infer_sizes: list[tuple[int, int, bool]] = field(
        default_factory=lambda: [(480, 480, False), (1024, 680, False), (4096, 4096, True)])  # (W, H, tiled)
    tile: int | None = None  # None: nir_colorize.inference default
    overlap: int | None = None
    fusion_sizes: list[tuple[int, int]] = field(default_factory=lambda: [(480, 480), (1024, 680)])
    fusion_set_size: tuple[int, int] | None = (1024, 680)  # the benchmark set of scene types (None: skip)
    fusion_set_images: list[str] | None = None  # None: all of nir_colorize.bench.fusion.BENCH_SET
    fusion_busy: bool = True  # thread policies quiet and beside a busy process (CPU only)
    busy_size: tuple[int, int] = (1024, 680)
    isolate: bool = True  # fresh subprocess per case (per-case peak RSS); False: in-process, no RSS reported
    case_timeout: float | None = 900.0
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))

    @classmethod
    def quick(cls, **overrides) -> BenchConfig:
        return cls(**({"warmup": 1, "repeat": 2, "large_repeat": 1} | overrides))


def check_device(device: str) -> str:
    try:
        dev = torch.device(device)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device {device!r}: choose cpu or cuda (e.g. cuda:1)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {device!r}: CUDA is not available on this machine (torch {torch.__version__})")
    return device


def _measure(cfg: BenchConfig, case: dict, log) -> dict:
    start = time.perf_counter()
    result = run_isolated(case, cfg.case_timeout) if cfg.isolate else run_case(case)
    if not cfg.isolate:
        result |= {"peak_rss_mb": None, "isolated": False}
    status = result.get("error") or (f"{result['seconds']['median']:.3g} s median" if "seconds" in result else "done")
    log(f"  {case['kind']} {', '.join(f'{k}={v}' for k, v in case.items() if k not in ('kind', 'device'))}: "
        f"{status} [{time.perf_counter() - start:.0f} s]")
    return result


def _reps(cfg: BenchConfig, pixels: int) -> dict:
    large = pixels > cfg.large_pixels
    return {"warmup": cfg.large_warmup if large else cfg.warmup, "repeat": cfg.large_repeat if large else cfg.repeat}


def bench_training(cfg: BenchConfig, log) -> dict:
    """The matmul peak per precision, then per variant: its profile (FLOPs per step, accuracy of each
    precision / layout against fp32 NCHW) and one timed case per precision / layout; then the peak again
    (the faster of the two measurements is the peak)."""
    from nir_colorize.bench import training
    from nir_colorize.models import MODELS

    cuda = torch.device(cfg.device).type == "cuda"
    batch = cfg.train_batch or (16 if cuda else 4)
    names = [BASELINE] * cfg.train_baseline + list(cfg.train_models if cfg.train_models is not None else MODELS)
    precisions = training.resolve_precisions(cfg.precisions, cfg.device)
    pairs = training.combos(precisions, cfg.layouts)
    n = cfg.peak_size or (8192 if cuda else 4096)

    def matmul_peaks() -> dict:
        return {p: _measure(cfg, {"kind": "matmul", "dtype": p, "n": n, "device": cfg.device, **_reps(cfg, 0)}, log)
                for p in sorted({"fp32", *precisions}, key=list(training.PRECISIONS).index)}

    start = matmul_peaks()
    rows, profiles = [], {}
    for name in names:
        profiles[name] = _measure(cfg, {"kind": "train_profile", "model": name, "size": cfg.train_size, "batch": batch,
                                        "device": cfg.device, "combos": [list(c) for c in pairs]}, log)
        for precision, layout in pairs:
            case = {"kind": "train", "model": name, "size": cfg.train_size, "batch": batch, "device": cfg.device,
                    "precision": precision, "layout": layout, **_reps(cfg, cfg.train_size**2 * batch)}
            rows.append({"model": name, "precision": precision, "layout": layout, **_measure(cfg, case, log)})
    end = matmul_peaks()  # the faster of the two is the peak: other jobs slow one of them down, never speed it up
    peaks = {p: max((start[p], end[p]), key=lambda r: r.get("flop_per_s", 0.0)) for p in start}
    fast = fast_precision(cfg.device)
    after = next((c for c in reversed(pairs) if c[1] == "channels_last"), pairs[-1])
    return {"size": cfg.train_size, "batch": batch, "baseline": BASELINE if cfg.train_baseline else None,
            "fast_precision": fast, "lightning_precision": {p: training.PRECISIONS[p] for p in precisions},
            "cpu_bf16": cpu_bf16_support(), "combos": [list(c) for c in pairs], "before": list(training.REFERENCE),
            "after": list(after), "peak": peaks, "peak_runs": {"start": start, "end": end}, "profiles": profiles,
            "rows": training.derive(rows, profiles, peaks, BASELINE)}


def bench_inference(cfg: BenchConfig, log) -> dict:
    model = cfg.infer_model or paper_model()
    rows = []
    for width, height, tiled in cfg.infer_sizes:
        case = {"kind": "infer", "model": model, "width": width, "height": height,
                "tile": (cfg.tile or 0) if tiled else None, "overlap": cfg.overlap, "device": cfg.device,
                **_reps(cfg, width * height)}
        rows.append({"size": f"{width}x{height}", "tiled": tiled, **_measure(cfg, case, log)})
    return {"model": model, "rows": rows}


def _fusion_seconds(raw: dict) -> dict:
    """``bench.fusion`` timings (median_s, min_s, max_s, repeat) in this benchmark's form (no quartiles)."""
    return {"median": raw["median_s"], "q1": None, "q3": None, "min": raw["min_s"], "max": raw["max_s"],
            "n": raw["repeat"]}


def fusion_rows(size: str, case: dict) -> list[dict]:
    """One row per (operation, solver) from one ``fusion`` case; speed-up = direct median / this median."""
    if "error" in case:
        return [{"op": "wls + bfwls", "size": size, "solver": "all", "error": case["error"]}]
    memory = {k: case.get(k) for k in ("rss_setup_mb", "peak_rss_mb", "peak_cuda_mb", "isolated")}
    raw = case["raw"]
    bfwls = raw.get("bfwls", {})
    bfwls = {"default": bfwls} if "median_s" in bfwls else bfwls  # one (default-solver) BFWLS, or one per solver
    rows = []
    for op, per_solver in (("wls", raw.get("wls", {})), ("bfwls", bfwls)):
        direct = per_solver.get("direct")
        for solver, r in per_solver.items():
            row = {"op": op, "size": size, "solver": solver, "seconds": _fusion_seconds(r), **memory}
            row["speedup_vs_direct"] = direct["median_s"] / r["median_s"] if direct else None
            if "max_abs_diff_vs_direct" in r:
                row["max_abs_diff_vs_direct"] = r["max_abs_diff_vs_direct"]
            rows.append(row)
    return rows


def bench_fusion(cfg: BenchConfig, log) -> dict:
    if not has_module("nir_colorize.bench.fusion"):
        return {"rows": [], "note": "fusion benchmark not available (nir_colorize.bench.fusion is missing)"}
    from nir_colorize.bench import fusion as fusion_bench

    if not hasattr(fusion_bench, "run"):
        return {"rows": [], "note": "fusion benchmark not available (nir_colorize.bench.fusion has no run())"}
    rows = []
    for width, height in cfg.fusion_sizes:
        case = {"kind": "fusion", "width": width, "height": height, "device": cfg.device,
                **_reps(cfg, width * height)}
        rows += fusion_rows(f"{width}x{height}", _measure(cfg, case, log))
    out = {"rows": rows, "note": "WLS with every solver and BFWLS with its default solver, timed by "
                                 "nir_colorize.bench.fusion.run (direct: 1 repetition); memory per image size"}
    if cfg.fusion_set_size:
        width, height = cfg.fusion_set_size
        out["set"] = _measure(cfg, {"kind": "fusion_set", "width": width, "height": height, "device": cfg.device,
                                    "repeat": cfg.repeat, "images": cfg.fusion_set_images}, log)
    if cfg.fusion_busy and cfg.device == "cpu":
        out["threads"] = _measure(cfg, {"kind": "threads", "image": "urban", "repeat": cfg.repeat,
                                        "size": list(cfg.busy_size)}, log)
    return out


def run_bench(cfg: BenchConfig, out_dir: Path, log=print) -> tuple[Path, Path]:
    """Run every section on ``cfg.device`` and write ``<out_dir>/<machine>.{json,md}``; returns both paths.

    The files are rewritten after each section (``meta.complete`` false until the end), so an interrupted
    run still leaves what it measured."""
    check_device(cfg.device)
    unknown = set(cfg.sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}: choose from {', '.join(SECTIONS)}")
    from nir_colorize.bench import training

    training.combos(training.resolve_precisions(cfg.precisions, cfg.device), cfg.layouts)  # fail before measuring
    meta = report.machine_meta(cfg.device)
    log(f"benchmark on {meta['machine']} (torch {meta['torch']}, {meta['torch_threads']} threads) -> {out_dir}")
    result = {"meta": meta | {"complete": False}, "config": asdict(cfg), "training": {"rows": []},
              "inference": {"rows": []}, "fusion": {"rows": [], "note": "not run yet"}}
    for section in set(SECTIONS) - set(cfg.sections):
        result[section] |= {"skipped": True}
    start = time.perf_counter()
    for section, fn in (("training", bench_training), ("inference", bench_inference), ("fusion", bench_fusion)):
        if section not in cfg.sections:
            continue
        log(f"{section}:")
        result[section] = fn(cfg, log)
        result["meta"]["total_s"] = time.perf_counter() - start
        report.write(result, out_dir)
    result["meta"]["complete"] = True
    return report.write(result, out_dir)


def _csv(choices):
    """An argparse type: comma-separated values, each one of ``choices`` (None: anything)."""
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if choices is not None and v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated values from {', '.join(choices or ())}")
        return values

    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (2, and 1 for 4096x4096)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "experiments" / "bench", help="output folder")
    parser.add_argument("--precision", type=_csv(("fp32", "bf16", "fast")), default="fp32,fast",
                        help="training precisions: fp32, bf16, fast (= bf16 where the hardware has it, else fp32)")
    parser.add_argument("--layout", type=_csv(("nchw", "channels_last")), default="nchw,channels_last",
                        help="training memory layouts")
    parser.add_argument("--models", type=_csv(None), default=None, help="training variants (default: all)")
    parser.add_argument("--no-baseline", action="store_true", help="no unet_resnet34 row in training")
    parser.add_argument("--sections", type=_csv(SECTIONS), default=",".join(SECTIONS), help="sections to run")
    args = parser.parse_args(argv)
    opts = {"device": args.device, "precisions": args.precision, "layouts": args.layout, "train_models": args.models,
            "train_baseline": not args.no_baseline, "sections": args.sections}
    cfg = BenchConfig.quick(**opts) if args.quick else BenchConfig(**opts)
    json_path, md_path = run_bench(cfg, args.out, log=lambda s: print(s, flush=True))
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)


if __name__ == "__main__":
    main()

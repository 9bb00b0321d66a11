"""Deployment benchmark: ``python -m nir_colorize.bench.deploy [--models linknet,colornet] [--sizes ...]``.

Megapixels per second of ``inference.colorize`` on the real sample NIR image (mirror-extended to each size)
for each backend: ``torch`` (fp32), ``torch-bf16`` (bf16 autocast + channels_last; only where
``fast_precision('cpu')`` is ``bf16-mixed``, i.e. the CPU computes bf16 natively, unless ``--bf16 always``)
and ``onnxruntime`` (fp32, the export of ``nir_colorize.export``, CPU, as many intra-op threads as torch),
for each model (random weights, seed 0, unless ``--ckpt``). Sizes: ``WxH`` is one whole-image pass,
``WxH:tiled`` tiled inference with the predict defaults (tile 640, overlap 192); default ``1024x680`` and
``4096x4096:tiled`` (fewer repeats: ``--large-repeat``). ``--model-id reference``: the shipped weights. Each backend's output is compared with torch fp32's
on the same image: PSNR (dB, higher = closer; inf = identical) and the max abs difference in 1/255 levels.
Writes ``<out>/deploy-<machine>.{json,md}`` (default ``experiments/bench``). See docs/predict.md.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nir_colorize import PROJECT_ROOT
from nir_colorize.bench import report
from nir_colorize.bench.common import build_net, real_nir
from nir_colorize.bench.timing import measure
from nir_colorize.runtime import Bf16ChannelsLast, resolve_precision
from nir_colorize.utils.hardware import fast_precision

BACKENDS = ("torch", "torch-bf16", "onnxruntime")
MODELS = ("linknet", "colornet")
SIZES = "1024x680,4096x4096:tiled"
LARGE_PIXELS = 2048 * 2048  # images of at least this many pixels get --large-warmup / --large-repeat


def parse_size(spec: str) -> tuple[int, int, bool]:
    """``WxH`` or ``WxH:tiled`` -> (width, height, tiled)."""
    size, _, mode = spec.strip().partition(":")
    if mode not in ("", "tiled"):
        raise SystemExit(f"--sizes {spec!r}: WIDTHxHEIGHT or WIDTHxHEIGHT:tiled")
    width, height = map(int, size.lower().split("x"))
    return width, height, mode == "tiled"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB, peak 1) of ``a`` against ``b``; inf where they are equal."""
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def db_text(db: float | None) -> str:
    return "identical" if db is None else f"{db:.1f} dB"


def prepare(model: str, out_dir: Path, ckpt: str | None = None, opset: int | None = None) -> dict[str, Any]:
    """The torch network of ``model`` (seed 0, or ``ckpt``'s weights) and its ONNX export in ``out_dir``."""
    from nir_colorize.loading import export_source
    from nir_colorize.onnx_export import DEFAULT_OPSET, export_onnx

    if ckpt:  # a checkpoint, or model_id=ID: a shipped model (nir_colorize/weights)
        model_id = ckpt.split("=", 1)[1] if ckpt.startswith("model_id=") else None
        net, model, _ = export_source(None if model_id else ckpt, model_id)
    else:
        torch.manual_seed(0)
        net = build_net(model)
    net = net.float().eval()
    info = export_onnx(net, out_dir / f"{model}.onnx", opset or DEFAULT_OPSET, model_name=model)
    return {"model": model, "net": net, "onnx": info["path"],
            "export": {"seconds": info["seconds"], "mib": info["bytes"] / 2**20, "opset": info["opset"],
                       "max_abs_diff": info["max_abs_diff"]}}


def backend_net(backend: str, net: nn.Module, onnx_path: Path) -> nn.Module:
    if backend == "torch":
        return net
    if backend == "torch-bf16":
        import copy

        return Bf16ChannelsLast(copy.deepcopy(net))
    if backend == "onnxruntime":
        from nir_colorize.runtime import OnnxColorizer

        return OnnxColorizer(onnx_path)
    raise SystemExit(f"unknown backend {backend!r}: choose from {', '.join(BACKENDS)}")


def run_bench(models: list[str], sizes: list[tuple[int, int, bool]], backends: tuple[str, ...] = BACKENDS,
              warmup: int = 1, repeat: int = 3, large_warmup: int = 0, large_repeat: int = 1,
              tile: int | None = None, overlap: int | None = None, bf16: str = "auto", ckpt: str | None = None,
              prepared: dict[str, dict] | None = None, log=print) -> dict[str, Any]:
    """Every (model, size, backend) row; ``prepared``: ``prepare`` results to reuse, by model."""
    from nir_colorize import inference

    bf16_native = resolve_precision("auto", torch.device("cpu")) == "bf16"  # predict's own rule
    tiling = {"tile": tile or inference.TILE, "overlap": inference.OVERLAP if overlap is None else overlap,
              "tile_above": 0}
    meta = report.machine_meta("cpu")
    import onnxruntime

    meta |= {"onnxruntime": onnxruntime.__version__, "fast_precision_cpu": fast_precision("cpu"),
             "ort_intra_op_threads": torch.get_num_threads()}
    result: dict[str, Any] = {"meta": meta, "tiling": {k: tiling[k] for k in ("tile", "overlap")},
                              "weights": ckpt or "random (seed 0)", "exports": {}, "rows": []}
    with tempfile.TemporaryDirectory(prefix="nir_colorize-deploy-") as tmp:
        for model in models:
            prep = (prepared or {}).get(model) or prepare(model, Path(tmp), ckpt)
            result["exports"][prep["model"]] = prep["export"]
            log(f"{prep['model']}: ONNX export {prep['export']['seconds']:.1f} s, {prep['export']['mib']:.0f} MiB")
            for width, height, tiled in sizes:
                nir = torch.from_numpy(real_nir(width, height))[None, None]
                opts = tiling if tiled else {"tile": None}
                large = width * height >= LARGE_PIXELS
                n_warm, n_rep = (large_warmup, large_repeat) if large else (warmup, repeat)
                reference = None
                if "torch" not in backends:  # the reference of the comparisons, untimed
                    reference = inference.colorize(prep["net"], nir, **opts)
                for backend in sorted(backends, key=BACKENDS.index):
                    row = {"model": prep["model"], "size": f"{width}x{height}", "tiled": tiled, "backend": backend}
                    if backend == "torch-bf16" and not bf16_native and bf16 != "always":
                        row["skipped"] = f"no native bf16 on this CPU (fast_precision('cpu') = {fast_precision('cpu')})"
                        result["rows"].append(row)
                        log(f"  {row['size']} {backend}: skipped")
                        continue
                    net = backend_net(backend, prep["net"], prep["onnx"])
                    outputs: list[torch.Tensor] = []

                    def call(net=net, opts=opts, nir=nir, outputs=outputs) -> None:
                        outputs[:] = [inference.colorize(net, nir, **opts)]

                    with torch.inference_mode():
                        timing = measure(call, warmup=n_warm, repeat=n_rep)
                    out = outputs[0]
                    if backend == "torch":
                        reference = out
                    row |= {"seconds": timing.as_dict(), "megapixels_per_s": width * height / 1e6 / timing.median}
                    if backend != "torch":
                        db = psnr(out, reference)
                        row |= {"psnr_vs_torch_fp32_db": None if math.isinf(db) else db,  # None: identical
                                "max_abs_diff_levels": float((out - reference).abs().max()) * 255}
                    result["rows"].append(row)
                    log(f"  {row['size']}{' tiled' if tiled else ''} {backend}: {row['megapixels_per_s']:.3f} Mpx/s"
                        + (f", vs torch fp32: PSNR {db_text(row['psnr_vs_torch_fp32_db'])}, max diff "
                           f"{row['max_abs_diff_levels']:.2f} / 255" if backend != "torch" else ""))
    return result


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [f"# Deployment benchmark: {meta['machine']}", "",
             f"{meta['date']}, commit {meta['git_commit']}, torch {meta['torch']}, onnxruntime {meta['onnxruntime']}, "
             f"{meta['cpus']} CPUs, {meta['torch_threads']} torch threads (= onnxruntime intra-op threads), "
             f"fast_precision('cpu') = {meta['fast_precision_cpu']}, load average "
             f"{meta.get('load_average', ['?'])[0]} at start. Weights: {result['weights']}. Real sample NIR image "
             f"mirror-extended to each size; tiled: tile {result['tiling']['tile']}, overlap "
             f"{result['tiling']['overlap']}. PSNR / max diff: the backend's output against torch fp32's.", "",
             "| model | image | backend | megapixels / s | s / image | speed-up vs torch fp32 | "
             "PSNR vs torch fp32 | max abs diff (levels of 255) |", "|---|---|---|---|---|---|---|---|"]
    base: dict[tuple, float] = {}
    for row in result["rows"]:
        image = f"{row['size']}{' tiled' if row['tiled'] else ''}"
        if "skipped" in row:
            lines.append(f"| {row['model']} | {image} | {row['backend']} | skipped: {row['skipped']} | - | - | - | - |")
            continue
        key = (row["model"], row["size"], row["tiled"])
        if row["backend"] == "torch":
            base[key] = row["megapixels_per_s"]
        speedup = f"{row['megapixels_per_s'] / base[key]:.2f}x" if key in base else "-"
        quality = (f"{db_text(row['psnr_vs_torch_fp32_db'])} | {row['max_abs_diff_levels']:.2f}"
                   if "max_abs_diff_levels" in row else "reference | 0")
        lines.append(f"| {row['model']} | {image} | {row['backend']} | {row['megapixels_per_s']:.3f} | "
                     f"{report._t(row['seconds'])} | {speedup} | {quality} |")
    lines += ["", "ONNX exports: " + "; ".join(f"{m} {e['seconds']:.1f} s, {e['mib']:.0f} MiB, opset {e['opset']}"
                                               for m, e in result["exports"].items())]
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"deploy-{result['meta']['machine']}"
    paths = stem.with_suffix(".json"), stem.with_suffix(".md")
    paths[0].write_text(json.dumps(result, indent=2, default=str) + "\n")
    paths[1].write_text(markdown(result))
    return paths


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models of nir_colorize.models")
    parser.add_argument("--sizes", default=SIZES, help="comma-separated WIDTHxHEIGHT[:tiled]")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated of " + ", ".join(BACKENDS))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large-warmup", type=int, default=0, help=f"images of >= {LARGE_PIXELS} pixels")
    parser.add_argument("--large-repeat", type=int, default=1, help=f"images of >= {LARGE_PIXELS} pixels")
    parser.add_argument("--tile", type=int, default=None, help="tiled sizes: tile (default: inference.TILE)")
    parser.add_argument("--overlap", type=int, default=None, help="tiled sizes: overlap (default: inference.OVERLAP)")
    parser.add_argument("--bf16", choices=("auto", "always"), default="auto",
                        help="torch-bf16: auto = only where the CPU computes bf16 natively")
    parser.add_argument("--ckpt", default=None, help="a training checkpoint (its model) instead of random weights")
    parser.add_argument("--model-id", default=None, help="a shipped model (e.g. reference) instead of random weights")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "experiments" / "bench", help="output folder")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise SystemExit(f"--backends: unknown {', '.join(unknown)} (choose from {', '.join(BACKENDS)})")
    if args.model_id:
        args.ckpt = f"model_id={args.model_id}"
    models = [m.strip() for m in args.models.split(",") if m.strip()][:1 if args.ckpt else None]
    start = time.perf_counter()
    result = run_bench(models, [parse_size(s) for s in args.sizes.split(",")], backends, args.warmup, args.repeat,
                       args.large_warmup, args.large_repeat, args.tile, args.overlap, args.bf16, args.ckpt)
    result["seconds_total"] = time.perf_counter() - start
    json_path, md_path = write(result, args.out)
    print(markdown(result) + f"wrote {json_path} and {md_path}")
    return result


if __name__ == "__main__":
    main()

"""End-to-end prediction benchmark: ``python -m nir_colorize.bench.predict [--sizes 1024x680,4096x4096]
[--scales 1,auto] [--model-id reference]``.

For each size and ``scale=`` (``nir_colorize.scale``: 1 colorizes at the input's size, auto at the model's
training scale), a fresh process runs ``nir_colorize.predict`` (read the PNG, colorize with the defaults,
write the colour PNG) on the real sample NIR image mirror-extended to that size, with the shipped model
``--model-id`` (or, with ``--model``, an untrained checkpoint of that network), and reports seconds, megapixels
per second, its peak resident memory (``VmHWM``: imports, model and buffers included) and each scale's speed-up
over ``scale=1`` measured in the same run. Exits 1 when a case fails or exceeds ``--max-rss-mb`` (default 3072).
Writes ``<out>/predict-<machine>.{json,md}``. See docs/predict.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from PIL import Image

from nir_colorize import PROJECT_ROOT
from nir_colorize.bench import report
from nir_colorize.bench.common import paper_model, real_nir, run_isolated
from nir_colorize.bench.timing import peak_rss_mb
from nir_colorize.data.io import to_uint8


def write_checkpoint(model: str, path: Path) -> Path:
    """An untrained ``ColorizationModule`` of ``model`` saved as a checkpoint ``loading.load_checkpoint`` accepts."""
    from nir_colorize.module import ColorizationModule

    module = ColorizationModule(model={"name": model})
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": L.__version__}, path)
    return path


def predict_case(model: str, width: int, height: int, device: str, overrides: list[str],
                 model_id: str | None = None) -> dict:
    """Seconds, megapixels/s and peak RSS of one ``nir_colorize.predict`` run on one width x height image: the
    shipped ``model_id``, else an untrained ``model``."""
    from nir_colorize import pipeline
    from nir_colorize.utils.compose import compose_config

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = f"model_id={model_id}" if model_id else f"ckpt_path={write_checkpoint(model, tmp / 'model.ckpt')}"
        Image.fromarray(to_uint8(real_nir(width, height))).save(tmp / "nir.png")
        cfg = compose_config("predict", [source, f"input={tmp / 'nir.png'}", f"output={tmp / 'out'}",
                                         f"trainer.accelerator={'cpu' if device == 'cpu' else 'gpu'}",
                                         "progress=false", *overrides], output_dir=tmp / "run")
        rss_setup = peak_rss_mb()
        start = time.perf_counter()
        result = pipeline.run(cfg)
        seconds = time.perf_counter() - start
        with Image.open(tmp / "out" / "nir.png") as im:
            if result.failed or im.size != (width, height):
                raise RuntimeError(f"prediction failed or has the wrong size: {result.report()}, {im.size}")
    image = result.image_seconds[0]  # predict's own timing of the image (read, colorize, write), no model load
    return {"seconds": image, "run_seconds": seconds, "megapixels_per_s": width * height / 1e6 / image,
            "rss_setup_mb": rss_setup,
            "peak_rss_mb": peak_rss_mb(), "tiling": {k: cfg[k] for k in ("tile", "overlap", "tile_above")},
            "scale": str(cfg.scale), "restore": str(cfg.restore)}


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [f"# Prediction benchmark: {meta['machine']}", "",
             f"{meta['date']}, commit {meta['git_commit']}, torch {meta['torch']}, device {meta['device']}, "
             f"{meta['cpus']} CPUs, {meta['torch_threads']} torch threads, load average "
             f"{meta.get('load_average', ['?'])[0]} at start. Model {result['model']}, one run per size and scale, "
             "with predict's defaults otherwise; s / image: predict's own timing of the image (read PNG, colorize, "
             "write PNG); run: the whole `pipeline.run`, model loading included; peak RSS of a fresh process; "
             "speed-up: scale=1's seconds over this row's, same size, same run.", "",
             f"| image | scale | s / image | run s | megapixels / s | speed-up over scale=1 | peak RSS MiB (limit "
             f"{result['max_rss_mb']:.0f}) |", "|---|---|---:|---:|---:|---:|---:|"]
    base = {r["size"]: r["seconds"] for r in result["rows"] if r.get("scale") == "1" and "error" not in r}
    for row in result["rows"]:
        if "error" in row:
            lines.append(f"| {row['size']} | {row.get('scale', '?')} | failed: {row['error']} | - | - | - | - |")
        else:
            ok = "ok" if row["peak_rss_mb"] <= result["max_rss_mb"] else "OVER"
            speedup = f"{base[row['size']] / row['seconds']:.1f}x" if row["size"] in base else "-"
            lines.append(f"| {row['size']} | {row['scale']} | {row['seconds']:.2f} | {row['run_seconds']:.2f} | "
                         f"{row['megapixels_per_s']:.4f} | {speedup} | {row['peak_rss_mb']:.0f} ({ok}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1024x680,4096x4096", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--model-id", default="reference", help="a shipped model (default: reference)")
    parser.add_argument("--model", default=None, help="instead: an untrained network of nir_colorize.models")
    parser.add_argument("--scales", default="1,auto", help="comma-separated scale= values (default: 1,auto)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--max-rss-mb", type=float, default=3072.0, help="peak memory limit per image size")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "experiments" / "bench", help="output folder")
    parser.add_argument("overrides", nargs="*", help="predict config overrides, e.g. tile=768 overlap=128")
    args = parser.parse_args(argv)
    model_id = None if args.model else args.model_id
    model = args.model or f"shipped {model_id}"
    result = {"meta": report.machine_meta(args.device), "model": model, "max_rss_mb": args.max_rss_mb, "rows": []}
    for size in args.sizes.split(","):
        width, height = map(int, size.lower().split("x"))
        for scale in args.scales.split(","):
            case = {"kind": "predict", "model": args.model or paper_model(), "model_id": model_id, "width": width,
                    "height": height, "device": args.device, "overrides": [*args.overrides, f"scale={scale}"]}
            row = {"size": f"{width}x{height}", "scale": scale, **run_isolated(case)}
            print(f"  {row['size']} scale={scale}: " + (row.get("error") or f"{row['seconds']:.2f} s, "
                  f"{row['megapixels_per_s']:.4f} MP/s, peak RSS {row['peak_rss_mb']:.0f} MiB"), flush=True)
            result["rows"].append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"predict-{result['meta']['machine']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result) + f"wrote {stem}.json and {stem}.md")
    if any("error" in r or r["peak_rss_mb"] > args.max_rss_mb for r in result["rows"]):
        sys.exit(1)


if __name__ == "__main__":
    main()

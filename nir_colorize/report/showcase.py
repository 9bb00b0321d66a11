"""``python -m nir_colorize.report.showcase PAIR_NIR [PAIR_NIR ...] --out FIG.png [--model-id reference]
[--predict KEY=VALUE ...]``: colorized by predict's own pipeline, with its defaults unless ``--predict`` says.

A figure of rows NIR | ours | ground truth (with each image's PSNR) for NIR files whose RGB partner sits beside
them (VCIP: ``..._nir.png`` / ``..._rgb_reg.png``; RGB-NIR Scene: ``..._nir.tiff`` / ``..._rgb.tiff``); any size,
each row fitted to ``--height`` pixels. The README's opening figure is made with it from images the shipped
model never saw (docs/model_card: which).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from nir_colorize.data.io import read_nir, read_rgb, to_uint8, write_png
from nir_colorize.metrics.functional import psnr

PARTNERS = (("_nir_reg.png", "_rgb_reg.png"), ("_nir.png", "_rgb_reg.png"), ("_nir.png", "_rgb.png"),
            ("_nir.tiff", "_rgb.tiff"))


def partner(nir: Path) -> Path:
    """The RGB file beside an NIR file (capital T of the VCIP test layout included)."""
    for a, b in PARTNERS:
        if nir.name.endswith(a):
            for name in (nir.name[: -len(a)] + b, (nir.name[: -len(a)] + b).replace("testing_", "Testing_")):
                if (nir.parent / name).is_file():
                    return nir.parent / name
    raise FileNotFoundError(f"{nir}: no RGB partner beside it ({', '.join(b for _, b in PARTNERS)})")


@torch.no_grad()
def showcase(nir_files: list[Path], colorize: Callable[[torch.Tensor], torch.Tensor], height: int = 200,
             gap: int = 4) -> np.ndarray:
    """Rows NIR | ours | ground truth, each scaled to ``height``, labelled with the PSNR of ours; ``colorize``:
    NIR (1, 1, H, W) -> RGB (1, 3, H, W), e.g. predict's ``Pipeline``."""
    rows = []
    font = ImageFont.load_default(size=14)
    for path in nir_files:
        nir, rgb = read_nir(path), read_rgb(partner(path))
        x = torch.from_numpy(nir.transpose(2, 0, 1))[None]
        pred = colorize(x)
        score = float(psnr(pred, torch.from_numpy(rgb.transpose(2, 0, 1))[None])[0])
        tiles = [np.repeat(nir, 3, axis=2), pred[0].permute(1, 2, 0).numpy(), rgb]
        width = round(nir.shape[1] * height / nir.shape[0])
        images = [Image.fromarray(to_uint8(t)).resize((width, height), Image.Resampling.LANCZOS) for t in tiles]
        row = Image.new("RGB", (3 * width + 2 * gap, height), "white")
        for i, im in enumerate(images):
            row.paste(im, (i * (width + gap), 0))
        ImageDraw.Draw(row).text((width + gap + 6, 4), f"{score:.1f} dB", fill="white", font=font,
                                 stroke_width=2, stroke_fill="black")
        rows.append(np.asarray(row))
    width = max(r.shape[1] for r in rows)
    canvas = np.full((sum(r.shape[0] for r in rows) + gap * (len(rows) - 1), width, 3), 255, np.uint8)
    top = 0
    for r in rows:
        canvas[top:top + r.shape[0], : r.shape[1]] = r
        top += r.shape[0] + gap
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.report.showcase", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("nir", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--model-id", default="reference")
    parser.add_argument("--ckpt-path", help="a training checkpoint instead of the shipped model")
    parser.add_argument("--height", type=int, default=200)
    parser.add_argument("--predict", nargs="*", default=[], metavar="KEY=VALUE",
                        help="predict options (default: predict's defaults, scale=auto), e.g. scale=1 fusion=bfwls")
    args = parser.parse_args(argv)
    import tempfile

    from nir_colorize.pipeline import load_pipeline
    from nir_colorize.utils.compose import compose_config

    source = f"ckpt_path={args.ckpt_path}" if args.ckpt_path else f"model_id={args.model_id}"
    try:
        with tempfile.TemporaryDirectory() as tmp:  # predict's pipeline with its defaults: what a user gets
            cfg = compose_config("predict", [source, "input=x", f"output={tmp}", "progress=false", *args.predict],
                                 output_dir=tmp)
            figure = showcase(args.nir, load_pipeline(cfg), args.height)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_png(args.out, figure)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Check C of the camera-scale study (issue 29) and its figure: the shipped model on real full-resolution camera frames.

``python experiments/camera_scale/full_res.py DATA_DIR OUT_DIR`` (DATA_DIR: the folder of nirscene1_samples/ and nirscene1_scenes/)
- The nirscene1 samples at their full size (about 1024x680; ``country/0000`` is left out: it is a source frame
  of VCIP's crops), colorized by ``predict``'s pipeline at ``scale=1`` and with the defaults (``scale=auto``),
  scored against their RGB, next to the NIR copy: ``full_res.md``.
- ``samples.png``: test frames of check A (camera scale) as NIR | scale=1 | scale=auto | ground truth, one row
  per scene type, from the eval outputs' inputs (the frames are read and upsized again here, as eval does).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from nir_colorize import pipeline
from nir_colorize.data.dataset import resized
from nir_colorize.data.io import read_image, read_nir
from nir_colorize.metrics.functional import per_image
from nir_colorize.utils.compose import compose_config

SAMPLES = ("country/0001", "urban/0000")
METRICS = ["psnr", "ssim", "lpips", "delta_e_ab"]
FIGURE = {"street": "scenes_047", "water": "scenes_168", "urban": "scenes_455", "indoor": "scenes_234",
          "oldbuilding": "scenes_106"}
FACTOR = 2.6667
TILE_H = 150


def pipelines(tmp: Path) -> dict[str, pipeline.Pipeline]:
    out = {}
    for name, scale in (("scale=1", "scale=1"), ("scale=auto (default)", "scale=auto")):
        cfg = compose_config("predict", ["input=x", f"output={tmp}", scale, "progress=false"], output_dir=tmp / "run")
        out[name] = pipeline.load_pipeline(cfg)
    return out


def tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()


def full_res(data: Path, runs: dict[str, pipeline.Pipeline]) -> str:
    lines = ["| frame | size | pipeline | " + " | ".join(METRICS) + " |", "|---|---|---|" + "---:|" * len(METRICS)]
    for stem in SAMPLES:
        nir = torch.from_numpy(read_nir(data / f"{stem}_nir.tiff")[..., 0])[None, None]
        rgb = tensor(read_image(data / f"{stem}_rgb.tiff"))
        outputs = {"NIR copy": nir.expand(-1, 3, -1, -1)} | {k: p(nir) for k, p in runs.items()}
        for name, pred in outputs.items():
            values = per_image(pred.clamp(0, 1), rgb, METRICS)
            lines.append(f"| `{stem}` | {nir.shape[-1]}x{nir.shape[-2]} | {name} | "
                         + " | ".join(f"{values[m].item():.3f}" for m in METRICS) + " |")
    return "\n".join(lines) + "\n"


def figure(scenes: Path, runs: dict[str, pipeline.Pipeline], out: Path) -> None:
    rows = []
    for kind, name in FIGURE.items():
        number = name.removeprefix("scenes_")
        nir = resized(tensor(read_nir(scenes / f"{number}_nir.png"))[0], FACTOR)[None]
        rgb = resized(tensor(read_image(scenes / f"{number}_rgb.png"))[0], FACTOR)[None]
        tiles = [nir.expand(-1, 3, -1, -1)] + [p(nir) for p in runs.values()] + [rgb]
        rows.append((kind, name, [Image.fromarray((t[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round()
                                                  .astype(np.uint8)) for t in tiles]))
    width = round(TILE_H * rows[0][2][0].width / rows[0][2][0].height)
    header = 22
    sheet = Image.new("RGB", (4 * width + 3 * 4, header + len(rows) * (TILE_H + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(["NIR (camera scale)", *runs, "ground truth"]):
        draw.text((col * (width + 4) + 4, 5), title, fill="black")
    for r, (kind, name, tiles) in enumerate(rows):
        for col, tile in enumerate(tiles):
            sheet.paste(tile.resize((width, TILE_H), Image.Resampling.LANCZOS), (col * (width + 4), header + r * (TILE_H + 4)))
        draw.text((4, header + r * (TILE_H + 4) + 4), f"{kind} ({name})", fill="yellow")
    sheet.save(out)


def main(argv: list[str]) -> int:
    data, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        runs = pipelines(Path(tmp))
    (out / "full_res.md").write_text(full_res(data / "nirscene1_samples", runs))
    figure(data / "nirscene1_scenes", runs, out / "samples.png")
    print((out / "full_res.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

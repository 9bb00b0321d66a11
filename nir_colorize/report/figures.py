"""Figures of a sweep: a sample grid (NIR | each variant | ground truth) and validation PSNR over epochs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image, ImageDraw, ImageFont, ImageOps

from nir_colorize import CONFIG_DIR
from nir_colorize.data.io import to_uint8
from nir_colorize.loading import load_checkpoint
from nir_colorize.report.collect import Run, Sweep
from nir_colorize.utils.atomic import atomic_path

log = logging.getLogger(__name__)

HEADER = 28  # pixels of the label strip above the columns
GAP = 4  # white pixels between tiles
MISSING_GRAY = 200


def grid_size(rows: int, cols: int, tile: int) -> tuple[int, int]:
    """(width, height) of a grid of ``rows`` x ``cols`` tiles under the label strip."""
    return cols * tile + (cols - 1) * GAP, HEADER + rows * tile + (rows - 1) * GAP


def tile_image(image: np.ndarray, tile: int) -> Image.Image:
    """An (H, W, C) [0, 1] image fitted into a ``tile`` x ``tile`` square (aspect kept, white padding)."""
    arr = to_uint8(image)
    pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).convert("RGB")
    return ImageOps.pad(pil, (tile, tile), method=Image.Resampling.BICUBIC, color="white")


def load_test_images(cfg: DictConfig, count: int, data_root: str | None = None) -> list[dict]:
    """``count`` images of a run's test sets, the first ones of each set in turn (e.g. 6 over two sets: 3 and 3;
    ``data_root`` replaces ``data.source.root``)."""
    data_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    if data_root:
        OmegaConf.update(data_cfg, "data.source.root", str(data_root))
    datamodule = instantiate(data_cfg.data)
    sets = datamodule.test_sets
    per_set = -(-count // max(len(sets), 1))
    images = []
    for name in sets:
        dataset = datamodule.split(name)
        images += [dataset[i] for i in range(min(per_set, len(dataset)))]
    return images[:count]


@torch.no_grad()
def colorize(run: Run, images: list[dict]) -> list[np.ndarray]:
    """The run's best checkpoint on ``images`` (each whole), followed by its fusion (BFWLS) if it has one."""
    module = load_checkpoint(run.checkpoint)
    fusion = None
    if run.stage != "raw" and run.cfg is not None:  # the run's fusion settings, else that fusion's defaults
        same = OmegaConf.select(run.cfg, "fusion.name") == run.stage
        fusion_cfg = run.cfg.fusion if same else OmegaConf.load(Path(CONFIG_DIR) / "fusion" / f"{run.stage}.yaml")
        fusion = instantiate(fusion_cfg.callback).fusion
    out = []
    for item in images:
        nir = item["nir"][None]
        pred = module(nir).clamp(0, 1)
        if fusion is not None:
            pred = fusion(nir, pred)
        out.append(pred[0].permute(1, 2, 0).numpy())
    return out


def _label(draw: ImageDraw.ImageDraw, text: str, left: int, width: int, font: ImageFont.ImageFont) -> None:
    while len(text) > 3 and draw.textlength(text, font=font) > width - 4:
        text = text[:-2] + "…"
    w = draw.textlength(text, font=font)
    draw.text((left + (width - w) / 2, HEADER / 2), text, fill="black", font=font, anchor="lm")


def sample_grid(sweep: Sweep, path: Path, count: int = 3, tile: int = 160,
                data_root: str | None = None) -> tuple[list[str], list[str]]:
    """Write the grid PNG: one row per test image, columns NIR | each variant | ground truth.
    Returns (column labels, image names). A variant without checkpoint gets a gray tile marked missing."""
    source = next((r for r in sweep.runs if r.cfg is not None), None)
    if source is None:
        raise FileNotFoundError("no run has a .hydra/config.yaml: cannot tell which data to colorize")
    images = load_test_images(source.cfg, count, data_root)
    if not images:
        raise FileNotFoundError("the test split is empty")
    columns: list[tuple[str, list[np.ndarray] | None]] = [("NIR", [i["nir"].permute(1, 2, 0).numpy() for i in images])]
    for run in sweep.runs:
        preds = None
        if run.checkpoint is not None:
            try:
                preds = colorize(run, images)
            except Exception as exc:  # noqa: BLE001 - one broken checkpoint must not lose the others
                log.warning("job %s (%s): cannot colorize with %s: %s", run.job, run.label, run.checkpoint, exc)
                sweep.problems.append(f"job {run.job} ({run.label}): {run.checkpoint} failed to load or run ({exc})")
        columns.append((run.label, preds))
    columns.append(("Ground truth", [i["rgb"].permute(1, 2, 0).numpy() for i in images]))
    width, height = grid_size(len(images), len(columns), tile)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    for c, (label, tiles) in enumerate(columns):
        left = c * (tile + GAP)
        _label(draw, label, left, tile, font)
        for r in range(len(images)):
            top = HEADER + r * (tile + GAP)
            if tiles is None:
                canvas.paste((MISSING_GRAY,) * 3, (left, top, left + tile, top + tile))
                draw.text((left + tile / 2, top + tile / 2), "missing", fill="black", font=font, anchor="mm")
            else:
                canvas.paste(tile_image(tiles[r], tile), (left, top))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG", optimize=True)
    return [label for label, _ in columns], [str(i["name"]) for i in images]


def psnr_plot(sweep: Sweep, path: Path) -> list[str]:
    """Validation PSNR over epochs, one line per variant (matplotlib, Agg). Returns the plotted labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    plotted, jobs = [], set()
    for run in sweep.runs:
        if run.curve and run.job not in jobs:  # one line per training (a job tested with BFWLS has two rows)
            jobs.add(run.job)
            epochs, psnr = zip(*run.curve, strict=True)
            ax.plot([e + 1 for e in epochs], psnr, marker="o", label=run.label)
            plotted.append(run.label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation PSNR (dB)")
    ax.set_title(f"{sweep.study}: validation PSNR per epoch")
    ax.grid(alpha=0.3)
    if plotted:
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        ax.text(0.5, 0.5, "no validation PSNR logged", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return plotted

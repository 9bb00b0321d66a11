"""Colorize NIR images: ``python -m nir_colorize.predict ckpt_path=P input=FILE|DIR output=DIR``."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from nir_colorize import CONFIG_DIR
from nir_colorize.data.dataset import to_tensor
from nir_colorize.data.io import IMAGE_SUFFIXES, read_nir, write_png
from nir_colorize.eval import load_module

log = logging.getLogger(__name__)


def list_inputs(spec: str) -> list[Path]:
    """Files named by ``spec``: one image, a folder of images, or a glob pattern."""
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = sorted(p for p in Path().glob(spec) if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"input {spec}: no images found")
    return files


@torch.no_grad()
def run(cfg: DictConfig) -> list[Path]:
    module = load_module(cfg.ckpt_path).eval()
    out_dir = Path(cfg.output)
    written = []
    for path in list_inputs(str(cfg.input)):
        nir = to_tensor(read_nir(path))[None]
        pred = module(nir).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        written.append(write_png(out_dir / f"{path.stem}.png", pred))
    print(f"wrote {len(written)} image(s) to {out_dir}")
    return written


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()

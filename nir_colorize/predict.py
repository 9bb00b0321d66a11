"""Colorize NIR images of any size: ``python -m nir_colorize.predict ckpt_path=P input=FILE|DIR|GLOB output=DIR``.

Options: ``fusion=bfwls`` (BFWLS at full resolution after the network), ``tile=`` / ``overlap=`` /
``tile_above=`` (tiled inference, see ``nir_colorize.inference``; ``tile=null``: always whole images),
``overwrite=true`` (replace existing outputs), ``backend=onnxruntime [onnx_path=FILE]`` (the ONNX export of
``nir_colorize.export`` run by onnxruntime on the CPU instead of torch; ``onnx_path=null``: the network of
``ckpt_path`` / ``model_id``, exported once into the cache, see ``nir_colorize.runtime``). One ``<stem>.png``
per input, at the input's size.
Unreadable inputs are reported and skipped; the run then exits with status 1. See docs/predict.md.
"""

from __future__ import annotations

import glob
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm import tqdm

from nir_colorize import CONFIG_DIR, inference
from nir_colorize.data.io import IMAGE_SUFFIXES, ImageReadError, read_nir, write_png
from nir_colorize.eval import load_trained
from nir_colorize.runtime import Bf16ChannelsLast, resolve_precision
from nir_colorize.utils.errors import UserError

log = logging.getLogger(__name__)


def list_inputs(spec: str) -> list[Path]:
    """Files named by ``spec``: one image, a folder of images, or a glob pattern (``**`` recurses)."""
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True)
                       if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"input {spec}: no images found ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def plan_outputs(inputs: list[Path], out_dir: Path, overwrite: bool = False) -> list[tuple[Path, Path]]:
    """(input, output) pairs; refuses, before anything is written, an output that would replace an
    input, two inputs with the same stem, and (unless ``overwrite``) outputs that already exist."""
    pairs = [(src, out_dir / f"{src.stem}.png") for src in inputs]
    by_name: dict[Path, list[Path]] = {}
    for src, dst in pairs:
        by_name.setdefault(dst, []).append(src)
    clashes = {dst: srcs for dst, srcs in by_name.items() if len(srcs) > 1}
    if clashes:
        lines = "\n".join(f"  {dst.name}: {', '.join(map(str, srcs))}" for dst, srcs in clashes.items())
        raise UserError(f"inputs with the same name would write the same output in {out_dir}:\n{lines}\n"
                         "colorize them into separate output folders")
    sources = {src.resolve() for src in inputs}
    onto_input = [dst for _, dst in pairs if dst.resolve() in sources]
    if onto_input:
        raise UserError(f"output {onto_input[0]} would overwrite an input image; choose another output folder")
    existing = [dst for _, dst in pairs if dst.exists()]
    if existing and not overwrite:
        listed = "\n".join(f"  {p}" for p in existing[:10]) + ("\n  ..." if len(existing) > 10 else "")
        raise FileExistsError(f"{len(existing)} output(s) already exist (pass overwrite=true to replace them):\n{listed}")
    return pairs


def resolve_device(accelerator: str) -> torch.device:
    """``trainer.accelerator`` to a device: cpu, or the GPU (``gpu``/``cuda``, or ``auto`` when one exists)."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.accelerator={accelerator}: no CUDA device here (use trainer.accelerator=cpu)")
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    if accelerator in ("cpu", "auto"):
        return torch.device("cpu")
    raise UserError(f"trainer.accelerator={accelerator}: predict runs on cpu, gpu or auto")


BACKENDS = ("torch", "onnxruntime")


def load_net(cfg: DictConfig, device: torch.device) -> torch.nn.Module:
    """The network for ``cfg.backend``: the torch ``Colorizer`` on ``device``, or (``onnxruntime``, CPU only)
    an ``OnnxColorizer`` with the same contract, so that tiling and fusion run unchanged."""
    backend = str(cfg.get("backend") or "torch")
    precision = str(cfg.get("precision") or "fp32")
    if backend == "torch":
        net = load_trained(cfg).net.eval().to(device)
        if resolve_precision(precision, device) == "bf16":
            log.info("precision=%s: bf16 autocast, channels_last (docs/predict.md: speed and PSNR cost)", precision)
            return Bf16ChannelsLast(net)
        return net
    if precision == "bf16":
        raise UserError(f"precision=bf16 is a torch path; backend={backend} runs fp32 (use precision=auto or fp32)")
    if backend != "onnxruntime":
        raise UserError(f"backend={backend}: choose one of {', '.join(BACKENDS)}")
    if device.type != "cpu":
        raise UserError(f"backend=onnxruntime runs on the CPU (trainer.accelerator={cfg.trainer.accelerator}); "
                        "use trainer.accelerator=cpu, or backend=torch on the GPU")
    from nir_colorize.runtime import load_onnx

    return load_onnx(cfg)


def write_rgb(path: Path, rgb: torch.Tensor) -> Path:
    """Write RGB (1, 3, H, W) in [0, 1] as an 8-bit PNG (``write_png``: atomic); converts in place of ``rgb``,
    so a large image needs no float copies."""
    arr = rgb[0].mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return write_png(path, np.ascontiguousarray(arr))


def advance(bar: tqdm, done: int, total: int) -> None:
    bar.total = total
    bar.update(done - bar.n)


def progress_mode(enabled: bool, stream=None) -> str:
    """How ``run`` shows progress on ``stream`` (stderr): ``bar`` (tqdm, images and the tiles of a large
    image) on a terminal; ``lines`` elsewhere, e.g. a log file or a pipe, where tqdm's redraws would
    leave dozens of partial lines per image: one plain line per image with its time, and a summary;
    ``off`` when ``progress=false``."""
    if not enabled:
        return "off"
    stream = sys.stderr if stream is None else stream
    try:
        return "bar" if stream.isatty() else "lines"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "lines"


def say(line: str) -> None:
    """One progress line on stderr, flushed (a log file shows it at once)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class TileCount:
    """``inference.colorize``'s ``progress(done, total)``: keeps the tile count, moves the tiles bar."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar
        self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.total = total
        advance(self.bar, done, total)


@dataclass
class PredictResult:
    """Outputs written, and (input, problem) of each input that could not be read."""

    out_dir: Path
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"wrote {len(self.written)} image(s) to {self.out_dir}"]
        if self.failed:
            lines.append(f"failed: {len(self.failed)} image(s):")
            lines += [f"  {path}: {problem}" for path, problem in self.failed]
        return "\n".join(lines)


def run(cfg: DictConfig) -> PredictResult:
    """Colorize every input of ``cfg.input`` into ``cfg.output``; unreadable files are collected, not raised."""
    out_dir = Path(cfg.output)
    pairs = plan_outputs(list_inputs(str(cfg.input)), out_dir, bool(cfg.overwrite))
    accelerator = str(cfg.trainer.accelerator)
    onnx = str(cfg.get("backend") or "torch") == "onnxruntime"
    device = torch.device("cpu") if onnx and accelerator == "auto" else resolve_device(accelerator)
    net = load_net(cfg, device)
    fusion = instantiate(cfg.fusion.callback).fusion if cfg.fusion.get("callback") else None
    tiling = {"tile": cfg.tile, "overlap": cfg.overlap, "tile_above": cfg.tile_above, "batch_size": cfg.batch_size}
    result = PredictResult(out_dir)
    mode = progress_mode(bool(cfg.progress))
    started, pixels = time.perf_counter(), 0
    with tqdm(pairs, desc="colorize", unit="image", file=sys.stderr, disable=mode != "bar") as bar:
        for index, (src, dst) in enumerate(bar, 1):
            bar.set_postfix_str(src.name)
            begun = time.perf_counter()
            try:
                nir = torch.from_numpy(read_nir(src, bit_depth=cfg.get("bit_depth"))[..., 0])[None, None]
            except ImageReadError as exc:
                log.error("skipped %s", exc)
                result.failed.append((src, exc.problem))
                if mode == "lines":
                    say(f"[{index}/{len(pairs)}] {src}: skipped ({exc.problem})")
                continue
            with torch.inference_mode(), tqdm(desc="tiles", unit="tile", leave=False, file=sys.stderr,
                                               disable=mode != "bar") as tiles:
                count = TileCount(tiles)
                rgb = inference.colorize(net, nir, **tiling, progress=count)
                if fusion is not None:
                    rgb = fusion(nir.to(device), rgb.to(device)).cpu()
                result.written.append(write_rgb(dst, rgb))
            height, width = nir.shape[-2:]
            pixels += height * width
            if mode == "lines":
                tiled = f"{count.total} tiles" if count.total > 1 else "whole"
                say(f"[{index}/{len(pairs)}] {src} -> {dst} ({width}x{height}, {tiled}): "
                    f"{time.perf_counter() - begun:.2f} s")
    if mode == "lines":
        elapsed = time.perf_counter() - started
        rate = f" ({elapsed / len(result.written):.2f} s/image, {pixels / 1e6 / elapsed:.3f} Mpx/s)" if result.written else ""
        failed = f"; {len(result.failed)} skipped" if result.failed else ""
        say(f"colorized {len(result.written)} of {len(pairs)} image(s) in {elapsed:.1f} s{rate}{failed}")
    print(result.report())
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    if run(cfg).failed:
        raise SystemExit(1)


if __name__ == "__main__":
    from nir_colorize.utils.errors import run_main

    run_main(main)  # a user error: one line on stderr, exit status 2 (HYDRA_FULL_ERROR=1: the traceback)

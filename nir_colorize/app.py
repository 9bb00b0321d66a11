"""``python -m nir_colorize.app [--host 127.0.0.1] [--port 7860]`` (``make app``): colorize NIR images and clips in
the browser, offline (Gradio; ``pip install -e .[app]``).

A thin entry point: every image goes through ``predict``'s own code (``pipeline.load_pipeline`` with the predict
config, ``read_nir``, ``write_rgb``; a clip through ``pipeline.run_video``), so a PNG from the page is the PNG
``predict`` writes with the same options. Requests queue one at a time (no thread oversubscription: the pipeline's
thread policy applies); each request writes into its own temporary folder. Limits (shown on the page): upload
size, image size, clip length. A checkpoint field is offered only on 127.0.0.1 (it reads the server's files).
"""

from __future__ import annotations

import nir_colorize.utils.openmp  # noqa: F401  # isort: skip  (first: libgomp reads its wait policy when torch loads it)
import argparse
import logging
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from nir_colorize import loading, pipeline, shipped
from nir_colorize.data.io import read_image, read_nir
from nir_colorize.errors import USER_ERRORS, ImageReadError
from nir_colorize.metrics.functional import per_image
from nir_colorize.utils.compose import compose_config
from nir_colorize.video import VideoReader, is_video

log = logging.getLogger(__name__)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
METRICS = ["psnr", "ssim", "mae", "delta_e_ab"]
SCALES = ["auto", "1", "2", "3", "4"]


@dataclass(frozen=True)
class Limits:
    upload_mb: int = 50
    megapixels: float = 24.0
    clip_seconds: float = 60.0

    def describe(self) -> str:
        return (f"Limits: {self.upload_mb} MB per upload, {self.megapixels:g} megapixels per image, "
                f"{self.clip_seconds:g} s per clip.")


def predict_cfg(model: str, fusion: bool, gain: float, flip: bool, scale: str, out: Path, source: str = "x"):
    """predict's config for the page's options (``model``: a shipped id, or a checkpoint path), writing to ``out`` (a
    folder, or a video file)."""
    model_key = f"ckpt_path={model}" if model.endswith(".ckpt") else f"model_id={model}"
    overrides = [model_key, f"input={source}", f"output={out}", "progress=false", f"scale={scale}",
                 f"flip={'auto' if flip else 'false'}", "overwrite=true"]
    if fusion:
        overrides += ["fusion=bfwls", f"fusion.detail_gain={gain}"]
    run_dir = (out.parent if out.suffix else out) / ".run"
    return compose_config("predict", overrides, output_dir=run_dir)


@lru_cache(maxsize=2)
def network(model: str) -> torch.nn.Module:
    """The model's network, loaded once (``predict``'s ``loading.load_net``)."""
    cfg = predict_cfg(model, False, 1.0, False, "auto", Path(tempfile.gettempdir()))
    return loading.load_net(cfg, loading.resolve_device(str(cfg.trainer.accelerator)))


def check_image(path: Path, limits: Limits) -> torch.Tensor:
    """The NIR of ``path`` as (1, 1, H, W), or an ``ImageReadError`` naming the file and the problem."""
    nir = read_nir(path)
    height, width = nir.shape[:2]
    if height * width > limits.megapixels * 1e6:
        raise ImageReadError(path, f"{width}x{height} is above this page's limit of {limits.megapixels:g} megapixels "
                                   "(use python -m nir_colorize.predict for larger images)")
    return torch.from_numpy(nir[..., 0])[None, None]


def colorize_images(paths: list[Path], names: list[str], model: str, fusion: bool, gain: float, flip: bool,
                    scale: str, truth: Path | None, limits: Limits, out: Path) -> tuple[list[Path], list[str], str]:
    """Colorize each image with predict's pipeline into ``out``: (PNGs, one line per image, metrics text)."""
    cfg = predict_cfg(model, fusion, gain, flip, scale, out)
    runner = pipeline.load_pipeline(cfg, network(model))
    written, lines, metrics = [], [], ""
    for path, name in zip(paths, names, strict=True):
        try:
            nir = check_image(path, limits)
        except ImageReadError as exc:  # named as the user knows it, not by the server's upload path
            raise ImageReadError(name, exc.problem.replace(str(path), name)) from None
        start = time.perf_counter()
        with torch.inference_mode():  # as in predict: write_rgb converts in place
            rgb = runner(nir)
            dst = pipeline.write_rgb(out / f"{Path(name).stem}.png", rgb.clone())
        height, width = nir.shape[-2:]
        lines.append(f"{name}: {width}x{height}, {runner.describe(height, width)}, {time.perf_counter() - start:.2f} s")
        written.append(dst)
        if truth is not None and len(paths) == 1:
            metrics = score(rgb, truth, name)
    return written, lines, metrics


def score(rgb: torch.Tensor, truth: Path, name: str) -> str:
    target = read_image(truth)
    if target.shape[-1] != 3 or target.shape[:2] != tuple(rgb.shape[-2:]):
        raise ImageReadError(truth, f"the ground truth must be an RGB image of {name}'s size "
                                    f"({rgb.shape[-1]}x{rgb.shape[-2]}), got {target.shape[1]}x{target.shape[0]}")
    values = per_image(rgb, torch.from_numpy(target.transpose(2, 0, 1).copy())[None], METRICS)
    return " | ".join(f"{m.upper() if m != 'delta_e_ab' else 'ΔE ab'} {values[m].item():.3f}" for m in METRICS)


def colorize_clip(path: Path, name: str, model: str, fusion: bool, gain: float, flip: bool, scale: str,
                  limits: Limits, out: Path, on_frame=None) -> tuple[Path, str]:
    """A clip through ``pipeline.run_video`` (one frame in memory at a time) into ``out/<stem>.mp4``."""
    with VideoReader(path) as reader:
        info = reader.info
        seconds = info.frames / float(info.rate) if info.frames and info.rate else 0.0
    if seconds > limits.clip_seconds:
        raise ImageReadError(name, f"{seconds:.1f} s is above this page's limit of {limits.clip_seconds:g} s per clip")
    if info.width * info.height > limits.megapixels * 1e6:
        raise ImageReadError(name, f"{info.width}x{info.height} frames are above the {limits.megapixels:g} megapixel limit")
    cfg = predict_cfg(model, fusion, gain, flip, scale, out / f"{Path(name).stem}.mp4", source=str(path))
    result = pipeline.run_video(cfg, on_frame=on_frame)
    return result.written[0], result.report()


def build(host: str = "127.0.0.1", limits: Limits = Limits(), model: str = shipped.DEFAULT_ID):
    """The page (a ``gradio.Blocks``)."""
    import gradio as gr

    local = host in LOCAL_HOSTS

    def refuse(message: str):
        """The problem in the log box (it stays) and a notice; the outputs cleared."""
        gr.Warning(message)
        return None, None, None, f"error: {message}", ""

    def run(files, truth, model_field, fusion, gain, flip, scale, progress=gr.Progress()):  # noqa: B008
        if not files:
            return refuse("No file: drop one or more NIR images, or one clip.")
        paths = [Path(f) for f in files]
        names = [p.name for p in paths]
        chosen = (model_field or model).strip() if local else model
        out = Path(tempfile.mkdtemp(prefix="nir-colorize-app-"))
        try:
            if any(is_video(p) for p in paths):
                if len(paths) > 1:
                    raise ImageReadError(names[0], "give one clip at a time, without images")
                video, report = colorize_clip(paths[0], names[0], chosen, fusion, gain, flip, scale, limits, out,
                                              on_frame=lambda done, total: progress((done, total), unit="frames"))
                return None, None, [str(video)], report, ""
            written, lines, metrics = colorize_images(paths, names, chosen, fusion, gain, flip, scale,
                                                      Path(truth) if truth else None, limits, out)
        except USER_ERRORS as exc:  # the file and the problem, on the page; the server goes on
            return refuse(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug: said on the page and logged, the server goes on
            log.exception("request failed")
            return refuse(f"{', '.join(names)}: unexpected {type(exc).__name__}: {exc} (see the server's log)")
        downloads = [str(p) for p in written]
        if len(written) > 1:
            bundle = out / "colorized.zip"
            with zipfile.ZipFile(bundle, "w") as zf:
                for p in written:
                    zf.write(p, p.name)
            downloads.append(str(bundle))
        (out / ".preview").mkdir()
        preview = pipeline.write_rgb(out / ".preview" / f"{written[0].stem}_nir.png",  # browsers show no TIFF
                                     check_image(paths[0], limits).repeat(1, 3, 1, 1))
        return (str(preview), str(written[0])), str(written[0]), downloads, "\n".join(lines), metrics

    with gr.Blocks(title="nir-colorize", analytics_enabled=False) as page:
        gr.Markdown("## nir-colorize: near-infrared to colour\nDrop NIR images (PNG, TIFF, JPEG; 8 to 16 bit) or one "
                    f"clip (MP4, MOV, MKV, AVI, WebM). {limits.describe()} Runs on this machine, offline.")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="NIR images or a clip", file_count="multiple", elem_id="inputs")
                truth = gr.File(label="Ground-truth RGB (optional, one image): metrics", elem_id="truth")
                model_field = gr.Textbox(label="Model: shipped id or checkpoint path (.ckpt)", value=model,
                                         visible=local, elem_id="model")
                with gr.Row():
                    scale = gr.Dropdown(SCALES, value="auto", label="Working scale (scale=)", elem_id="scale")
                    flip = gr.Checkbox(value=True, label="Flip averaging (where the frame is shrunk)", elem_id="flip")
                with gr.Row():
                    fusion = gr.Checkbox(value=False, label="BFWLS detail fusion", elem_id="fusion")
                    gain = gr.Slider(0.0, 2.0, value=1.0, step=0.1, label="BFWLS detail gain", elem_id="gain")
                button = gr.Button("Colorize", variant="primary", elem_id="colorize")
            with gr.Column():
                slider = gr.ImageSlider(label="NIR | colour", type="numpy", format="png", elem_id="slider")
                result = gr.Image(label="Colour (PNG, as predict writes it)", type="filepath", format="png",
                                  elem_id="result")
                downloads = gr.File(label="Download: PNGs, a zip of them, or the MP4", elem_id="downloads")
                log = gr.Textbox(label="Per image: size, working scale, seconds", lines=3, elem_id="log")
                metrics = gr.Textbox(label="Metrics against the ground truth", elem_id="metrics")
        button.click(run, [files, truth, model_field, fusion, gain, flip, scale],
                     [slider, result, downloads, log, metrics])
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--model", default=shipped.DEFAULT_ID, help="shipped id or checkpoint (default reference)")
    parser.add_argument("--max-upload-mb", type=int, default=Limits.upload_mb)
    parser.add_argument("--max-megapixels", type=float, default=Limits.megapixels)
    parser.add_argument("--max-clip-seconds", type=float, default=Limits.clip_seconds)
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry: nothing leaves the machine
    try:
        import gradio  # noqa: F401
    except ImportError:
        print("error: the page needs Gradio: pip install -e '.[app]' (make app installs it)", file=sys.stderr)
        return 2
    limits = Limits(args.max_upload_mb, args.max_megapixels, args.max_clip_seconds)
    network(args.model)  # a bad model fails now, in one line, not at the first request
    page = build(args.host, limits, args.model)
    page.queue(default_concurrency_limit=1)  # one request at a time: the CPU's threads are not shared out twice
    page.launch(server_name=args.host, server_port=args.port, share=False, show_error=True,
                max_file_size=f"{args.max_upload_mb}mb")
    return 0


if __name__ == "__main__":
    from nir_colorize.utils.errors import run_main

    sys.exit(run_main(main))

"""What ``predict`` does to files: the pipeline (network, tiled as configured, then the fusion) and the loops over
images, a folder of frames and a video's frames, with progress, timing and the list of failures.

``run(cfg)`` takes a predict config (``conf/predict.yaml``): the entry point ``python -m nir_colorize.predict``,
the benchmarks and the tests call it the same way. The network comes from ``nir_colorize.loading``.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm import tqdm

from nir_colorize import inference, loading
from nir_colorize.data.io import IMAGE_SUFFIXES, read_nir, write_png
from nir_colorize.errors import ImageReadError, UserError
from nir_colorize.scale import (
    DEFAULT_RESTORE,
    RESTORE,
    TRAIN_LONG_SIDE,
    colorize_at_scale,
    shrunk_size,
    use_flip,
    working_factor,
)
from nir_colorize.utils.threads import load_adaptive_threads
from nir_colorize.video import (
    SCENE_CUT,
    ChromaSmoother,
    VideoReader,
    VideoReadError,
    copy_streams,
    is_video,
    video_writer,
)

log = logging.getLogger(__name__)


def natural_key(path: Path) -> tuple:
    """Sort key: runs of digits compare as numbers (``frame_2`` before ``frame_10``)."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", str(path))))


def list_inputs(spec: str) -> list[Path]:
    """Files named by ``spec``: one image, a folder of images, or a glob pattern (``**`` recurses), in
    natural order (``natural_key``)."""
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                       key=natural_key)
    else:
        files = sorted((Path(p) for p in glob.glob(spec, recursive=True)
                        if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
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


def plan_video(src: Path, output: str | Path, overwrite: bool = False) -> Path:
    """The output of video ``src``: ``output`` if it names a video, else ``<output>/<stem>.mp4``; refused,
    before anything is written, when it is the input or (unless ``overwrite``) exists."""
    if not src.is_file():
        raise FileNotFoundError(f"input {src}: no such video file")
    dst = Path(output) if is_video(output) else Path(output) / f"{src.stem}.mp4"
    if dst.resolve() == src.resolve():
        raise UserError(f"output {dst} would overwrite the input video; choose another output")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"output {dst} already exists (pass overwrite=true to replace it)")
    return dst


def plan_frames(src: Path, output: str | Path, overwrite: bool = False) -> Path:
    """The folder that receives video ``src``'s colour frames (``video.frames=true``): ``output``; refused, before
    anything is written, where it already holds frames of ``src`` (unless ``overwrite``)."""
    if not src.is_file():
        raise FileNotFoundError(f"input {src}: no such video file")
    dst = Path(output)
    if is_video(dst):
        raise UserError(f"output={dst}: video.frames=true writes a folder of PNG frames; give a folder")
    if not overwrite and dst.is_dir() and any(dst.glob(f"{glob.escape(src.stem)}_*.png")):
        raise FileExistsError(f"output {dst} already holds frames of {src.stem} (pass overwrite=true to replace them)")
    return dst


@contextlib.contextmanager
def frame_writer(folder: Path, stem: str, result: PredictResult):
    """``write(rgb, seconds)`` for a video's colour frames as ``<folder>/<stem>_000001.png`` ... (upright; each PNG
    written atomically and listed in ``result.written``)."""
    folder.mkdir(parents=True, exist_ok=True)

    def write(rgb: np.ndarray, seconds: float | None = None) -> None:
        result.written.append(write_png(folder / f"{stem}_{len(result.written) + 1:06d}.png", rgb))

    yield write


def to_rgb16(rgb: torch.Tensor) -> np.ndarray:
    """RGB (1, 3, H, W) in [0, 1] as a contiguous (H, W, 3) uint16 array of 16-bit levels (a 10-bit video's input)."""
    return (rgb[0].clamp(0, 1) * 65535 + 0.5).to(torch.int32).permute(1, 2, 0).cpu().numpy().astype(np.uint16)


def to_rgb8(rgb: torch.Tensor) -> np.ndarray:
    """RGB (1, 3, H, W) in [0, 1] as a contiguous (H, W, 3) uint8 array; converts in place of ``rgb``, so a
    large image needs no float copies."""
    arr = rgb[0].mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr)


def write_rgb(path: Path, rgb: torch.Tensor) -> Path:
    """Write RGB (1, 3, H, W) in [0, 1] as an 8-bit PNG (``write_png``: atomic), converting in place."""
    return write_png(path, to_rgb8(rgb))


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
    """``inference.colorize``'s ``progress(done, total)``: keeps the tile count, moves the tiles bar (if any)."""

    def __init__(self, bar: tqdm | None = None) -> None:
        self.bar = bar
        self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.total = total
        if self.bar is not None:
            advance(self.bar, done, total)

    def describe(self) -> str:
        return f"{self.total} tiles" if self.total > 1 else "whole"


@dataclass
class Pipeline:
    """What is done to each image or video frame: the network at the working scale (``nir_colorize.scale``: shrunk
    by ``factor(H, W)``, tiled as configured, restored to full size), then the fusion."""

    net: torch.nn.Module
    device: torch.device
    fusion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None
    tiling: dict
    scale: float | str = 1.0
    restore: str = DEFAULT_RESTORE
    train_long_side: int = TRAIN_LONG_SIDE
    flip: bool | str = False

    def factor(self, height: int, width: int) -> float:
        return working_factor(height, width, self.scale, self.train_long_side)

    def describe(self, height: int, width: int) -> str:
        """How an image of this size is colorized, in words: ``at 384x255 (scale=auto, band)`` or ``as it is``."""
        factor = self.factor(height, width)
        if factor <= 1:
            return "as it is"
        h, w = shrunk_size(height, width, factor)
        return f"at {w}x{h} (scale={self.scale}, {self.restore}{', flip-averaged' if use_flip(self.flip, factor) else ''})"

    def __call__(self, nir: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """RGB (1, 3, H, W) in [0, 1] on the CPU of NIR (1, 1, H, W) in [0, 1] on the CPU.

        On the CPU, no more torch threads than other processes leave cores free (``utils.threads``)."""
        adaptive = load_adaptive_threads() if self.device.type == "cpu" else contextlib.nullcontext()
        with torch.inference_mode(), adaptive:
            def network(x: torch.Tensor) -> torch.Tensor:
                return inference.colorize(self.net, x, **self.tiling, progress=progress)

            rgb = colorize_at_scale(network, nir.to(self.device), self.factor(*nir.shape[-2:]), self.restore,
                                    self.flip).cpu()
            if self.fusion is not None:
                rgb = self.fusion(nir.to(self.device), rgb.to(self.device)).cpu()
        return rgb


def load_pipeline(cfg: DictConfig, net: torch.nn.Module | None = None) -> Pipeline:
    """The network of ``cfg`` on its device (``net``: one ``loading.load_net(cfg, device)`` gave before, reused),
    its fusion, scale and tiling options."""
    accelerator = str(cfg.trainer.accelerator)
    onnx = str(cfg.get("backend") or "torch") == "onnxruntime"
    device = torch.device("cpu") if onnx and accelerator == "auto" else loading.resolve_device(accelerator)
    fusion = instantiate(cfg.fusion.callback).fusion if cfg.fusion.get("callback") else None
    tiling = {"tile": cfg.tile, "overlap": cfg.overlap, "tile_above": cfg.tile_above, "batch_size": cfg.batch_size}
    net = net if net is not None else loading.load_net(cfg, device)
    scale, restore = cfg.get("scale", 1.0), str(cfg.get("restore") or DEFAULT_RESTORE)
    flip = cfg.get("flip", False)
    try:  # a bad scale= or flip= fails now, not at the first image
        working_factor(TRAIN_LONG_SIDE, TRAIN_LONG_SIDE, scale)
        use_flip(flip, 1.0)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if restore not in RESTORE:
        raise UserError(f"restore={restore}: use one of {', '.join(RESTORE)}")
    side = getattr(net, "train_long_side", None)
    if side is None and str(scale) == "auto":
        log.info("scale=auto: the model records no training scale; assuming a %d-pixel long side (every data "
                 "source here, design section 10)", TRAIN_LONG_SIDE)
    return Pipeline(net, device, fusion, tiling, scale, restore, side or TRAIN_LONG_SIDE, flip)


def smoother(cfg: DictConfig) -> ChromaSmoother:
    """The ``ChromaSmoother`` of ``cfg.video`` (``chroma_smoothing`` 0: measures only)."""
    options = cfg.get("video") or {}
    cut = options.get("scene_cut", SCENE_CUT)
    return ChromaSmoother(float(options.get("chroma_smoothing") or 0.0), None if cut is None else float(cut),
                          motion=bool(options.get("chroma_motion", True)))


@dataclass
class PredictResult:
    """Outputs written, and (input, problem) of each input that could not be read; for a video, its frame
    count and the seconds they took; the chroma measure of a video or of smoothed frames; the seconds of each
    image (as predict's progress lines print them)."""

    out_dir: Path
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    chroma: ChromaSmoother | None = None
    image_seconds: list[float] = field(default_factory=list)  # per image written: read, colorize, write

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def report(self) -> str:
        if self.frames:
            lines = [f"wrote {self.written[0]}: {self.frames} frames in {self.seconds:.1f} s "
                     f"({self.frames_per_s:.2f} frames/s)"]
        else:
            lines = [f"wrote {len(self.written)} image(s) to {self.out_dir}"]
        if self.chroma is not None and (line := self.chroma.describe()):
            lines.append(line)
        if self.failed:
            lines.append(f"failed: {len(self.failed)} {'video' if self.frames else 'image(s)'}:")
            lines += [f"  {path}: {problem}" for path, problem in self.failed]
        return "\n".join(lines)


def run(cfg: DictConfig) -> PredictResult:
    """Colorize every input of ``cfg.input`` into ``cfg.output`` (a predict config); unreadable files are
    collected, not raised. A video input goes to ``run_video``."""
    if is_video(cfg.input):
        return run_video(cfg)
    if is_video(cfg.output):
        return run_frames_to_video(cfg)
    out_dir = Path(cfg.output)
    pairs = plan_outputs(list_inputs(str(cfg.input)), out_dir, bool(cfg.overwrite))
    chroma = smoother(cfg)
    chroma = chroma if chroma.weight else None  # a folder of frames: smoothed and measured only if asked
    pipeline = load_pipeline(cfg)
    result = PredictResult(out_dir, chroma=chroma)
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
                rgb = pipeline(nir, progress=count)
                result.written.append(write_rgb(dst, rgb if chroma is None else chroma(rgb, nir)))
            height, width = nir.shape[-2:]
            pixels += height * width
            result.image_seconds.append(time.perf_counter() - begun)
            if mode == "lines":
                say(f"[{index}/{len(pairs)}] {src} -> {dst} ({width}x{height}, {pipeline.describe(height, width)}, "
                    f"{count.describe()}): "
                    f"{time.perf_counter() - begun:.2f} s")
    if mode == "lines":
        elapsed = time.perf_counter() - started
        rate = f" ({elapsed / len(result.written):.2f} s/image, {pixels / 1e6 / elapsed:.3f} Mpx/s)" if result.written else ""
        failed = f"; {len(result.failed)} skipped" if result.failed else ""
        say(f"colorized {len(result.written)} of {len(pairs)} image(s) in {elapsed:.1f} s{rate}{failed}")
    print(result.report())
    return result


def run_frames_to_video(cfg: DictConfig) -> PredictResult:
    """Colorize the images of ``cfg.input`` (a folder or glob of frames, in natural order) into the video
    ``cfg.output`` at ``video.fps`` frames/s, one frame in memory at a time; every frame must have the first's size."""
    frames = list_inputs(str(cfg.input))
    dst = Path(cfg.output)
    if dst.exists() and not cfg.overwrite:
        raise FileExistsError(f"output {dst} already exists (pass overwrite=true to replace it)")
    options = cfg.get("video") or {}
    rate = Fraction(str(options.get("fps") or 25))
    chroma = smoother(cfg)
    pipeline = load_pipeline(cfg)
    result = PredictResult(dst.parent, chroma=chroma)
    started = time.perf_counter()
    first = read_nir(frames[0], bit_depth=cfg.get("bit_depth"))
    size = first.shape[:2]
    with video_writer(dst, rate, size[1], size[0], options.get("codec"), int(options.get("crf", 18))) as write, \
            torch.inference_mode():
        for index, src in enumerate(frames):
            nir = first if index == 0 else read_nir(src, bit_depth=cfg.get("bit_depth"))
            if nir.shape[:2] != size:
                raise ImageReadError(src, f"{nir.shape[1]}x{nir.shape[0]}, the first frame {size[1]}x{size[0]}: "
                                          "the frames of one video must have one size")
            x = torch.from_numpy(nir[..., 0])[None, None]
            write(to_rgb8(chroma(pipeline(x), x)))
            result.frames += 1
    result.seconds = time.perf_counter() - started
    result.written.append(dst)
    print(result.report())
    return result


LINE_EVERY_S = 10.0  # progress=lines, video: a line at most this often


def run_video(cfg: DictConfig, on_frame: Callable[[int, int | None], None] | None = None) -> PredictResult:
    """Colorize the video ``cfg.input`` frame by frame (``Pipeline``, then ``ChromaSmoother``) into a video of
    its frame rate and size (``plan_video``); one frame in memory at a time. ``on_frame(done, total)`` after each
    frame (``total``: the declared frame count, or None)."""
    src = Path(cfg.input)
    options = cfg.get("video") or {}
    as_frames = bool(options.get("frames"))  # a folder of PNG frames instead of a video
    bits = 8 if as_frames else int(options.get("bits") or 8)  # of the output video
    to_levels = to_rgb16 if bits == 10 else to_rgb8
    dst = plan_frames(src, cfg.output, bool(cfg.overwrite)) if as_frames else plan_video(src, cfg.output,
                                                                                            bool(cfg.overwrite))
    chroma = smoother(cfg)
    mode = progress_mode(bool(cfg.progress))
    with VideoReader(src) as reader:  # a broken file fails here, before the network loads
        info = reader.info
        pipeline = load_pipeline(cfg)
        result = PredictResult(dst if as_frames else dst.parent, chroma=chroma)
        count = TileCount()
        total = info.frames or None
        started = last = time.perf_counter()
        stamp = 0.0  # presentation time of the frame written last (s)
        writer = frame_writer(dst, src.stem, result) if as_frames else video_writer(
            dst, info.rate, info.width, info.height, options.get("codec"), int(options.get("crf", 18)),
            rotation=info.rotation, timed=True, bits=bits)
        with writer as write, \
                tqdm(total=total, desc="colorize", unit="frame", file=sys.stderr, disable=mode != "bar") as bar, \
                torch.inference_mode():
            for nir in reader:
                if tuple(nir.shape[-2:]) != info.upright:
                    raise VideoReadError(src, f"frame {reader.decoded} is {nir.shape[-1]}x{nir.shape[-2]}, the "
                                              f"stream {info.width}x{info.height} (size changes are not supported)")
                seconds = reader.last_time if reader.last_time is not None else \
                    (stamp + 1 / float(info.rate) if result.frames else 0.0)  # a frame without a timestamp
                if result.frames and seconds <= stamp:  # two frames at one time: a player shows only one
                    seconds = stamp + 1 / 90000
                write(to_levels(chroma(pipeline(nir, progress=count), nir)), seconds)  # the source's timing
                stamp = seconds
                result.frames += 1
                bar.update()
                if on_frame is not None:
                    on_frame(result.frames, total)
                now = time.perf_counter()
                if mode == "lines" and (result.frames == 1 or now - last >= LINE_EVERY_S):
                    last = now
                    say(f"[{result.frames}/{total or '?'} frames] {src}: {result.frames / (now - started):.2f} frames/s")
        result.seconds = time.perf_counter() - started
        for problem in [] if as_frames else copy_streams(src, dst):  # audio, subtitles: as recorded, not re-encoded
            log.warning(problem)
            say(problem)
        if not as_frames:
            result.written.append(dst)
        if problem := info.short_of(reader.decoded):
            log.error("%s: %s", src, problem)
            result.failed.append((src, problem))
    if mode == "lines":
        say(f"colorized {result.frames} frames of {src} ({info.width}x{info.height} at {float(info.rate):.4g} "
            f"frames/s, {pipeline.describe(*info.upright)}, {count.describe()}) in {result.seconds:.1f} s ({result.frames_per_s:.2f} frames/s)")
    print(result.report())
    return result

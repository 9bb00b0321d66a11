"""Video for ``predict``: NIR frames in from a video file, colour frames out to one, and temporal chroma smoothing.

Decoding and encoding go through PyAV (the ``video`` extra; ``requirements.lock`` pins it), imported only
when a video is read or written. ``VideoReader`` decodes one frame at a time to 8-bit luma (the ``gray``
format), ``video_writer`` encodes one frame at a time (H.264 ``libx264``, ``yuv420p``; VP9 for ``.webm``;
``yuv444p`` for an odd width or height, which 4:2:0 cannot hold) at the source's frame rate and size into a
temporary file renamed at the end: memory does not grow with the clip, and a failure leaves no output.
``copy_streams`` then copies the source's audio and subtitle streams into it, packet for packet (not re-encoded).

``ChromaSmoother`` damps colour flicker: an exponential moving average of the U, V planes (kornia's YUV,
as BFWLS uses) over the frames, ``uv_t = w * uv_{t-1} + (1 - w) * uv_t``; Y (the detail, the motion) is
never smoothed. With ``motion`` (``video.chroma_motion``, the default) the average first follows the frame's
global motion (``global_shift``: phase correlation of the NIR frames, for pans) and is not taken where the NIR
changed on its own (moving objects, content entering the frame), which keeps colours from trailing
(experiments/video_chroma). A scene cut (mean |NIR change| above ``scene_cut``) restarts the average, so that one scene's
colours do not bleed into the next. It measures the mean frame-to-frame chroma change of the frames before
and after smoothing (cuts left out), after following the frame's global motion (``moved_change``): the colour
flicker, not the change that a pan itself brings (which a plain average "lowers" by smearing).
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from kornia.color import rgb_to_yuv, yuv_to_rgb

from nir_colorize.errors import UserError
from nir_colorize.utils.atomic import atomic_path

log = logging.getLogger(__name__)

# suffix -> FFmpeg muxer (the temporary output file's name does not tell it)
FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}
VIDEO_SUFFIXES = frozenset(FORMATS)
INSTALL_HINT = "pip install -e '.[video]' (or pip install av; make install installs it)"
DEFAULT_RATE = Fraction(25)  # a stream that declares no frame rate
MAX_SMOOTHING = 0.95
# mean |NIR change| (on [0, 1]) that marks a scene cut: measured 0.17-0.21 between two sample scenes, 0.04-0.08
# for pans of 2-16 px a frame over them
SCENE_CUT = 0.12
# |NIR change| (on [0, 1], 5x5 mean) after moving the previous frame by the global shift, above which a pixel is
# new content or an object that moves on its own: its chroma is not averaged (video.chroma_motion)
MOVED = 0.04
TIME_BASE = Fraction(1, 90000)  # of a video written with its source's timestamps (MPEG's 90 kHz clock)


class VideoReadError(UserError):
    """A video that cannot be decoded; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video (by its suffix: .mp4 .mov .mkv .avi .webm)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def require_av() -> ModuleType:
    """PyAV, or a user error saying how to install it."""
    try:
        import av
    except ImportError as exc:
        raise UserError(f"video input and output need PyAV, which is not installed: {INSTALL_HINT}") from exc
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a video stream declares: size, frame rate, frame count (else estimated from the duration; 0:
    unknown), codec."""

    width: int
    height: int
    rate: Fraction
    frames: int
    codec: str
    rotation: int = 0  # the display rotation, counter-clockwise degrees (a multiple of 90), as a player applies it
    bits: int = 8  # bits per sample of the stream's luma (10, 12, 16: read at that depth)

    @property
    def upright(self) -> tuple[int, int]:
        """(height, width) of the frames as shown (``VideoReader`` yields them upright)."""
        return (self.width, self.height) if self.rotation % 180 else (self.height, self.width)

    def short_of(self, decoded: int) -> str | None:
        """The problem when ``decoded`` frames fall short of the declared count (beyond 2 % + 1 frame: an
        estimate from the duration may be a little off), else None."""
        if self.frames and decoded < 0.98 * self.frames - 1:
            return (f"decoded only {decoded} of the {self.frames} frames the file declares (truncated or corrupt?); "
                    "the output holds those")
        return None


class VideoReader:
    """NIR frames of a video's first video stream, one at a time, as (1, 1, H, W) float32 in [0, 1] (its
    luma, at the stream's depth: 8 bits, or 10 to 16 read as 16-bit levels), upright: turned by the stream's display rotation (``info.rotation``, read from the first frame)
    as a player shows them. Opening checks the file and decodes the first frame; ``VideoReadError`` names the
    file when it cannot be decoded."""

    def __init__(self, path: str | os.PathLike) -> None:
        av = require_av()
        self.path = Path(path)
        self._errors: tuple[type[BaseException], ...] = (av.FFmpegError, OSError)
        if not self.path.is_file():
            raise FileNotFoundError(f"input {self.path}: no such video file")
        try:
            self.container = av.open(str(self.path))
        except self._errors as exc:
            raise VideoReadError(self.path, f"unreadable or corrupt video ({_reason(exc)})") from exc
        if not self.container.streams.video:
            self.container.close()
            raise VideoReadError(self.path, "no video stream in the file")
        self.stream = self.container.streams.video[0]
        rate = self.stream.average_rate or self.stream.guessed_rate
        if not rate:
            log.warning("%s declares no frame rate; writing %s frames/s", self.path, DEFAULT_RATE)
        ctx = self.stream.codec_context
        rate = Fraction(rate or DEFAULT_RATE)
        frames = int(self.stream.frames or 0)
        if not frames and self.container.duration:  # e.g. Matroska, WebM: no count, a duration (microseconds)
            frames = round(self.container.duration / 1e6 * rate)
        self.decoded = 0
        self.last_time: float | None = None  # presentation time (s) of the frame yielded last, where it has one
        self._frames = self.container.decode(self.stream)
        try:
            self._first = self._next()
        except VideoReadError:
            self.container.close()
            raise
        rotation = round(getattr(self._first, "rotation", 0) or 0) % 360 if self._first is not None else 0
        if rotation % 90:
            log.warning("%s: display rotation %d degrees is not a multiple of 90; frames are read as stored",
                        self.path, rotation)
            rotation = 0
        fmt = ctx.format
        bits = max((int(c.bits) for c in fmt.components), default=8) if fmt is not None else 8
        self.info = VideoInfo(int(ctx.width), int(ctx.height), rate, frames, str(ctx.name), rotation, bits)

    def _next(self):
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except self._errors as exc:
            raise VideoReadError(self.path, f"corrupt video: decoding failed after {self.decoded} "
                                            f"frame(s) ({_reason(exc)})") from exc

    def __iter__(self) -> Iterator[torch.Tensor]:
        frame, self._first = self._first, None
        while frame is not None:
            deep = self.info.bits > 8  # 10-16 bit luma read at its depth, as 16-bit levels
            gray = np.rot90(frame.to_ndarray(format="gray16le" if deep else "gray"), self.info.rotation // 90)
            self.decoded += 1
            self.last_time = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
            yield torch.from_numpy(np.ascontiguousarray(gray).astype(np.float32)).div_(65535 if deep else 255)[None, None]
            frame = self._next()
        if not self.decoded:
            raise VideoReadError(self.path, "no frame could be decoded (empty or corrupt video)")

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:200]


def default_codec(path: Path) -> str:
    return "libvpx-vp9" if path.suffix.lower() == ".webm" else "libx264"


@contextlib.contextmanager
def video_writer(path: str | os.PathLike, rate: Fraction, width: int, height: int, codec: str | None = None,
                 crf: int = 18, rotation: int = 0, timed: bool = False, bits: int = 8) -> Iterator[Callable[..., None]]:
    """Yield ``write(rgb)`` for (H, W, 3) uint8 frames, encoded at ``rate`` frames/s into ``path`` (its suffix picks
    the container), stored ``width`` x ``height``. ``rotation`` (counter-clockwise degrees, a multiple of 90): the
    frames given are upright; they are stored turned back and tagged with that display rotation, as the source
    was, so that a player shows them upright. ``bits=10``: 10-bit 4:2:0 (or 4:4:4) for (H, W, 3) uint16 frames
    (16-bit levels), where the encoder has it (libx264 does). ``timed``: ``write(rgb, seconds)`` gives each frame
    its presentation
    time (a source's timestamps, variable frame rate included, kept to 1/90000 s); else frames follow ``rate``.
    The file appears, complete, when the block ends without an error; otherwise nothing is left."""
    av = require_av()
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"output {path}: not a video name (use one of {', '.join(sorted(FORMATS))})")
    codec = codec or default_codec(path)
    if codec not in av.codecs_available:
        raise UserError(f"video.codec={codec}: not available in this PyAV build (try libx264, libvpx-vp9 or mpeg4)")
    if bits not in (8, 10):
        raise UserError(f"video.bits={bits}: the output is 8- or 10-bit")
    odd = width % 2 or height % 2
    pix_fmt = ("yuv444p" if odd else "yuv420p") + ("10le" if bits == 10 else "")
    if odd:
        log.info("%s: %dx%d is odd, which 4:2:0 chroma cannot hold; encoding yuv444p (full-resolution chroma)",
                 path, width, height)
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), "w", format=FORMATS[path.suffix.lower()])
        try:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            ctx = stream.codec_context
            # from_ndarray(rgb24) converts with BT.601, limited range: say so, so that players convert back alike
            ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc = 6, 1, 6, 6
            if codec in ("libx264", "libvpx-vp9"):
                stream.options = {"crf": str(int(crf))} | ({"b": "0"} if codec == "libvpx-vp9" else {})
            if rotation % 360:
                stream.set_display_rotation(rotation % 360)
            if timed:
                stream.codec_context.time_base = stream.time_base = TIME_BASE

            def write(rgb: np.ndarray, seconds: float | None = None) -> None:
                stored = np.ascontiguousarray(np.rot90(rgb, -(rotation // 90))) if rotation % 360 else rgb
                frame = av.VideoFrame.from_ndarray(stored, format="rgb48le" if bits == 10 else "rgb24")
                if timed:
                    frame.pts, frame.time_base = round(seconds / TIME_BASE), TIME_BASE
                for packet in stream.encode(frame):
                    container.mux(packet)

            yield write
            for packet in stream.encode():  # flush the encoder
                container.mux(packet)
        finally:
            container.close()


def copy_streams(source: str | os.PathLike, video: str | os.PathLike) -> list[str]:
    """Copy the audio and subtitle streams of ``source`` into ``video`` (the colorized clip, its only stream),
    packet for packet, not re-encoded, interleaved by time; ``video`` is replaced atomically. Returns one line per
    problem: where the output's container cannot take a stream, ``video`` stays as it was (colour, no such stream)."""
    av = require_av()
    source, video = Path(source), Path(video)
    with av.open(str(source)) as src:
        extra = [s for s in src.streams if s.type in ("audio", "subtitle")]
        if not extra:
            return []
        names = ", ".join(f"{s.type} {s.index} ({s.codec_context.name})" for s in extra)
        try:
            with av.open(str(video)) as colour, atomic_path(video) as tmp, \
                    av.open(str(tmp), "w", format=FORMATS.get(video.suffix.lower())) as out:
                mapping = {colour.streams.video[0]: out.add_stream_from_template(colour.streams.video[0])}
                mapping |= {s: out.add_stream_from_template(s) for s in extra}
                packets = heapq.merge(_timed(colour.demux(colour.streams.video[0])),
                                      *(_timed(src.demux(s)) for s in extra), key=lambda item: item[0])
                for _, packet in packets:
                    packet.stream = mapping[packet.stream]
                    out.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            return [f"{video}: the source's {names} not copied: a {video.suffix} file cannot hold it here "
                    f"({_reason(exc)}); the video is written without it"]
    return []


def _timed(packets: Iterator) -> Iterator[tuple[float, object]]:
    """Demuxed packets with their time in seconds (flush packets, with no data, left out)."""
    for packet in packets:
        if packet.size == 0:
            continue
        stamp = packet.dts if packet.dts is not None else packet.pts
        yield (float(stamp * packet.time_base) if stamp is not None else float("-inf")), packet


class ChromaSmoother:
    """Temporal smoothing of a frame sequence's chroma (see the module doc) and its measure.

    ``smoother(rgb, nir)`` takes each (1, 3, H, W) frame in [0, 1] (and its NIR input, which detects scene
    cuts; without it, the frame's Y does) in order and returns it with U, V replaced by their moving average
    (``weight`` 0: unchanged); a scene cut (``scene_cut``; None: never) or a frame of another size restarts
    the average. ``change()``: mean absolute U, V difference between consecutive frames of one scene, the
    previous one moved by the global shift (``moved_change``; YUV of [0, 1] RGB, so x 255 is in 8-bit levels), of the frames as they came
    (``raw``) and as returned (``smoothed``)."""

    def __init__(self, weight: float = 0.0, scene_cut: float | None = SCENE_CUT, motion: bool = False,
                 moved: float = MOVED) -> None:
        if not 0.0 <= weight <= MAX_SMOOTHING:
            raise UserError(f"video.chroma_smoothing={weight}: choose a weight in [0, {MAX_SMOOTHING}] "
                            "(0: off; higher: less flicker, longer colour trails behind moving objects)")
        self.weight = float(weight)
        self.scene_cut = scene_cut
        self.motion = bool(motion)
        self.moved = float(moved)
        self.average: torch.Tensor | None = None
        self.previous: tuple[torch.Tensor, ...] | None = None  # NIR (or Y), raw and output U, V of the last frame
        self.pairs = self.cuts = 0
        self.raw_sum = self.smoothed_sum = 0.0

    def __call__(self, rgb: torch.Tensor, nir: torch.Tensor | None = None) -> torch.Tensor:
        yuv = rgb_to_yuv(rgb.float())
        y, uv = yuv[:, :1], yuv[:, 1:]
        guide = y if nir is None else nir.float()
        if self.previous is not None and self.previous[0].shape != guide.shape:
            self.average = self.previous = None
        if (self.previous is not None and self.scene_cut is not None
                and float((guide - self.previous[0]).abs().mean()) > self.scene_cut):
            self.average = self.previous = None
            self.cuts += 1
        out, out_uv = rgb, uv
        shift = inside = None
        if self.previous is not None:  # the frame's global motion: followed by the average, left out of the measure
            shift = global_shift(self.previous[0], guide)
            inside = overlap(guide, shift)
        if self.weight > 0 and self.motion and self.average is not None:
            self.average = self._follow(guide, uv, shift, inside)
        elif self.weight > 0:
            self.average = uv.clone() if self.average is None else self.average.mul_(self.weight).add_(
                uv, alpha=1 - self.weight)
        if self.weight > 0:
            out = yuv_to_rgb(torch.cat([y, self.average], 1)).clamp_(0, 1)
            out_uv = rgb_to_yuv(out)[:, 1:]
        if self.previous is not None:
            self.pairs += 1
            self.raw_sum += moved_change(self.previous[1], uv, shift, inside)
            self.smoothed_sum += moved_change(self.previous[2], out_uv, shift, inside)
        self.previous = (guide, uv, out_uv)
        return out

    def _follow(self, guide: torch.Tensor, uv: torch.Tensor, shift: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """The average moved with the frame (its global ``shift``), then blended with ``uv`` at ``weight`` only where
        the moved previous guide still matches this one (``moved``: the largest |guide change| averaged, after
        matching the two guides' gains; elsewhere, new content or objects that move on their own, ``uv`` alone)."""
        from kornia.filters import box_blur

        moved_average, moved_guide = moved(self.average, shift), moved(self.previous[0], shift)
        # an exposure that hunts changes the NIR's gain, not what moved: match the gains before comparing
        gain = guide.mean(1, keepdim=True)[inside].mean() / moved_guide.mean(1, keepdim=True)[inside].mean().clamp_min(1e-6)
        change = box_blur((guide - gain * moved_guide).abs().mean(1, keepdim=True), 5)
        keep = self.weight * (inside & (change < self.moved)).float()
        return moved_average * keep + uv * (1 - keep)

    def change(self) -> tuple[float, float] | None:
        """(raw, smoothed) mean frame-to-frame chroma change; None before two frames of one size."""
        if not self.pairs:
            return None
        return self.raw_sum / self.pairs, self.smoothed_sum / self.pairs

    def describe(self) -> str | None:
        """The measure as one line (in 8-bit levels), or None."""
        change = self.change()
        if change is None:
            return None
        raw, smoothed = (255 * c for c in change)
        cuts = f"; {self.cuts} scene cut(s) left out" if self.cuts else ""
        if not self.weight:
            return f"mean frame-to-frame chroma change: {raw:.3f}/255 (video.chroma_smoothing=0: unsmoothed{cuts})"
        return (f"mean frame-to-frame chroma change: {raw:.3f}/255 without smoothing, {smoothed:.3f}/255 with "
                f"video.chroma_smoothing={self.weight:g} ({smoothed / raw if raw else 1:.0%}{cuts})")


def moved(image: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``image`` (B, C, H, W) moved by ``shift`` ((1, 2): dx, dy pixels; bilinear), zeros where nothing moved in."""
    from kornia.geometry.transform import translate

    return translate(image, shift, padding_mode="zeros", align_corners=True)


def overlap(image: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) bool: the pixels of ``image``'s frame that ``moved(..., shift)`` fills from inside the frame."""
    return moved(torch.ones_like(image[:, :1]), shift) > 0.999


def moved_change(previous_uv: torch.Tensor, uv: torch.Tensor, shift: torch.Tensor, inside: torch.Tensor) -> float:
    """Mean |U, V change| from the previous frame, moved by the frame's global ``shift``, to this one, over the
    pixels both show (``inside``, ``overlap``): colour flicker, without the change that the motion itself brings."""
    return float((uv - moved(previous_uv, shift)).abs().mean(1, keepdim=True)[inside].mean())


def global_shift(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """The (dx, dy) translation, in pixels, that moves ``previous`` onto ``current`` ((1, C, H, W) each): phase
    correlation of their channel means (by hand: neither kornia nor torchvision has it), the peak refined to
    sub-pixel by a parabola through its neighbours; a (1, 2) tensor for ``kornia.geometry.transform.translate``."""
    a, b = (x.float().mean(1)[0] for x in (previous, current))
    window = torch.outer(torch.hann_window(a.shape[0], periodic=False, device=a.device),
                         torch.hann_window(a.shape[1], periodic=False, device=a.device))
    fa, fb = (torch.fft.rfft2((x - x.mean()) * window) for x in (a, b))
    cross = fb * fa.conj()
    surface = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-12), s=a.shape)
    height, width = a.shape
    py, px = divmod(int(surface.argmax()), width)

    def refined(p: int, size: int, values: torch.Tensor) -> float:  # the peak's row or column, wrapped
        lo, mid, hi = (float(values[(p + k) % size]) for k in (-1, 0, 1))
        curvature = lo - 2 * mid + hi
        offset = 0.5 * (lo - hi) / curvature if curvature < 0 else 0.0
        return (p if p <= size // 2 else p - size) + max(-0.5, min(0.5, offset))

    dx, dy = refined(px, width, surface[py]), refined(py, height, surface[:, px])
    return torch.tensor([[dx, dy]], dtype=previous.dtype, device=previous.device)


def pan(images: list[np.ndarray], frames_per_image: int = 8, shift: int = 4, flicker: float = 0.0,
        seed: int = 0) -> Iterator[np.ndarray]:
    """A test clip from still NIR images ((H, W) uint8): each image cut to the common size, then a window
    that slides ``shift`` pixels right per frame, ``frames_per_image`` frames each (even width and height);
    ``flicker``: each frame's gain drawn from 1 +- flicker (seeded), as an auto-exposure that hunts."""
    height = min(im.shape[0] for im in images) // 2 * 2
    width = (min(im.shape[1] for im in images) - shift * (frames_per_image - 1)) // 2 * 2
    if width <= 0:
        raise ValueError(f"images too narrow for {frames_per_image} frames shifted by {shift} px")
    rng = np.random.default_rng(seed)
    for im in images:
        for t in range(frames_per_image):
            frame = im[:height, t * shift:t * shift + width]
            if flicker:
                frame = np.clip(frame * (1 + flicker * rng.uniform(-1, 1)) + 0.5, 0, 255).astype(np.uint8)
            yield np.ascontiguousarray(frame)


def write_clip(path: str | os.PathLike, frames: Iterator[np.ndarray] | list[np.ndarray],
               rate: Fraction | int = 25, crf: int = 18) -> Path:
    """Encode gray (H, W) uint8 frames as a video (e.g. a test input; see ``pan``)."""
    frames = iter(frames)
    first = next(frames)
    with video_writer(path, Fraction(rate), first.shape[1], first.shape[0], crf=crf) as write:
        for frame in (first, *frames):
            write(np.repeat(frame[..., None], 3, axis=2))
    return Path(path)


def main(argv: list[str] | None = None) -> None:
    """``python -m nir_colorize.video clip OUT.mp4 IMAGE... [--frames-per-image 8] [--shift 4] [--flicker 0]
    [--fps 25] [--size WxH]``: a test clip panning over NIR images (e.g. to measure ``predict``'s frames/s)."""
    import argparse

    from PIL import Image

    from nir_colorize.data.io import read_nir, to_uint8

    parser = argparse.ArgumentParser(prog="python -m nir_colorize.video", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    clip = sub.add_parser("clip", help="a test clip panning over NIR images")
    clip.add_argument("output", type=Path)
    clip.add_argument("images", type=Path, nargs="+")
    clip.add_argument("--frames-per-image", type=int, default=8)
    clip.add_argument("--shift", type=int, default=4, help="pixels the window moves per frame")
    clip.add_argument("--flicker", type=float, default=0.0, help="per-frame gain jitter, e.g. 0.08")
    clip.add_argument("--fps", type=Fraction, default=Fraction(25))
    clip.add_argument("--size", help="resize each image to WxH first")
    args = parser.parse_args(argv)
    images = [to_uint8(read_nir(p))[..., 0] for p in args.images]
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        images = [np.asarray(Image.fromarray(im).resize((w, h), Image.Resampling.LANCZOS)) for im in images]
    path = write_clip(args.output, pan(images, args.frames_per_image, args.shift, args.flicker), args.fps)
    with VideoReader(path) as reader:
        info = reader.info
    print(f"wrote {path}: {info.frames} frames, {info.width}x{info.height} at {info.rate} frames/s")


if __name__ == "__main__":
    main()

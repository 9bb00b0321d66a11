"""Video through ``predict``: a short clip of the sample images in, a colour clip of its rate, size and frame
count out, matching the frames colorized as stills; chroma smoothing; broken files; atomic output."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from kornia.color import rgb_to_yuv
from PIL import Image, ImageFilter

from nir_colorize import pipeline, video
from nir_colorize.utils.compose import compose_config
from nir_colorize.utils.errors import EXIT_USER_ERROR, user_error_message
from tests.conftest import ROOT

av = pytest.importorskip("av")  # the `video` extra (requirements.lock installs it)

RATE = Fraction(30000, 1001)  # a fractional rate, kept exactly
WIDTH, HEIGHT, FRAMES = 128, 96, 8
ENV = {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": str(ROOT)}


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "NIR_COLORIZE_SHORT_ERRORS")}
    return subprocess.run([sys.executable, "-m", "nir_colorize.predict", *args, "trainer.accelerator=cpu",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, env=environ | ENV,
                          capture_output=True, text=True, timeout=120)


def cfg(tmp_path: Path, src: Path, out: Path, *overrides: str):
    """The shipped model (``model_id=reference``), as the command line gets it."""
    return compose_config("predict", [f"input={src}", f"output={out}", "trainer.accelerator=cpu", "progress=false",
                                      *overrides], output_dir=tmp_path / "run")


def decode(path: Path, fmt: str) -> tuple[list[np.ndarray], tuple[int, int, Fraction]]:
    """Every frame in ``fmt`` (``rgb24``, ``gray``) and the stream's (width, height, average rate)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format=fmt) for frame in container.decode(stream)]
        return frames, (stream.width, stream.height, stream.average_rate)


def chroma(rgb: np.ndarray) -> torch.Tensor:
    """U, V (1, 2, H, W) of an (H, W, 3) uint8 frame."""
    return rgb_to_yuv(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[:, 1:]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """8 frames, 128x96 at 29.97 frames/s: two sample test images (a scene cut), each panned 2 px a frame
    (motion), each frame's gain jittered by up to 8 % (the flicker of a hunting auto-exposure)."""
    images = [np.asarray(Image.open(sample_dir / "Testing" / f"testing_000{i}_nir_reg.png").convert("L")
                         .resize((WIDTH + 6, HEIGHT), Image.Resampling.LANCZOS)) for i in (0, 1)]
    path = video.write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", video.pan(images, FRAMES // 2, 2, 0.08), RATE)
    with video.VideoReader(path) as reader:
        assert (reader.info.width, reader.info.height, reader.info.frames, reader.info.rate) == (WIDTH, HEIGHT,
                                                                                             FRAMES, RATE)
    return path


@pytest.fixture(scope="module")
def colorized(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """``python -m nir_colorize.predict input=clip.mp4 output=out.mp4`` (stderr: a log file, progress lines)."""
    tmp = tmp_path_factory.mktemp("colorized")
    out = tmp / "out" / "out.mp4"
    proc = cli(tmp, f"input={clip}", f"output={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, out


def test_clip_is_colorized_frame_by_frame_like_its_stills(clip: Path, colorized, tmp_path: Path) -> None:
    proc, out = colorized
    assert f"wrote {out}: {FRAMES} frames" in proc.stdout and "frames/s" in proc.stdout
    assert "frames/s" in proc.stderr  # progress lines
    rgb, info = decode(out, "rgb24")
    assert (len(rgb), *info) == (FRAMES, WIDTH, HEIGHT, RATE)
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temporary file left
    # the decoded input frames as stills, through the image path (a folder of frames: names and order kept)
    gray, _ = decode(clip, "gray")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(gray, 1):
        Image.fromarray(frame).save(frames / f"f{i}.png")
    result = pipeline.run(cfg(tmp_path, frames, tmp_path / "stills"))
    assert [p.name for p in result.written] == [f"f{i}.png" for i in range(1, FRAMES + 1)]
    for i, frame in enumerate(rgb, 1):
        still = np.asarray(Image.open(tmp_path / "stills" / f"f{i}.png"))
        assert psnr(frame, still) > 30, f"frame {i}: {psnr(frame, still):.1f} dB"  # H.264 loss only
        assert chroma(frame).abs().mean() * 255 > 1  # colour, not gray


def test_chroma_smoothing_lowers_the_frame_to_frame_chroma_change(clip: Path, colorized, tmp_path: Path) -> None:
    proc, _ = colorized
    lossless = "video.crf=0"  # x264 at crf 18 also damps small chroma changes itself: see them all
    result = pipeline.run(cfg(tmp_path, clip, tmp_path / "smooth.mp4", "video.chroma_smoothing=0.6", lossless))
    raw, smoothed = result.chroma.change()
    assert smoothed < 0.7 * raw
    assert (result.chroma.cuts, result.chroma.pairs) == (1, FRAMES - 2)  # the cut between the two images
    assert f"{255 * raw:.3f}/255 without smoothing, {255 * smoothed:.3f}/255 with" in result.report()
    assert f"chroma change: {255 * raw:.3f}/255" in proc.stdout  # the same frames unsmoothed: the same measure

    nir = [torch.from_numpy(f).float()[None, None] / 255 for f in decode(clip, "gray")[0]]

    def measured(path: Path) -> float:  # on the decoded output videos themselves, within each scene, pan followed
        uv = [chroma(frame) for frame in decode(path, "rgb24")[0]]
        changes = []
        for i in range(FRAMES - 1):
            if i != FRAMES // 2 - 1:
                shift = video.global_shift(nir[i], nir[i + 1])
                changes.append(video.moved_change(uv[i], uv[i + 1], shift, video.overlap(nir[i], shift)))
        return float(np.mean(changes))

    pipeline.run(cfg(tmp_path, clip, tmp_path / "plain.mp4", lossless))
    assert measured(tmp_path / "smooth.mp4") < 0.7 * measured(tmp_path / "plain.mp4")
    # a folder of frames is smoothed the same way, in natural order
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(decode(clip, "gray")[0], 1):
        Image.fromarray(frame).save(frames / f"f{i}.png")
    stills = pipeline.run(cfg(tmp_path, frames, tmp_path / "stills", "video.chroma_smoothing=0.6"))
    assert stills.chroma.change() == pytest.approx((raw, smoothed), rel=1e-4)


def test_broken_video_is_a_one_line_error_naming_it(clip: Path, tmp_path: Path) -> None:
    broken = tmp_path / "clip.mp4"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    proc = cli(tmp_path, f"input={broken}", f"output={out / 'out.mp4'}")
    assert proc.returncode == EXIT_USER_ERROR, proc.stderr[-3000:]
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"error: {broken}: unreadable or corrupt video"), line
    assert not out.exists()
    truncated = tmp_path / "cut" / "clip.mp4"  # the index (moov) is at the end of the file
    truncated.parent.mkdir()
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(video.VideoReadError) as info:
        pipeline.run(cfg(tmp_path, truncated, out / "out.mp4"))
    assert user_error_message(info.value).startswith(f"{truncated}: unreadable or corrupt video")
    assert not out.exists()


def test_a_failure_mid_clip_leaves_no_output(clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    colorize = pipeline.Pipeline.__call__

    def failing(self, nir, progress=None):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory")
        return colorize(self, nir, progress)

    monkeypatch.setattr(pipeline.Pipeline, "__call__", failing)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="out of memory"):
        pipeline.run(cfg(tmp_path, clip, out / "out.mp4"))
    assert out.is_dir() and not list(out.iterdir())


def test_a_clip_that_stops_early_is_written_and_reported(clip: Path, tmp_path: Path) -> None:
    """Matroska streams: a cut file decodes up to the cut; the frames short of its duration are a failure."""
    whole = video.write_clip(tmp_path / "long.mkv", video.pan([decode(clip, "gray")[0][0]], 24, 1), 25)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 3 // 4])
    result = pipeline.run(cfg(tmp_path, cut, tmp_path / "out"))  # a folder: <stem>.mp4
    assert result.written == [tmp_path / "out" / "cut.mp4"] and 0 < result.frames < 24
    ((src, problem),) = result.failed
    assert src == cut and f"decoded only {result.frames} of the 24 frames" in problem
    assert len(decode(tmp_path / "out" / "cut.mp4", "gray")[0]) == result.frames


def test_odd_size_is_kept_and_options_are_checked(tmp_path: Path) -> None:
    frames = [np.full((47, 63), 40 * i, np.uint8) for i in range(3)]
    path = video.write_clip(tmp_path / "odd.mkv", frames, 12)
    video.write_clip(tmp_path / "odd.mp4", frames, 12)
    with video.VideoReader(path) as reader:
        assert (reader.info.width, reader.info.height) == (63, 47) and len(list(reader)) == 3
    with pytest.raises(ValueError, match=r"video.chroma_smoothing=1.5: choose a weight in \[0, 0.95\]"):
        video.ChromaSmoother(1.5)
    with pytest.raises(ValueError, match="would overwrite the input video"):
        pipeline.run(cfg(tmp_path, path, path, "overwrite=true"))
    with pytest.raises(FileExistsError, match="overwrite=true"):
        pipeline.run(cfg(tmp_path, path, tmp_path))  # <output>/odd.mp4: the clip written above
    assert [p.name for p in pipeline.list_inputs(str(_frames(tmp_path / "seq", [10, 2, 1])))] == [
        "f1.png", "f2.png", "f10.png"]
    assert video.is_video("a/B.MP4") and not video.is_video("a/b.png")


def _frames(folder: Path, numbers: list[int]) -> Path:
    folder.mkdir()
    for n in numbers:
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / f"f{n}.png")
    return folder


def _clip_with_audio(path: Path, frames: list[np.ndarray], rate: int = 25) -> Path:
    """An H.264 clip with a 440 Hz AAC tone as long as its frames (what a dash camera records)."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        aus = out.add_stream("aac", rate=48000, layout="mono")
        seconds = len(frames) / rate
        t = np.arange(int(48000 * seconds)) / 48000
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for i in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, i
            for packet in aus.encode(frame):
                out.mux(packet)
        for packet in aus.encode():
            out.mux(packet)
        for image in frames:
            for packet in vs.encode(av.VideoFrame.from_ndarray(np.repeat(image[..., None], 3, 2), format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    return path


def _audio(path: Path) -> tuple[np.ndarray, float]:
    """The decoded samples of the first audio stream, and the stream's duration in seconds."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray().ravel() for f in container.decode(stream)])
        return samples, float(stream.duration * stream.time_base)


def test_audio_is_copied_as_recorded(sample_dir: Path, tmp_path: Path) -> None:
    image = np.asarray(Image.open(sample_dir / "Testing" / "testing_0000_nir_reg.png").convert("L").resize((96, 64)))
    src = _clip_with_audio(tmp_path / "dash.mp4", list(video.pan([image], 10, 2)))
    out = tmp_path / "colour.mp4"
    result = pipeline.run_video(cfg(tmp_path, src, out))
    assert result.frames == 10 and not result.failed
    import av

    with av.open(str(out)) as container:
        kinds = [s.type for s in container.streams]
        video_seconds = float(container.streams.video[0].duration * container.streams.video[0].time_base)
    assert kinds == ["video", "audio"]
    (a, a_seconds), (b, b_seconds) = _audio(src), _audio(out)
    assert np.array_equal(a, b)  # the same packets: the same samples after decoding
    assert abs(b_seconds - a_seconds) < 1 / 25 and abs(video_seconds - 10 / 25) <= 1 / 25


def test_a_container_that_cannot_hold_the_audio_says_so(sample_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    image = np.asarray(Image.open(sample_dir / "Testing" / "testing_0000_nir_reg.png").convert("L").resize((96, 64)))
    src = _clip_with_audio(tmp_path / "dash.mp4", list(video.pan([image], 6, 2)))
    out = tmp_path / "colour.webm"  # WebM holds Opus or Vorbis, not AAC
    result = pipeline.run_video(cfg(tmp_path, src, out))
    assert result.frames == 6 and out.is_file()
    assert "the source's audio 1 (aac) not copied: a .webm file cannot hold it" in capsys.readouterr().err
    with video.VideoReader(out) as reader:
        assert sum(1 for _ in reader) == 6


def test_a_rotated_clip_is_colorized_upright_and_plays_as_the_source(sample_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A phone held upright: frames stored 96x64 with a 90-degree display rotation. The network sees them upright
    (64x96), and the output is stored and tagged as the source, so a player turns both the same way."""
    import av

    image = np.asarray(Image.open(sample_dir / "Testing" / "testing_0000_nir_reg.png").convert("L").resize((64, 96)))
    stored = [np.ascontiguousarray(np.rot90(f, -1)) for f in video.pan([image], 4, 0)]  # 96 wide, 64 high
    src = tmp_path / "phone.mp4"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.set_display_rotation(90)
        for frame in stored:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.repeat(frame[..., None], 3, 2), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with video.VideoReader(src) as reader:
        assert reader.info.rotation == 90 and reader.info.upright == (96, 64)
        upright = next(iter(reader))
    assert upright.shape == (1, 1, 96, 64)
    assert np.corrcoef(upright[0, 0].numpy().ravel(), image.ravel() / 255)[0, 1] > 0.95  # as a player shows it

    seen = []
    call = pipeline.Pipeline.__call__
    monkeypatch.setattr(pipeline.Pipeline, "__call__", lambda self, nir, progress=None: seen.append(
        tuple(nir.shape[-2:])) or call(self, nir, progress))
    out = tmp_path / "colour.mp4"
    assert pipeline.run_video(cfg(tmp_path, src, out)).frames == 4
    assert set(seen) == {(96, 64)}  # colorized upright
    with av.open(str(out)) as container:
        first = next(container.decode(container.streams.video[0]))
        assert (first.width, first.height, first.rotation) == (96, 64, 90)  # stored and tagged as the source
    with video.VideoReader(out) as reader:
        shown = next(iter(reader))[0, 0].numpy()
    right, turned = (np.corrcoef(shown.ravel(), im.ravel())[0, 1] for im in (image, np.rot90(image, 2)))
    assert shown.shape == (96, 64) and right > 0.6 and right > turned + 0.4, (right, turned)  # plays upright too


def test_a_folder_of_frames_becomes_a_video(sample_dir: Path, tmp_path: Path) -> None:
    image = np.asarray(Image.open(sample_dir / "Testing" / "testing_0000_nir_reg.png").convert("L").resize((96, 64)))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(video.pan([image], 5, 2)):
        Image.fromarray(frame).save(folder / f"frame{i + 8}.png")  # frame8 ... frame12: natural order
    out = tmp_path / "colour.mp4"
    result = pipeline.run(cfg(tmp_path, folder, out, "video.fps=12"))
    assert result.frames == 5 and result.written == [out]
    with video.VideoReader(out) as reader:
        assert (reader.info.width, reader.info.height, reader.info.rate) == (88, 64, Fraction(12))
        frames = [f for f in reader]
    stills = tmp_path / "stills"
    pipeline.run(cfg(tmp_path, folder, stills))
    for i, frame in enumerate(frames):  # each frame as predict colorizes the still, within H.264's loss
        still = np.asarray(Image.open(stills / f"frame{i + 8}.png").convert("L"), dtype=np.float32) / 255
        assert np.abs(frame[0, 0].numpy() - still).mean() < 0.03, i
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder / "frame99.png")
    with pytest.raises(ValueError, match=r"frame99.png: 10x10, the first frame 88x64"):
        pipeline.run(cfg(tmp_path, folder, out, "overwrite=true"))


def test_variable_frame_rate_keeps_the_source_timestamps(sample_dir: Path, tmp_path: Path) -> None:
    import av

    image = np.asarray(Image.open(sample_dir / "Testing" / "testing_0000_nir_reg.png").convert("L").resize((96, 64)))
    times = [0.5, 0.54, 0.58, 0.7, 0.74, 1.0, 1.04]  # a security camera's variable rate, starting at 0.5 s
    src = tmp_path / "vfr.mp4"
    with video.video_writer(src, Fraction(25), 90, 64, timed=True) as write:
        for t, frame in zip(times, video.pan([image], len(times), 1), strict=False):
            write(np.repeat(frame[..., None], 3, 2), t)

    def stamps(path: Path) -> list[float]:
        with av.open(str(path)) as container:
            return [round(float(f.pts * f.time_base), 4) for f in container.decode(container.streams.video[0])]

    assert stamps(src) == times
    out = tmp_path / "colour.mp4"
    assert pipeline.run_video(cfg(tmp_path, src, out)).frames == len(times)
    assert stamps(out) == times


def test_a_10_bit_clip_is_read_at_its_depth(sample_dir: Path, tmp_path: Path) -> None:
    """yuv420p10le (lossless H.264): the colorized frames match the same frames given as 16-bit PNGs."""
    import av

    image = np.asarray(Image.open(sample_dir / "Testing" / "testing_0000_nir_reg.png").convert("L").resize((96, 64)))
    smooth = (np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(2)), dtype=np.float64)
              * 1023 / 255).round().astype(np.uint16)  # 10-bit levels with values between 8-bit ones
    src = tmp_path / "deep.mkv"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.options = 96, 64, "yuv420p10le", {"crf": "0"}
        for _ in range(2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(smooth << 6, format="gray16le")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with video.VideoReader(src) as reader:
        assert reader.info.bits == 10
        frame = next(iter(reader))[0, 0].numpy()
    with av.open(str(src)) as container:  # the same frame read as 8-bit, as before
        shallow = next(container.decode(container.streams.video[0])).to_ndarray(format="gray") / 255
    deep_error, shallow_error = (float(np.abs(x * 1023 - smooth).mean()) for x in (frame, shallow))
    # measured: 1.04 read at depth, 1.32 read as 8-bit (both include the limited-range YUV round trip)
    assert deep_error < 1.2 and deep_error < shallow_error, (deep_error, shallow_error)
    assert len(np.unique(np.round(frame * 1023))) > 300  # more levels than 8 bits hold
    png16 = tmp_path / "png16"
    png16.mkdir()
    Image.fromarray((frame * 65535).round().astype(np.uint16)).save(png16 / "f.png")  # the same frame, 16-bit PNG
    stills, out = tmp_path / "stills", tmp_path / "colour.mkv"
    pipeline.run(cfg(tmp_path, png16, stills))
    pipeline.run_video(cfg(tmp_path, src, out))
    with video.VideoReader(out) as reader:
        colour = next(iter(reader))[0, 0].numpy()
    still = np.asarray(Image.open(stills / "f.png").convert("L"), dtype=np.float32) / 255
    assert np.abs(colour - still).mean() < 0.01  # within H.264's loss on the 8-bit colour output


def test_a_video_becomes_a_folder_of_frames(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    result = pipeline.run_video(cfg(tmp_path, clip, out, "video.frames=true"))
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"clip_{i:06d}.png" for i in range(1, FRAMES + 1)] and result.written == [out / n for n in names]
    runner = pipeline.load_pipeline(cfg(tmp_path, clip, out))
    with video.VideoReader(clip) as reader, torch.inference_mode():
        first = next(iter(reader))
        expected = pipeline.to_rgb8(runner(first))
    assert np.array_equal(np.asarray(Image.open(out / names[0])), expected)  # predict's own frame, losslessly
    with pytest.raises(FileExistsError, match="already holds frames of clip"):
        pipeline.run_video(cfg(tmp_path, clip, out, "video.frames=true"))


def test_a_10_bit_output(clip: Path, tmp_path: Path) -> None:
    import av

    out = tmp_path / "deep.mp4"
    pipeline.run_video(cfg(tmp_path, clip, out, "video.bits=10"))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.format.name == "yuv420p10le"
        frame = next(container.decode(stream)).to_ndarray(format="rgb48le")
    assert len(np.unique(frame[..., 1] >> 6)) > 256  # more green levels than 8 bits hold
    with pytest.raises(ValueError, match="video.bits=12: the output is 8- or 10-bit"):
        pipeline.run_video(cfg(tmp_path, clip, tmp_path / "x.mp4", "video.bits=12"))


def test_chroma_smoothing_follows_a_pan() -> None:
    """A 3 px/frame pan over a VCIP sample pair whose colorized chroma hunts (U, V gain 1 +- 0.2 a frame): the global
    shift is found to a quarter pixel, and following it leaves less error against the true chroma than the plain
    average (which smears colours along the pan) or none, while the frame-to-frame change above the true frames'
    own (the pan's) drops by more than half (experiments/video_chroma: 10/10 clips)."""
    from kornia.color import yuv_to_rgb

    nir, rgb = (torch.from_numpy(np.array(Image.open(ROOT / f"data/sample/Validation/validation_0002_{k}.png")
                                          .convert(m))).float() / 255 for k, m in (("nir", "L"), ("rgb_reg", "RGB")))
    nir, rgb = nir[None, None], rgb.permute(2, 0, 1)[None]
    shifted = video.moved(nir, torch.tensor([[3.0, -2.0]]))
    found = video.global_shift(nir[..., 16:-16, 16:-16], shifted[..., 16:-16, 16:-16])
    assert torch.allclose(found, torch.tensor([[3.0, -2.0]]), atol=0.25)
    rng = np.random.default_rng(0)
    smoothers = {"off": video.ChromaSmoother(0.0, None), "average": video.ChromaSmoother(0.6, None),
                 "motion": video.ChromaSmoother(0.6, None, motion=True)}
    truth = video.ChromaSmoother(0.0, None)  # the true frames' own change (the pan's): the floor
    errors = {k: [] for k in smoothers}
    width = rgb.shape[-1] - 3 * 11
    for t in range(12):
        frame_nir, frame_rgb = nir[..., 3 * t:3 * t + width], rgb[..., 3 * t:3 * t + width]
        yuv = rgb_to_yuv(frame_rgb)
        truth(frame_rgb, frame_nir)
        hunted = yuv_to_rgb(torch.cat([yuv[:, :1], yuv[:, 1:] * (1 + 0.2 * rng.uniform(-1, 1))], 1)).clamp(0, 1)
        for name, smoother in smoothers.items():
            out = smoother(hunted, frame_nir)
            errors[name].append(float((rgb_to_yuv(out)[:, 1:] - yuv[:, 1:]).abs().mean()))
    error = {k: np.mean(v[1:]) for k, v in errors.items()}
    assert error["motion"] < 0.9 * min(error["average"], error["off"]), error
    floor = truth.change()[0]
    assert floor < smoothers["motion"].change()[1]
    assert smoothers["motion"].change()[1] - floor < 0.5 * (smoothers["off"].change()[0] - floor)

"""Motion-following chroma smoothing against the plain moving average (issue 34), without the network.

``python experiments/video_chroma/study.py SCENES_DIR > experiments/video_chroma/table.md``

Clips are made from the held-out nirscene1_scenes frames (NIR + registered RGB, 384x256): "pan", a window sliding
3 px a frame; "object", a still background with a 64x64 piece of another frame crossing it at 6 px a frame. The
"colorized" frames are the true RGB with flickering chroma (each frame's U, V scaled by 1 +- 0.2 and offset by
+-0.015, seeded), as a network whose colours hunt from frame to frame. Each smoother sees them with the NIR
frames; measured per clip, frames after the first: the mean frame-to-frame chroma change (what predict logs; the true frames' own change,
from the motion, is the floor that a smoother should reach, not go below) and the error against the true chroma
(smear and flicker left), both in 8-bit levels of kornia's U, V.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from kornia.color import rgb_to_yuv, yuv_to_rgb
from PIL import Image

from nir_colorize import PROJECT_ROOT
from nir_colorize.video import ChromaSmoother

FRAMES, PAN, OBJECT_STEP, PATCH = 16, 3, 6, 64
SMOOTHERS = {"off": (0.0, False), "average 0.6": (0.6, False), "motion 0.6": (0.6, True),
             "average 0.8": (0.8, False), "motion 0.8": (0.8, True)}


def load(scenes: Path, stem: str) -> tuple[torch.Tensor, torch.Tensor]:
    nir, rgb = (torch.from_numpy(np.array(Image.open(scenes / f"{stem}_{k}.png").convert(m))).float() / 255
                for k, m in (("nir", "L"), ("rgb", "RGB")))
    return nir[None, None], rgb.permute(2, 0, 1)[None]


def pan_clip(nir: torch.Tensor, rgb: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    width = (nir.shape[-1] - PAN * (FRAMES - 1)) // 2 * 2
    return [(nir[..., t * PAN:t * PAN + width], rgb[..., t * PAN:t * PAN + width]) for t in range(FRAMES)]


def object_clip(background: tuple, piece: tuple) -> list[tuple[torch.Tensor, torch.Tensor]]:
    frames = []
    for t in range(FRAMES):
        nir, rgb = background[0].clone(), background[1].clone()
        x, y = 8 + t * OBJECT_STEP, (nir.shape[-2] - PATCH) // 2
        nir[..., y:y + PATCH, x:x + PATCH] = piece[0][..., :PATCH, :PATCH]
        rgb[..., y:y + PATCH, x:x + PATCH] = piece[1][..., :PATCH, :PATCH]
        frames.append((nir, rgb))
    return frames


def flicker(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    yuv = rgb_to_yuv(rgb)
    gain, offset = 1 + 0.2 * rng.uniform(-1, 1), torch.tensor(0.015 * rng.uniform(-1, 1, 2)).float()
    uv = yuv[:, 1:] * gain + offset.view(1, 2, 1, 1)
    return yuv_to_rgb(torch.cat([yuv[:, :1], uv], 1)).clamp(0, 1)


def measure(clip: list, seed: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    hunted = [flicker(rgb, rng) for _, rgb in clip]
    truth = ChromaSmoother(0.0, None)
    for nir, rgb in clip:
        truth(rgb, nir)
    out = {"true frames": (255 * truth.change()[0], 0.0)}
    for name, (weight, motion) in SMOOTHERS.items():
        smoother = ChromaSmoother(weight, None, motion=motion)
        errors = []
        for (nir, rgb), colour in zip(clip, hunted, strict=True):
            result = smoother(colour, nir)
            errors.append(float((rgb_to_yuv(result)[:, 1:] - rgb_to_yuv(rgb)[:, 1:]).abs().mean()))
        out[name] = (255 * smoother.change()[1], 255 * float(np.mean(errors[1:])))
    return out


def main(scenes: Path) -> None:
    stems = []
    for line in (PROJECT_ROOT / "data" / "scene_types" / "nirscene1_scenes_test.csv").read_text().splitlines():
        if line and not line.startswith(("#", "name,")):
            stems.append(line.split(",")[0])
    stems = sorted(s.removeprefix("scenes_") for s in stems)[::4]  # 10 of the 39 held-out frames
    results: dict[str, dict[str, list]] = {"pan": {}, "object": {}}
    for i, stem in enumerate(stems):
        frame = load(scenes, stem)
        other = load(scenes, stems[(i + 1) % len(stems)])
        for kind, clip in (("pan", pan_clip(*frame)), ("object", object_clip(frame, other))):
            for name, values in measure(clip, i).items():
                results[kind].setdefault(name, []).append(values)
    print("| clip | smoother | chroma change /255 | error vs true chroma /255 | motion better than average (error), clips |")
    print("|---|---|---:|---:|---:|")
    for kind, by in results.items():
        for name, values in by.items():
            change, error = np.mean(values, 0)
            wins = ""
            if name.startswith("motion"):
                base = np.array(by[name.replace("motion", "average")])[:, 1]
                wins = f"{int((np.array(values)[:, 1] < base).sum())}/{len(values)}"
            print(f"| {kind} | {name} | {change:.3f} | {error:.3f} | {wins} |")
    print(f"\n{len(stems)} held-out scene frames ({', '.join(stems)}), {FRAMES} frames a clip; "
          "`python experiments/video_chroma/study.py $NIR_COLORIZE_DATA/nirscene1_scenes`")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

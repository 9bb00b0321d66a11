"""Per-variant summary: parameters, output stride, encoder feature shapes, and CPU training-step time."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nir_colorize.models import MODELS, build_model
from nir_colorize.models.base import Colorizer, pad_to_multiple

RESNET_FEATURES = ("input", "stem", "stage 1", "stage 2", "stage 3", "stage 4")
FEATURE_NAMES = {"scd": ("input", "block 1", "block 2", "block 3", "block 4", "block 5"),
                 "linknet": RESNET_FEATURES, "acd": RESNET_FEATURES, "colornet": RESNET_FEATURES}


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class FeatureInfo:
    """One encoder output: its name, shape (C, H, W) and stride vs the padded input."""

    name: str
    shape: tuple[int, int, int]
    stride: int


@torch.no_grad()
def encoder_features(model: Colorizer, size: tuple[int, int], names: tuple[str, ...] = ()) -> tuple[tuple[int, int], list[FeatureInfo]]:
    """Pad a (1, 1, H, W) input as ``model`` does, run its encoder (and neck, if any); the padded
    size and every feature map, named after ``names`` (default ``encoder[i]``)."""
    x, _ = pad_to_multiple(torch.zeros(1, 1, *size), model.output_stride)
    model.eval()
    feats = list(model.core.encoder(x))
    names = list(names or [f"encoder[{i}]" for i in range(len(feats))])
    neck = getattr(model.core, "neck", None)
    if neck is not None and not isinstance(neck, torch.nn.Identity):
        feats.append(neck(feats[-1]))
        names.append(f"neck ({type(neck).__name__})")
    return tuple(x.shape[-2:]), [FeatureInfo(n, tuple(f.shape[1:]), x.shape[-2] // f.shape[-2])
                                 for n, f in zip(names, feats, strict=True)]


def summary(names: list[str], size: tuple[int, int]) -> str:
    """A Markdown-ish text block per variant."""
    lines = []
    for name in names:
        model = build_model(name)
        padded, feats = encoder_features(model, size, FEATURE_NAMES.get(name, ()))
        deepest = max(f.stride for f in feats)
        lines += [f"## {name}: {count_parameters(model):,} parameters, output stride {model.output_stride} "
                  f"(deepest map /{deepest}); input {size[0]}x{size[1]} padded to {padded[0]}x{padded[1]}",
                  "| feature | channels | height x width | stride |", "|---|---|---|---|"]
        for f in feats:
            lines.append(f"| {f.name} | {f.shape[0]} | {f.shape[1]} x {f.shape[2]} | /{f.stride} |")
        lines.append("")
    return "\n".join(lines)


def step_times(name: str, batch: int = 4, size: tuple[int, int] = (256, 256), warmup: int = 1,
               repeats: int = 5, seed: int = 0) -> list[float]:
    """Wall-clock seconds of ``repeats`` training steps (forward, L2-sum loss, backward, Adam step;
    design section 1 hyper-parameters) after ``warmup`` untimed ones, on random data."""
    torch.manual_seed(seed)
    model = build_model(name).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    nir, rgb = torch.rand(batch, 1, *size), torch.rand(batch, 3, *size)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model.forward_tanh(nir), rgb * 2 - 1, reduction="sum")
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def step_time_rows(names: list[str], batch: int, size: tuple[int, int], warmup: int, repeats: int):
    """Markdown table lines, yielded as measured: parameters, output stride, median (min-max) step time."""
    yield (f"| model | parameters | output stride | step time, median s (min-max), batch {batch}, "
           f"{size[0]}x{size[1]}, {torch.get_num_threads()} threads |")
    yield "|---|---|---|---|"
    for name in names:
        model = build_model(name)
        t = step_times(name, batch, size, warmup, repeats)
        yield (f"| `{name}` | {count_parameters(model):,} | {model.output_stride} | "
               f"{statistics.median(t):.2f} ({min(t):.2f}-{max(t):.2f}) |")


__all__ = ["MODELS", "count_parameters", "encoder_features", "step_time_rows", "step_times", "summary"]

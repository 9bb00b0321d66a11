"""Validation PSNR per epoch of the precision-check sweep: fp32 vs bf16 against seed-to-seed noise (README.md)."""

from __future__ import annotations

import sys

import numpy as np
from omegaconf import OmegaConf

from nir_colorize.report.collect import find_sweep, read_curve


def main(sweep: str | None = None) -> str:
    root = find_sweep(sweep, "precision_check")
    curves = {}
    for job in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
        cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
        curves[(str(cfg.trainer.precision), int(cfg.seed))] = dict(read_curve(job / "csv" / "metrics.csv"))
    epochs = sorted(set.intersection(*(set(c) for c in curves.values())))
    keys = sorted(curves)
    lines = ["| epoch | " + " | ".join(f"{p}, seed {s}" for p, s in keys) + " |", "|---:|" + "---:|" * len(keys)]
    for e in epochs:
        lines.append(f"| {e} | " + " | ".join(f"{curves[k][e]:.2f}" for k in keys) + " |")
    gap = lambda a, b: np.array([curves[a][e] - curves[b][e] for e in epochs])  # noqa: E731
    precision = np.concatenate([gap(("bf16-mixed", s), ("32-true", s)) for s in (1, 2)])
    seeds = np.concatenate([gap((p, 2), (p, 1)) for p in ("32-true", "bf16-mixed")])
    last = epochs[-1]
    lines += ["", f"Mean |bf16 - fp32| (same seed) over epochs: {np.abs(precision).mean():.2f} dB "
              f"(mean signed {precision.mean():+.2f}); mean |seed 2 - seed 1| (same precision): "
              f"{np.abs(seeds).mean():.2f} dB. Last epoch ({last}): fp32 "
              + ", ".join(f"{curves[('32-true', s)][last]:.2f}" for s in (1, 2)) + "; bf16 "
              + ", ".join(f"{curves[('bf16-mixed', s)][last]:.2f}" for s in (1, 2)) + " dB.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else None))

"""``python -m nir_colorize.models --summary [--size H W]`` / ``--step-time [--batch B --repeats N]``."""

from __future__ import annotations

import argparse

import torch

from nir_colorize.models import MODELS
from nir_colorize.models.summary import step_time_rows, summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.models", description=__doc__)
    parser.add_argument("--summary", action="store_true", help="parameters, output stride, encoder feature shapes")
    parser.add_argument("--step-time", action="store_true",
                        help="CPU time of one training step (forward, L2-sum loss, backward, Adam)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--size", nargs=2, type=int, default=(256, 256), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=4, help="step-time batch size")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps (the median is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if not (args.summary or args.step_time):
        parser.error("choose --summary and/or --step-time")
    if args.threads:
        torch.set_num_threads(args.threads)
    size = tuple(args.size)
    if args.summary:
        print(summary(args.models, size))
    if args.step_time:
        for line in step_time_rows(args.models, args.batch, size, args.warmup, args.repeats):
            print(line, flush=True)


if __name__ == "__main__":
    main()

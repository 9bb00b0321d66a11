"""``python -m nir_colorize.report [SWEEP_DIR] [--study NAME] [--out DIR] [--seeds SWEEP ...]``: a sweep's results
page."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from nir_colorize import PROJECT_ROOT
from nir_colorize.report.collect import ReportError, collect_sweep, find_sweep, relative
from nir_colorize.report.page import write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.report", description=__doc__)
    parser.add_argument("sweep_dir", nargs="?", help="a multirun directory (logs/train/multiruns/<study>/<time>), "
                        "or a study folder (its newest sweep); default: the newest sweep of --study")
    parser.add_argument("--study", help="the study's name (default: the runs' `study`, else the folder name)")
    parser.add_argument("--out", help="output folder (default: experiments/<study>)")
    parser.add_argument("--images", type=int, default=3, help="test images in the sample grid (default 3)")
    parser.add_argument("--tile", type=int, default=160, help="tile side of the sample grid, pixels (default 160)")
    parser.add_argument("--data-root", help="the test data's root, where it moved since training")
    parser.add_argument("--note", help="a paragraph to add to the README")
    parser.add_argument("--seeds", nargs="+", default=[], metavar="SWEEP",
                        help="sweeps that retrain some rows on other seeds: the claims per seed, real only where "
                             "clear of 0 with the same sign on every seed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        sweep = collect_sweep(find_sweep(args.sweep_dir, args.study))
        seeds = [collect_sweep(find_sweep(path)) for path in args.seeds]
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    study = args.study or sweep.study
    if args.study:
        sweep.study_name = args.study
    out = Path(args.out) if args.out else PROJECT_ROOT / "experiments" / study
    shown = [relative(sweep.path), "--out", relative(out)] + (["--images", str(args.images)] if args.images != 3 else []) \
        + (["--seeds", *(relative(find_sweep(p)) for p in args.seeds)] if args.seeds else []) \
        + (["--note", "..."] if args.note else [])
    written = write_report(sweep, out, images=args.images, tile=args.tile, data_root=args.data_root, note=args.note,
                           seeds=seeds, report_cmd="python -m nir_colorize.report " + shlex.join(shown))
    print((out / "table.md").read_text())
    for problem in sweep.problems:
        print(f"missing: {problem}", file=sys.stderr)
    print(f"report of {len(sweep.runs)} run(s) of {sweep.path}:\n  " + "\n  ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

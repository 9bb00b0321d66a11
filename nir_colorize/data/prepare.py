"""Prepare a dataset ahead of a run: ``python -m nir_colorize.data.prepare nirscene1 --src DIR --out DIR``.

``data=nirscene1`` runs the same preparation on first use; this command lets it be done (and checked)
beforehand. It prints what it wrote, or that the folder is up to date.
"""

from __future__ import annotations

import argparse
import sys

from nir_colorize.data.nirscene1 import RESAMPLE, NIRScene1, prepare_nirscene1
from nir_colorize.errors import DatasetError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.data.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="dataset", required=True)
    nir = sub.add_parser("nirscene1", help="square crops resized to SIZE, split by source image (paper protocol)")
    nir.add_argument("--src", required=True, help="the published folder (country/, field/, ... with <id>_nir.tiff)")
    nir.add_argument("--out", required=True, help="where to write crops/ and split.json")
    nir.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    nir.add_argument("--size", type=int, default=480, help="crop side after resizing (default 480)")
    nir.add_argument("--squares", type=int, default=2,
                     help="squares per image, evenly spaced along the long side: 1 centre, 2 both ends (default)")
    nir.add_argument("--resample", choices=sorted(RESAMPLE), default="bicubic", help="resize filter (default bicubic)")
    nir.add_argument("--test-crops", type=int, default=57, help="test split: whole images up to >= N crops (57)")
    nir.add_argument("--val-crops", type=int, default=57, help="val split: whole images up to >= N crops (57)")
    nir.add_argument("--url", default=None, help="archive to download when --src is absent (needs the network)")
    nir.add_argument("--sha256", default=None, help="expected sha256 of the archive")
    nir.add_argument("--workers", type=int, default=4, help="threads decoding and writing (default 4)")
    nir.add_argument("--force", action="store_true", help="prepare again even if up to date")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        source = NIRScene1(args.src, args.out, seed=args.seed, size=args.size, squares=args.squares,
                           resample=args.resample, test_crops=args.test_crops, val_crops=args.val_crops,
                           url=args.url, sha256=args.sha256, workers=args.workers)
        if args.force and source.source_root() is not None:
            prepared = prepare_nirscene1(source.source_root(), source.out, source.protocol, force=True,
                                         workers=args.workers)
        else:
            prepared = source.prepare()
    except (DatasetError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(prepared.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())

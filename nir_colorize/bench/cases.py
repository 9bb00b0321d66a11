"""Benchmark cases (training step, inference, fusion), each runnable in a fresh process.

A case is a JSON-able dict ``{"kind": "train" | "train_profile" | "matmul" | "infer" | "fusion" | "predict", ...}``
(the training kinds are in ``nir_colorize.bench.training``); ``run_case`` measures it
in this process; ``common.run_isolated`` runs one in a fresh ``python -m nir_colorize.bench.cases`` subprocess,
so that its peak resident memory (``VmHWM``, see ``timing.peak_rss_mb``) belongs to that case alone.
"""

from __future__ import annotations

import json
import sys
import traceback

import torch

from nir_colorize.bench import fusion as fusion_bench
from nir_colorize.bench import predict, threads, training
from nir_colorize.bench.common import MARKER, build_net, has_module, real_nir, timed
from nir_colorize.bench.timing import cuda_peak_mb, peak_rss_mb, reset_cuda_peak


def infer_case(model: str, width: int, height: int, tile: int | None, overlap: int | None, device: str,
               warmup: int, repeat: int) -> dict:
    """Seconds per colorization of one real NIR image (``inference.colorize``: tiled when ``tile`` is set)."""
    if tile is not None and not has_module("nir_colorize.inference"):
        raise RuntimeError("tiled inference not available (nir_colorize.inference is missing)")
    torch.manual_seed(0)
    net = build_net(model).to(device).eval()
    nir = torch.from_numpy(real_nir(width, height))[None, None].to(device)
    extra: dict = {}
    if has_module("nir_colorize.inference"):
        from nir_colorize import inference

        tile_opts = {"tile": tile or inference.TILE, "overlap": inference.OVERLAP if overlap is None else overlap,
                     "tile_above": 0} if tile is not None else {"tile": None}
        extra["tiling"] = {k: v for k, v in tile_opts.items() if k != "tile_above"}

        def run() -> None:
            with torch.inference_mode():
                inference.colorize(net, nir, **tile_opts)
    else:
        def run() -> None:
            with torch.inference_mode():
                net(nir)

    return timed(run, device, warmup, repeat, per_call=width * height / 1e6, unit="megapixels_per_s", **extra)


def fusion_case(width: int, height: int, device: str, warmup: int, repeat: int) -> dict:
    """WLS with every solver and the whole BFWLS at one size on the real sample, through
    ``nir_colorize.bench.fusion.run`` (which warms up once and times ``repeat`` calls, ``direct`` once)."""
    import contextlib
    import io

    rss_setup = peak_rss_mb()
    reset_cuda_peak(device)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its own table
        raw = fusion_bench.run(size=(width, height), device=device, repeat=repeat)
    return {"raw": raw, "rss_setup_mb": rss_setup, "peak_rss_mb": peak_rss_mb(), "peak_cuda_mb": cuda_peak_mb(device)}


def fusion_set_case(width: int, height: int, device: str, repeat: int, images: list[str] | None = None) -> dict:
    """The exact WLS on every image of the fusion benchmark set, against the fastest direct solve
    (``nir_colorize.bench.fusion.run_set``, all SuperLU orderings timed on the first image)."""
    return fusion_bench.run_set(size=(width, height), device=device, repeat=repeat, images=images, orderings=True,
                                log=lambda s: print(s, file=sys.stderr, flush=True))


def threads_case(image: str, repeat: int, size: list[int]) -> dict:
    """Every OpenMP thread policy quiet and beside a busy process (``nir_colorize.bench.threads.run``)."""
    return threads.run(image, repeat, tuple(size), log=lambda s: print(s, file=sys.stderr, flush=True))


CASES = {"train": training.train_case, "train_profile": training.train_profile_case, "matmul": training.matmul_case,
         "infer": infer_case, "fusion": fusion_case, "fusion_set": fusion_set_case, "threads": threads_case,
         "predict": predict.predict_case}


def run_case(case: dict) -> dict:
    """Measure ``case`` in this process; a failure becomes ``{"error": ...}`` (the run goes on)."""
    kwargs = {k: v for k, v in case.items() if k != "kind"}
    try:
        return CASES[case["kind"]](**kwargs)
    except Exception as exc:  # noqa: BLE001 - one failed case must not lose the others' numbers
        return {"error": f"{type(exc).__name__}: {exc}"}


def main(argv: list[str] | None = None) -> None:
    """Child entry point: ``python -m nir_colorize.bench.cases '<case json>'`` prints one result line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m nir_colorize.bench.cases '<case json>'")
    try:
        result = CASES[json.loads(args[0])["kind"]](**{k: v for k, v in json.loads(args[0]).items() if k != "kind"})
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    print(MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

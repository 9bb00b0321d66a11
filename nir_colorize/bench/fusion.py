"""Benchmark of the exact WLS solvers and of BFWLS on real images of several scene types.

``python -m nir_colorize.bench.fusion [--size 1024 680] [--device cpu|cuda] [--repeat N] [--threads T]
[--images NAME ...] [--no-direct] [--orderings] [--json PATH]``

1. On the sample pair (country): WLS with every solver (after a warm-up; median and min-max of ``--repeat``
   runs), the speed-up over ``direct`` measured in the same run, the max abs difference to ``direct``, and the
   whole BFWLS.
2. On the benchmark set (``BENCH_SET``: the two full-resolution nirscene1 frames, country and urban, and eight
   nirscene1 frames of old buildings, streets, interiors and water, 384x256 upscaled): per image the exact WLS
   (``pcg``) time and CG iterations, the same solve in torch alone (``fused=False``), the direct solve (SciPy SuperLU, its fastest ordering) and their ratio, and
   the max abs difference (the design's "exact" is 1/510); then the spread over the set.
``--orderings`` times every SuperLU ordering on the first image (which one is the fastest direct solve).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from nir_colorize.data.dataset import to_tensor
from nir_colorize.data.io import read_nir, read_rgb
from nir_colorize.fusion import SOLVERS, bfwls, fused, wls_smooth
from nir_colorize.fusion.wls import DIRECT_ORDERINGS, solve_direct, wls_weights

DATA = Path(__file__).resolve().parents[2] / "data" / "sample"
SAMPLE = DATA / "nirscene1" / "country"
# name -> NIR file: full-resolution frames first (country is the sample of section 1), then the scene frames
BENCH_SET = {"country": SAMPLE / "0000_nir.tiff", "urban": DATA / "nirscene1" / "urban" / "0000_nir.tiff",
             **{f"scene_{p.name[:3]}": p for p in sorted((DATA / "scenes").glob("*_nir.png"))}}


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, C, H, W) ``x`` resized (bilinear) to ``size`` = (W, H), clamped to [0, 1]."""
    w, h = size
    if x.shape[-2:] == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def load_sample(size: tuple[int, int], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The sample NIR (1, 1, H, W) and RGB (1, 3, H, W) resized (bilinear) to ``size`` = (W, H)."""
    nir = resize(to_tensor(read_nir(SAMPLE / "0000_nir.tiff"))[None], size)
    rgb = resize(to_tensor(read_rgb(SAMPLE / "0000_rgb.tiff"))[None], size)
    return nir.to(device), rgb.to(device)


def load_nir(name: str, size: tuple[int, int], device: str = "cpu") -> tuple[torch.Tensor, list[int]]:
    """Benchmark-set image ``name`` as (H, W) at ``size`` and its source size [W, H]."""
    nir = to_tensor(read_nir(BENCH_SET[name]))[None]
    return resize(nir, size)[0, 0].to(device), [nir.shape[-1], nir.shape[-2]]


def timed(fn: Callable[[], torch.Tensor], repeat: int, device: str) -> tuple[torch.Tensor, list[float], list[float]]:
    """Output, wall times and process CPU times (all threads) of ``repeat`` calls after one warm-up.

    On a shared machine the CPU time is the steadier number: it leaves out time lost to other jobs."""
    out = fn()  # warm-up
    walls, cpus = [], []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        cpu, start = time.process_time(), time.perf_counter()
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return out, walls, cpus


def _stats(walls: list[float], cpus: list[float]) -> dict:
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
            "cpu_median_s": statistics.median(cpus), "repeat": len(walls)}


def time_direct(image: torch.Tensor, ordering: str) -> tuple[torch.Tensor, dict]:
    """One direct solve of WLS(``image``) with SuperLU ``ordering`` (no warm-up: it caches nothing)."""
    ax, ay = wls_weights(image.cpu()[None])
    cpu, start = time.process_time(), time.perf_counter()
    out = solve_direct(image.cpu()[None].double(), ax, ay, ordering=ordering)[0]
    return out, _stats([time.perf_counter() - start], [time.process_time() - cpu])


def fastest_ordering(image: torch.Tensor) -> dict[str, dict]:
    """Every SuperLU ordering's time for WLS(``image``): ``{ordering: stats}``, fastest first."""
    rows = {o: time_direct(image, o)[1] for o in DIRECT_ORDERINGS}
    return dict(sorted(rows.items(), key=lambda kv: kv[1]["median_s"]))


def bench_image(name: str, size: tuple[int, int], device: str, repeat: int, direct: str | None) -> dict:
    """WLS ``pcg`` of one benchmark-set image: time, iterations, and (``direct``: an ordering) the direct solve."""
    image, source = load_nir(name, size, device)
    info: dict = {}
    wls_smooth(image, info=info)
    out, walls, cpus = timed(lambda: wls_smooth(image), repeat, device)
    row = {"name": name, "source_size": source, "upscaled": source[0] < size[0], "iterations": info["iterations"][0],
           "pcg": _stats(walls, cpus)}
    if device == "cpu" and fused.AVAILABLE:  # the same solve in torch alone (no fused kernels), measured beside it
        torch_info: dict = {}
        wls_smooth(image, fused=False, info=torch_info)
        _, walls, cpus = timed(lambda: wls_smooth(image, fused=False), repeat, device)
        row["torch"] = _stats(walls, cpus) | {"iterations": torch_info["iterations"][0]}
        row["speedup_vs_torch"] = row["torch"]["median_s"] / row["pcg"]["median_s"]
    if direct:
        ref, row["direct"] = time_direct(image, direct)
        row["direct_ordering"] = direct
        row["speedup_vs_direct"] = row["direct"]["median_s"] / row["pcg"]["median_s"]
        row["max_abs_diff_vs_direct"] = (out.double().cpu() - ref).abs().max().item()
    return row


def spread(rows: list[dict]) -> dict:
    """Median and worst (max) pcg time and iterations over the set, the slowest image, the lowest speed-up."""
    times = [r["pcg"]["median_s"] for r in rows]
    out = {"images": len(rows), "pcg_median_s": statistics.median(times), "pcg_max_s": max(times),
           "slowest": rows[times.index(max(times))]["name"],
           "iterations_median": statistics.median(r["iterations"] for r in rows),
           "iterations_max": max(r["iterations"] for r in rows)}
    if all("torch" in r for r in rows):
        torch_times = [r["torch"]["median_s"] for r in rows]
        out |= {"torch_median_s": statistics.median(torch_times), "torch_max_s": max(torch_times),
                "speedup_vs_torch_median": statistics.median(r["speedup_vs_torch"] for r in rows)}
    if all("speedup_vs_direct" in r for r in rows):
        out["speedup_min"] = min(r["speedup_vs_direct"] for r in rows)
        out["max_abs_diff_vs_direct"] = max(r["max_abs_diff_vs_direct"] for r in rows)
    return out


def run_set(size: tuple[int, int] = (1024, 680), device: str = "cpu", repeat: int = 5, images: list[str] | None = None,
            direct: bool = True, orderings: bool = False, log: Callable[[str], None] = print) -> dict:
    """Section 2 (the benchmark set); ``orderings``: first time every SuperLU ordering on the first image."""
    names = list(BENCH_SET) if images is None else images
    unknown = [n for n in names if n not in BENCH_SET]
    if unknown:
        raise ValueError(f"unknown benchmark image(s) {unknown}: choose from {', '.join(BENCH_SET)}")
    result: dict = {"size": list(size), "device": device, "threads": torch.get_num_threads()}
    ordering = "MMD_AT_PLUS_A"
    if direct and orderings:
        result["orderings"] = fastest_ordering(load_nir(names[0], size)[0])
        ordering = next(iter(result["orderings"]))
    rows = []
    for name in names:
        rows.append(bench_image(name, size, device, repeat, ordering if direct else None))
        r = rows[-1]
        log(f"  {name}: pcg {r['pcg']['median_s']:.3f} s, {r['iterations']} iterations"
            + (f", direct {r['direct']['median_s']:.2f} s ({r['speedup_vs_direct']:.0f}x), max diff "
               f"{r['max_abs_diff_vs_direct']:.1e}" if direct else ""))
    result["rows"], result["spread"] = rows, spread(rows)
    return result


def run(size: tuple[int, int] = (1024, 680), device: str = "cpu", repeat: int = 5, direct_repeat: int = 1) -> dict:
    """Section 1 (the sample pair); returns ``{"wls": {solver: {...}}, "bfwls": {...}, ...}`` and prints a table."""
    nir, rgb = load_sample(size, device)
    image = nir[0, 0]
    results: dict = {"size": list(size), "device": device, "threads": torch.get_num_threads(), "wls": {}}
    outputs = {}
    for solver in ("direct", *[s for s in SOLVERS if s != "direct"]):
        n = direct_repeat if solver == "direct" else repeat
        out, walls, cpus = timed(lambda s=solver: wls_smooth(image, solver=s), n, device)
        outputs[solver] = out
        results["wls"][solver] = _stats(walls, cpus)
    for solver, row in results["wls"].items():
        row["speedup_vs_direct"] = results["wls"]["direct"]["median_s"] / row["median_s"]
        row["max_abs_diff_vs_direct"] = (outputs[solver].double().cpu() - outputs["direct"].double().cpu()).abs().max().item()
    _, walls, cpus = timed(lambda: bfwls(nir, rgb), repeat, device)
    results["bfwls"] = _stats(walls, cpus)
    print(f"WLS / BFWLS on a {size[0]}x{size[1]} image, device {device}, torch threads {results['threads']}")
    print("| what | median wall s | min-max wall s | median CPU s | x faster than direct | max abs diff to direct |")
    print("|---|---|---|---|---|---|")
    for solver, row in results["wls"].items():
        print(f"| WLS {solver} | {row['median_s']:.3f} | {row['min_s']:.3f}-{row['max_s']:.3f} | "
              f"{row['cpu_median_s']:.3f} | {row['speedup_vs_direct']:.1f} | {row['max_abs_diff_vs_direct']:.2e} |")
    row = results["bfwls"]
    print(f"| BFWLS (pcg) | {row['median_s']:.3f} | {row['min_s']:.3f}-{row['max_s']:.3f} | {row['cpu_median_s']:.3f} | | |")
    return results


def set_markdown(result: dict) -> list[str]:
    """The benchmark-set table (one row per image, then the spread)."""
    w, h = result["size"]
    lines = [f"| image ({w}x{h}) | source | CG iterations | pcg s (min-max) | torch alone s (its iterations) | "
             "direct s | x direct | max diff to direct |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        src = "x".join(map(str, r["source_size"])) + (" upscaled" if r["upscaled"] else "")
        p = r["pcg"]
        alone = f"{r['torch']['median_s']:.3f} ({r['torch']['iterations']})" if "torch" in r else ""
        direct = (f"{r['direct']['median_s']:.2f} | {r['speedup_vs_direct']:.0f} | {r['max_abs_diff_vs_direct']:.1e}"
                  if "direct" in r else "| |")
        lines.append(f"| {r['name']} | {src} | {r['iterations']} | {p['median_s']:.3f} ({p['min_s']:.3f}-{p['max_s']:.3f})"
                     f" | {alone} | {direct} |")
    s = result["spread"]
    lines += ["", f"Over the {s['images']} images: pcg median {s['pcg_median_s']:.3f} s, worst {s['pcg_max_s']:.3f} s "
              f"({s['slowest']}); iterations median {s['iterations_median']:g}, max {s['iterations_max']}"
              + (f"; torch alone (no fused kernels) median {s['torch_median_s']:.3f} s, worst {s['torch_max_s']:.3f} s "
                 f"(fused kernels {s['speedup_vs_torch_median']:.2f}x faster, median)" if "torch_median_s" in s else "")
              + (f"; speed-up over direct at least {s['speedup_min']:.0f}x; max difference to direct "
                 f"{s['max_abs_diff_vs_direct']:.1e} (exact: <= 1/510 = 2.0e-03)" if "speedup_min" in s else "") + "."]
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 680), metavar=("W", "H"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--images", nargs="+", default=None, help=f"benchmark-set images (default all: {', '.join(BENCH_SET)})")
    parser.add_argument("--no-direct", action="store_true", help="benchmark set without the direct solves")
    parser.add_argument("--orderings", action="store_true", help="time every SuperLU ordering on the first image")
    parser.add_argument("--sample-only", action="store_true", help="only section 1 (the sample pair)")
    parser.add_argument("--set-only", action="store_true", help="only section 2 (the benchmark set)")
    parser.add_argument("--json", type=Path, default=None, help="write the result as JSON here ('-': stdout)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.json == Path("-") else print
    result: dict = {}
    if not args.set_only:
        result["sample"] = run(tuple(args.size), args.device, args.repeat)
    if not args.sample_only:
        result["set"] = run_set(tuple(args.size), args.device, args.repeat, args.images, not args.no_direct,
                                args.orderings, log=log)
        log("\n".join(set_markdown(result["set"])))
    if args.json == Path("-"):
        print(json.dumps(result))
    elif args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

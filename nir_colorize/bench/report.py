"""Machine description and the benchmark's JSON / Markdown files."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import subprocess
from pathlib import Path

import torch

from nir_colorize import PROJECT_ROOT
from nir_colorize.utils.atomic import write_bytes_atomic
from nir_colorize.utils.hardware import cpu_bf16_support, cpu_count, cpu_model

__all__ = ["cpu_count", "cpu_model", "machine_meta", "machine_name", "markdown", "slug", "write"]


def slug(text: str) -> str:
    """Lower-case, dash-separated, without vendor noise: 'AMD EPYC 7B13 64-Core Processor' -> 'amd-epyc-7b13'."""
    text = re.sub(r"\(r\)|\(tm\)|\bcpu\b|\bprocessor\b|\b\d+-core\b|@.*$", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown"


def machine_name(device: str) -> str:
    """``cuda-<gpu name>`` or ``cpu-<cores>c-<cpu model>``: the file name of a result."""
    if torch.device(device).type == "cuda":
        return f"cuda-{slug(torch.cuda.get_device_name(torch.device(device)))}"
    return f"cpu-{cpu_count()}c-{slug(cpu_model())}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() + ("-dirty" if dirty else "")) if out.returncode == 0 else None


def machine_meta(device: str) -> dict:
    meta = {"machine": machine_name(device), "device": device, "cpu": cpu_model(), "cpus": cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit()}
    meta["cpu_bf16"] = cpu_bf16_support()
    if torch.device(device).type == "cuda":
        meta |= {"gpu": torch.cuda.get_device_name(torch.device(device)), "cuda": torch.version.cuda,
                 "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32}
    meta["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    with contextlib.suppress(OSError):
        meta["load_average"] = list(os.getloadavg())
    return meta


CPU_SHARE_WARN = 0.85  # below this the threads did not get their cores: the time is inflated by other jobs


def _t(seconds: dict | None) -> str:
    if not seconds:
        return "-"
    share = seconds.get("cpu_share")
    busy = f", CPU share {100 * share:.0f} %" if share is not None and share < CPU_SHARE_WARN else ""
    if seconds.get("q1") is None:  # timed elsewhere without quartiles: min-max
        return f"{seconds['median']:.3g} (min-max {seconds['min']:.3g}-{seconds['max']:.3g}, n={seconds['n']}{busy})"
    return f"{seconds['median']:.3g} ({seconds['q1']:.3g}-{seconds['q3']:.3g}, n={seconds['n']}{busy})"


def _n(value: float | None, fmt: str = ".3g") -> str:
    return "-" if value is None else format(value, fmt)


def _mem(row: dict) -> str:
    parts = []
    if row.get("peak_cuda_mb") is not None:
        parts.append(f"{row['peak_cuda_mb']:.0f} CUDA")
    if row.get("peak_rss_mb") is not None:
        parts.append(f"{row['peak_rss_mb']:.0f} RSS ({row['rss_setup_mb']:.0f} after setup)")
    return ", ".join(parts) or "-"


def _error(row: dict, ncols: int, label: str) -> str:
    return f"| {label} | " + " | ".join([f"failed: {' '.join(row['error'].split())[:160]}"] + ["-"] * (ncols - 2)) + " |"


LAYOUT_NAMES = {"nchw": "NCHW", "channels_last": "channels_last"}


def _label(precision: str, layout: str) -> str:
    return f"{precision} {LAYOUT_NAMES.get(layout, layout)}"


def _g(flops: float | None) -> str:
    return "-" if flops is None else f"{flops / 1e9:.3g}"


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def training_markdown(tr: dict) -> list[str]:
    """The training section: the peaks, one row per (variant, precision / layout), before / after, accuracy."""
    head = f"## Training step ({tr.get('size')}x{tr.get('size')}, batch {tr.get('batch')}, L2-sum + Adam)"
    if tr.get("skipped"):
        return [head, "", "Not run (`--sections`).", ""]
    lines = [head, ""]
    if "fast_precision" in tr:
        cpu = tr.get("cpu_bf16") or {}
        lines += [f"Fast precision here: Lightning `{tr['fast_precision']}` (CPU: AMX-BF16 "
                  f"{_yes(cpu.get('amx_bf16') and cpu.get('amx_tile'))}, AVX512-BF16 {_yes(cpu.get('avx512_bf16'))}, "
                  f"torch capability {cpu.get('capability')}). bf16 = forward under `torch.autocast(bfloat16)`, "
                  "fp32 weights and Adam.", ""]
    peaks = [f"{p} {_n(r['flop_per_s'] / 1e9, '.4g')} GFLOP/s ({r['n']}x{r['n']}, {_t(r['seconds'])} s)"
             if "flop_per_s" in r else f"{p} failed: {r.get('error')}" for p, r in (tr.get("peak") or {}).items()]
    if peaks:
        lines += ["Peak (one n x n matmul, this run; the faster of a measurement before and after the timed "
                  "cases): " + "; ".join(peaks) + ". *% of peak* compares a row with "
                  "the peak of its precision. *GFLOP / step*: convolutions and matmuls of forward + backward "
                  "(`torch.utils.flop_counter`, 2 per multiply-add), counted once per variant.", ""]
    base = tr.get("baseline")
    cols = ["variant", "precision / layout", "parameters", "s / step", "images / s", "GFLOP / step",
            "achieved GFLOP/s", "% of peak", "speed-up vs fp32"] + ([f"x {base}"] if base else []) + ["peak memory MiB"]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in tr["rows"]:
        name = f"{r['model']} | {_label(r.get('precision', 'fp32'), r.get('layout', 'nchw'))}"
        if "error" in r:
            lines.append(_error(r, len(cols) - 1, name))
            continue
        ratio = [_n(r.get("throughput_ratio_to_baseline"), ".2f")] if base else []
        lines.append("| " + " | ".join([name, f"{r['parameters'] / 1e6:.1f} M", _t(r["seconds"]),
                                        _n(r["images_per_s"]), _g(r.get("flops_per_step")),
                                        _g(r.get("achieved_flop_per_s")), _pct(r.get("peak_fraction")),
                                        _n(r.get("speedup_vs_fp32"), ".2f"), *ratio, _mem(r)]) + " |")
    before, after = tuple(tr.get("before") or ()), tuple(tr.get("after") or ())
    pick = {(r["model"], r.get("precision"), r.get("layout")): r for r in tr["rows"] if "error" not in r}
    models = list(dict.fromkeys(r["model"] for r in tr["rows"]))
    if before and after and before != after:
        lines += ["", f"### Before ({_label(*before)}) and after ({_label(*after)}), same run", "",
                  "| variant | images / s before | images / s after | speed-up | % of peak before | % of peak after |",
                  "|---|---|---|---|---|---|"]
        for m in models:
            b, a = pick.get((m, *before)), pick.get((m, *after))
            if b and a:
                lines.append(f"| {m} | {_n(b['images_per_s'])} | {_n(a['images_per_s'])} | "
                             f"{_n(a['images_per_s'] / b['images_per_s'], '.2f')} | {_pct(b.get('peak_fraction'))} | "
                             f"{_pct(a.get('peak_fraction'))} |")
    acc = [(m, a) for m, p in (tr.get("profiles") or {}).items() if "accuracy" in p for a in p["accuracy"]]
    if acc:
        lines += ["", "### Accuracy cost: one step from the same weights on the real sample batch, vs fp32 NCHW", "",
                  "| variant | precision / layout | loss rel. diff | gradient rel. diff (L2) | gradient cosine | "
                  "worst weight gradient rel. diff | Adam update rel. diff | conv inputs channels_last |",
                  "|---|---|---|---|---|---|---|---|"]
        for m, a in acc:
            worst = (f"{_n(a['worst_grad_rel_diff'])} ({a['worst_grad_param']})"
                     if a.get("worst_grad_param") else "-")
            lines.append(f"| {m} | {_label(a['precision'], a['layout'])} | {_n(a['loss_rel_diff'])} | "
                         f"{_n(a['grad_rel_diff'])} | {_n(a['grad_cosine'], '.4f')} | {worst} | "
                         f"{_n(a['update_rel_diff'])} | {_pct(a.get('channels_last_conv_inputs'))} % |")
    failed = [f"{m}: {p['error']}" for m, p in (tr.get("profiles") or {}).items() if "error" in p]
    if failed:
        lines += ["", "Profile (FLOPs, accuracy) failed for " + "; ".join(failed) + "."]
    return lines + [""]


def inference_markdown(inf: dict) -> list[str]:
    head = f"## Inference ({inf.get('model')}, one image, random weights)"
    if inf.get("skipped"):
        return ["## Inference", "", "Not run (`--sections`).", ""]
    lines = [head, "", "| image | tiling | s / image | megapixels / s | peak memory MiB |", "|---|---|---|---|---|"]
    for r in inf["rows"]:
        if "error" in r:
            lines.append(_error(r, 5, r["size"]))
            continue
        tiling = r.get("tiling") or {}
        how = f"tiles {tiling['tile']}, overlap {tiling['overlap']}" if tiling.get("tile") else "whole image"
        lines.append(f"| {r['size']} | {how} | {_t(r['seconds'])} | {_n(r['megapixels_per_s'])} | {_mem(r)} |")
    return lines + [""]


def fusion_markdown(fu: dict) -> list[str]:
    lines = ["## Fusion (WLS smoothing, full BFWLS) on the real sample", ""]
    if fu.get("skipped"):
        return lines + ["Not run (`--sections`).", ""]
    if fu.get("note"):
        lines += [fu["note"] + ".", ""]
    if fu["rows"]:
        lines += ["| operation | image | solver | s / image | x direct (speed-up) | peak memory MiB |",
                  "|---|---|---|---|---|---|"]
        for r in fu["rows"]:
            label = f"{r['op']} {r['size']} {r['solver']}"
            if "error" in r:
                lines.append(_error(r, 6, label))
                continue
            lines.append(f"| {r['op']} | {r['size']} | {r['solver']} | {_t(r['seconds'])} | "
                         f"{_n(r.get('speedup_vs_direct'), '.2f')} | {_mem(r)} |")
        lines.append("")
    if fu.get("set"):
        from nir_colorize.bench.fusion import set_markdown

        lines += ["### The exact WLS on real images of several scene types", ""]
        if "error" in fu["set"]:
            lines += [f"Failed: {fu['set']['error']}", ""]
        else:
            orderings = fu["set"].get("orderings")
            if orderings:
                lines += ["Direct solve (SciPy SuperLU) on the first image by column ordering: " + ", ".join(
                    f"{o} {r['median_s']:.2f} s" for o, r in orderings.items()) + "; the fastest is used below.", ""]
            lines += set_markdown(fu["set"]) + [""]
    if fu.get("threads"):
        from nir_colorize.bench.threads import markdown as threads_markdown

        lines += ["### Beside a busy process and beside a training (OpenMP thread policy)", ""]
        lines += [f"Failed: {fu['threads']['error']}", ""] if "error" in fu["threads"] else threads_markdown(fu["threads"])
    return lines


def markdown(result: dict) -> str:
    """The benchmark as Markdown: a header with the machine, then one table per section."""
    m, c = result["meta"], result["config"]
    lines = [f"# Benchmark: {m['machine']}", "",
             f"{m['date']}, commit {m['git_commit']}, torch {m['torch']}, device {m['device']}, "
             f"{m['cpus']} CPUs ({m['cpu']}), {m['torch_threads']} torch threads"
             + (f", GPU {m['gpu']}" if "gpu" in m else "")
             + (f", load average {m['load_average'][0]:.1f} at start" if "load_average" in m else "") + ".",
             f"Times: median seconds (interquartile range, repetitions) after {c['warmup']} warm-up call(s). "
             "Memory: peak MiB of a fresh process per case (RSS, imports included) / CUDA max allocated.", ""]
    if not m.get("complete", True):
        lines += ["**Incomplete run**: sections still empty were not measured.", ""]
    lines += training_markdown(result["training"])
    lines += inference_markdown(result["inference"])
    lines += fusion_markdown(result["fusion"])
    return "\n".join(lines).rstrip("\n") + "\n"


def write(result: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``<machine>.json`` and ``<machine>.md`` under ``out_dir`` (atomically); returns both paths."""
    name = result["meta"]["machine"]
    paths = out_dir / f"{name}.json", out_dir / f"{name}.md"
    for path, text in zip(paths, (json.dumps(result, indent=2) + "\n", markdown(result)), strict=True):
        write_bytes_atomic(path, text.encode())
    return paths

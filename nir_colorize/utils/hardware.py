"""What this machine offers for fast training: the CPU's model and bf16 support, and the Lightning precision to use.

``fast_precision(device)`` is the Lightning ``precision`` string that keeps the hardware busiest without
giving up training in fp32 master weights: ``"bf16-mixed"`` where bf16 has hardware support (a CUDA GPU
with native bf16, ``torch.cuda.is_bf16_supported(including_emulation=False)``; a CPU with AMX-BF16 or AVX512-BF16 and oneDNN in this torch),
else ``"32-true"``. fp16 (``"16-mixed"``) is never chosen: it needs loss scaling and gains nothing where
bf16 runs. The CPU flags are read from ``/proc/cpuinfo`` (Linux; elsewhere no flags, so fp32).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")
FP32, BF16 = "32-true", "bf16-mixed"


def read_cpuinfo() -> str:
    """The text of ``CPUINFO`` (``/proc/cpuinfo``), or '' where there is none (macOS, Windows)."""
    try:
        return CPUINFO.read_text()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (default: ``read_cpuinfo()``): the ``flags`` line
    on x86, ``Features`` on ARM; empty when there is no such line."""
    for line in (read_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's ``model name`` from ``cpuinfo`` (default: ``read_cpuinfo()``), else ``platform.processor()``."""
    for line in (read_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    """CPUs this process may use (the affinity mask, as a container or taskset sees it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_bf16_support(cpuinfo: str | None = None) -> dict:
    """The CPU's bf16 features: each flag of ``BF16_FLAGS``, torch's vector ``capability``
    (``torch.backends.cpu.get_cpu_capability()``, e.g. 'AVX512'), whether oneDNN (``mkldnn``, which runs
    bf16 convolutions and matmuls on AMX / AVX512-BF16) is in this torch, and ``fast_bf16``: AMX-BF16
    (``amx_bf16`` and ``amx_tile``) or AVX512-BF16, with oneDNN."""
    flags = cpu_flags(cpuinfo)
    found = {flag: flag in flags for flag in BF16_FLAGS}
    amx = found["amx_bf16"] and found["amx_tile"]
    mkldnn = torch.backends.mkldnn.is_available()
    return found | {"capability": torch.backends.cpu.get_cpu_capability(), "mkldnn": mkldnn,
                    "fast_bf16": bool((amx or found["avx512_bf16"]) and mkldnn)}


def fast_precision(device: str | torch.device = "cpu") -> str:
    """The Lightning precision for training on ``device``: ``"bf16-mixed"`` where bf16 has hardware
    support there, else ``"32-true"`` (see the module docstring)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return FP32
        with torch.cuda.device(dev):  # native bf16 (compute capability 8.0 on: Ampere, Hopper), not emulated
            return BF16 if torch.cuda.is_bf16_supported(including_emulation=False) else FP32
    if dev.type == "cpu":
        return BF16 if cpu_bf16_support()["fast_bf16"] else FP32
    return FP32


__all__ = ["BF16", "BF16_FLAGS", "CPUINFO", "FP32", "cpu_bf16_support", "cpu_count", "cpu_flags", "cpu_model",
           "fast_precision", "read_cpuinfo"]

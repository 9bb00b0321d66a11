"""nir-colorize: near-infrared image colorization (Ma et al. 2022) with Lightning + Hydra."""

import os
from pathlib import Path

# OpenMP threads sleep at once when they wait (libgomp otherwise spins ~300k iterations first): on a machine
# that another process keeps busy, spinning threads of the exact WLS and of inference wait for each other at
# every barrier and ran many times slower; measured quiet and busy by `python -m nir_colorize.bench.threads`
# (docs/bench.md). Set before torch loads libgomp; an OMP_WAIT_POLICY or GOMP_SPINCOUNT already set wins.
DEFAULT_OMP_WAIT_POLICY: str | None = "PASSIVE"
if DEFAULT_OMP_WAIT_POLICY and "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = DEFAULT_OMP_WAIT_POLICY

from omegaconf import OmegaConf  # noqa: E402

__version__ = "0.1.0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = str(PROJECT_ROOT / "conf")

# `${project_root:}` in configs: the repository root, wherever the command runs from.
if not OmegaConf.has_resolver("project_root"):
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
# `${optional_dir:${study}}`: "NAME/" for a name, "" for null (the sweep directory of a named study).
if not OmegaConf.has_resolver("optional_dir"):
    OmegaConf.register_new_resolver("optional_dir", lambda name=None: f"{name}/" if name else "")
# `${stderr_tty:}`: whether stderr is a terminal (progress bars there, none in log files).
if not OmegaConf.has_resolver("stderr_tty"):
    import sys as _sys

    OmegaConf.register_new_resolver("stderr_tty", lambda: _sys.stderr.isatty())
# `${fast_precision:}` (or `${fast_precision:cuda}`): bf16-mixed where the device computes bf16 natively, else
# 32-true (nir_colorize.utils.hardware; imported on use, so that configs load without torch's start-up cost).
if not OmegaConf.has_resolver("fast_precision"):
    def _fast_precision(device: str = "cpu") -> str:
        from nir_colorize.utils.hardware import fast_precision

        return fast_precision(device)

    OmegaConf.register_new_resolver("fast_precision", _fast_precision)

"""nir-colorize: near-infrared image colorization (Ma et al. 2022) with Lightning + Hydra."""

from pathlib import Path

from omegaconf import OmegaConf

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

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

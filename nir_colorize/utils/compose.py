"""Compose a Hydra config in-process (tests, notebooks, the report), as the CLI would."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from nir_colorize import CONFIG_DIR


def compose_config(config_name: str, overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> DictConfig:
    """The config ``config_name`` (``train``, ``eval``, ``predict``) with ``overrides``.

    ``${hydra:runtime.output_dir}`` (and so ``paths.output_dir``) resolves to ``output_dir``,
    which defaults to a fresh run directory under ``paths.log_dir``.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        if output_dir is None:
            output_dir = cfg.hydra.run.dir
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.name = config_name
    HydraConfig.instance().set_config(cfg)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg

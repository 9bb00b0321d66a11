"""Build callbacks and loggers from their Hydra config groups."""

from __future__ import annotations

import logging

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def _targets(group: DictConfig | None) -> list:
    if not group:
        return []
    return [instantiate(node) for node in group.values() if isinstance(node, DictConfig) and "_target_" in node]


def instantiate_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """Callbacks of the ``callbacks`` group plus the ``fusion`` group's callback, if any."""
    callbacks = _targets(cfg.get("callbacks"))
    fusion = cfg.get("fusion")
    if fusion is not None and fusion.get("callback") is not None:
        callbacks.append(instantiate(fusion.callback))
    return callbacks


def instantiate_loggers(cfg: DictConfig) -> list[Logger]:
    """Loggers of the ``logger`` group (CSV by default)."""
    return _targets(cfg.get("logger"))

"""Build callbacks and loggers from their Hydra config groups."""

from __future__ import annotations

import logging

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from nir_colorize.utils.checkpoints import AtomicCheckpoints

log = logging.getLogger(__name__)


def _nodes(group: DictConfig | None) -> list[DictConfig]:
    if not group:
        return []
    return [node for node in group.values() if isinstance(node, DictConfig) and "_target_" in node]


def _targets(group: DictConfig | None) -> list:
    return [instantiate(node) for node in _nodes(group)]


def has_logger(cfg: DictConfig) -> bool:
    """Whether the ``logger`` group configures any logger (``logger=none``: no)."""
    return bool(_nodes(cfg.get("logger")))


def instantiate_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """Callbacks of the ``callbacks`` group plus the ``fusion`` group's callback, if any, and
    ``AtomicCheckpoints`` (checkpoints written to a temp file, fsync'ed and renamed: a kill never leaves a
    half-written one; see ``nir_colorize.utils.checkpoints``).

    Without a logger (``logger=none``) a ``LearningRateMonitor`` is left out: Lightning refuses it then,
    and it would have nowhere to log.
    """
    callbacks = _targets(cfg.get("callbacks"))
    if not has_logger(cfg):
        for cb in [cb for cb in callbacks if isinstance(cb, LearningRateMonitor)]:
            log.debug("no logger: leaving out %s (it logs the learning rate to a logger)", type(cb).__name__)
            callbacks.remove(cb)
    fusion = cfg.get("fusion")
    if fusion is not None and fusion.get("callback") is not None:
        callbacks.append(instantiate(fusion.callback))
    callbacks.append(AtomicCheckpoints())
    return callbacks


def instantiate_loggers(cfg: DictConfig) -> list[Logger]:
    """Loggers of the ``logger`` group (CSV by default)."""
    return _targets(cfg.get("logger"))

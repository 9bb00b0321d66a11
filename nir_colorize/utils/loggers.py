"""Loggers that never block or crash a run for want of a network or an API key."""

from __future__ import annotations

import logging
import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        rc = netrc.netrc()
        return any("wandb" in host for host in rc.hosts)
    except Exception:  # noqa: BLE001 - no or unreadable .netrc
        return False


def wandb_logger(**kwargs: Any) -> WandbLogger:
    """A ``WandbLogger`` that goes offline (with a warning) where online logging cannot work.

    Honours ``WANDB_MODE``; with no mode set and no API key it logs offline so that the run
    can be synced later with ``wandb sync <dir>``. A short init timeout avoids long hangs.
    """
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        kwargs.setdefault("offline", mode != "disabled")
    elif not _has_wandb_key():
        log.warning("wandb: no API key found (WANDB_API_KEY or `wandb login`): logging offline; "
                    "sync later with `wandb sync %s/wandb/offline-run-*`", kwargs.get("save_dir", "."))
        kwargs["offline"] = True
    kwargs.setdefault("settings", _settings())
    tags = kwargs.get("tags")
    if tags is not None:
        kwargs["tags"] = [str(t) for t in tags]
    return WandbLogger(**kwargs)


def finish_wandb(loggers: list[Any]) -> None:
    """End this job's W&B run: the next job of a sweep (same process) would otherwise log into it.

    ``finish`` returns before W&B's service has closed the run's file; shutting the service down
    (where no other run is active) puts the whole run on disk before the next job starts.
    """
    finished = False
    for logger in loggers:
        if isinstance(logger, WandbLogger) and getattr(logger, "_experiment", None) is not None:
            logger.experiment.finish()
            finished = True
    if finished:
        import wandb

        if wandb.run is None:
            wandb.teardown()


def _settings() -> Any:
    import wandb

    return wandb.Settings(init_timeout=30, silent=True)

"""Checkpoints that survive a kill: written to a temporary file in the same folder, fsync'ed, renamed.

Lightning's default ``TorchCheckpointIO`` writes through an fsspec transaction whose temporary file lies
in the system temp folder: ``shutil.move`` then copies it when that is another file system (a kill during
the copy leaves a truncated ``last.ckpt``), nothing is fsync'ed, and a kill mid-write leaves the partial
temp file behind in ``/tmp``. ``AtomicCheckpointIO`` writes ``.<name>.tmp-<pid>-<random>.part`` beside the
checkpoint, fsyncs it, ``os.replace``s it onto the checkpoint (atomic on one file system) and fsyncs the
folder; a reader sees the old checkpoint or the new one, never half of one. Temp files left by a killed
writer (its process is gone) are removed at the next save into that folder.

``AtomicCheckpoints`` (a callback, added by ``instantiate_callbacks``) installs it as the Trainer's
checkpoint IO at setup, unless a different CheckpointIO plugin was configured.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from nir_colorize.utils.atomic import atomic_path

log = logging.getLogger(__name__)

TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[^.]+(\.part)?$")  # utils.atomic's temp names


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files of checkpoint writers that no longer run; returns what was removed."""
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            match = TEMP_PATTERN.match(entry.name)
            if match and entry.is_file() and not _pid_alive(int(match["pid"])):
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
                log.info("removed %s, left by an interrupted checkpoint write", entry.path)
    return removed


def save_atomic(checkpoint: dict[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically and durably (``utils.atomic.atomic_path``), after removing the temp
    files of writers that were killed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    with atomic_path(path, durable=True) as tmp, open(tmp, "wb") as fh:
        torch.save(checkpoint, fh)
    return path


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves are atomic and durable (see the module docstring); local paths."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__}.save_checkpoint takes no storage_options")
        if "://" in str(path) and not str(path).startswith("file://"):  # remote: Lightning's own transaction
            super().save_checkpoint(checkpoint, path)
            return
        save_atomic(checkpoint, str(path).removeprefix("file://"))


class AtomicCheckpoints(L.Callback):
    """Make the Trainer save checkpoints through ``AtomicCheckpointIO`` (if it uses the default IO)."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        current = trainer.strategy.checkpoint_io
        if type(current) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        elif not isinstance(current, AtomicCheckpointIO):
            log.debug("checkpoint IO %s configured: checkpoints are not made atomic", type(current).__name__)

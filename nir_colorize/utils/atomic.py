"""Atomic file writes for the whole package: a reader never sees half a file, an interrupted write leaves none."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _fsync(path: str | os.PathLike, folder: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: no directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (``.<name>.tmp-<pid>-<random>.part``); on success it is renamed to
    ``path`` (atomic on one file system), on any error or interruption it is deleted. ``durable``: the file and
    its folder are fsync'ed too, so that a power loss leaves the old file or the new one (checkpoints)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if durable:
            _fsync(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync(path.parent, folder=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)

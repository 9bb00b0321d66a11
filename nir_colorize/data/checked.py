"""A small on-disk record of image files already decoded and found good, so that the full-decode
check of a dataset is paid once per file, not once per run."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from nir_colorize.utils.atomic import write_bytes_atomic

log = logging.getLogger(__name__)


def file_key(path: Path) -> tuple[str, list[int]]:
    """(absolute path, [size in bytes, mtime in ns]): a file whose size or time changed is checked again."""
    st = path.stat()
    return str(path.resolve()), [st.st_size, st.st_mtime_ns]


class CheckedFiles:
    """Maps a file's key to what its check found (role, image size, fingerprint). ``path=None`` keeps it in memory."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.dirty = False
        if self.path and self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text())["files"]
            except (ValueError, KeyError, TypeError) as exc:  # a damaged record is only a lost cache
                log.warning("ignoring unreadable check record %s (%s)", self.path, exc)

    def get(self, path: Path, role: str) -> tuple[tuple[int, int], dict[str, str]] | None:
        """((H, W), fingerprint) recorded for ``path`` in ``role`` if the file is unchanged since its check
        (and the record has a fingerprint, ``nir_colorize.data.leakage``), else None."""
        key, stamp = file_key(path)
        entry = self.entries.get(key)
        if entry and entry["stamp"] == stamp and entry["role"] == role and "fingerprint" in entry:
            return (entry["height"], entry["width"]), entry["fingerprint"]
        return None

    def put(self, path: Path, role: str, height: int, width: int, fingerprint: dict[str, str]) -> None:
        key, stamp = file_key(path)
        with self.lock:
            self.entries[key] = {"stamp": stamp, "role": role, "height": height, "width": width,
                                 "fingerprint": fingerprint}
            self.dirty = True

    def save(self) -> None:
        """Write the record atomically (concurrent runs: the last writer wins, both records are valid)."""
        if self.path and self.dirty:
            data = json.dumps({"version": 1, "files": self.entries}, sort_keys=True)
            write_bytes_atomic(self.path, data.encode())
            self.dirty = False

"""Fetching a published archive (only where a URL is configured): verified, atomic, then unpacked."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path

from nir_colorize.utils.atomic import atomic_path

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A download that failed or did not verify; the message says what to do instead."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest_dir: Path, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` into ``dest_dir`` (kept if it is already there and verifies), checking ``sha256``
    when given. The file appears under its final name only once complete and verified."""
    dest = dest_dir / (Path(urllib.parse.urlparse(url).path).name or "download")
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256.lower()):
        return dest
    log.info("downloading %s to %s", url, dest)
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=timeout) as response, tmp.open("wb") as f:
                shutil.copyfileobj(response, f, 1 << 20)
            if sha256 is not None and (got := sha256_of(tmp)) != sha256.lower():
                raise DownloadError(f"{url}: sha256 {got} does not match the configured {sha256}")
    except DownloadError:
        raise
    except OSError as exc:  # URLError, timeouts, no network
        raise DownloadError(f"cannot download {url} ({type(exc).__name__}: {exc})") from exc
    if sha256 is None:
        log.warning("downloaded %s without a sha256 to check (sha256 %s)", dest, sha256_of(dest))
    return dest


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack a zip or tar archive into ``dest`` (via a temporary folder renamed at the end)."""
    if dest.is_dir():
        return dest
    staging = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.part"
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)  # zipfile drops absolute paths and '..'
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                tf.extractall(staging, filter="data")
        else:
            raise DownloadError(f"{archive}: neither a zip nor a tar archive")
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest

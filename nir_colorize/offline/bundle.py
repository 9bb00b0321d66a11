"""The GPU bundle (``make gpu-bundle``): one folder with everything a CUDA machine that has its own torch but no
package index needs to run nir-colorize (README "A fresh CUDA machine").

``python -m nir_colorize.offline.bundle build --out DIR [--python-version 3.12] [--wheels DIR]`` writes::

    DIR/install.py     the installer (standard library only: nir_colorize.offline.bundle_install)
    DIR/wheels/        the pinned (requirements.lock) wheels of the dependencies CUDA images lack (BUNDLE_PINS)
    DIR/src/           the package, its configs, the shipped model, the tests and the embedded sample
    DIR/cache/         the converted LPIPS AlexNet features (NIR_COLORIZE_CACHE layout)
    DIR/bundle.json    what is in it: versions, the supported torch range, file sizes

The wheels come from ``--wheels DIR`` when given (no index needed: ``make install`` keeps this Python's in
``.cache/wheels``), else ``pip download`` for ``--python-version`` (needs the index). ``wheels --dest DIR``
downloads this Python's (what ``make install`` runs).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from nir_colorize import PROJECT_ROOT, __version__
from nir_colorize.offline import bundle_install

# The dependencies a CUDA image with torch, torchvision, Lightning, torchmetrics, SciPy, timm... typically lacks
# (seen on the lent H200 image: ../shared/gpu/REPORT.md, risk 1); pytest for the CUDA tests.
BUNDLE_PINS = ("hydra-core", "omegaconf", "antlr4-python3-runtime", "segmentation_models_pytorch", "kornia",
               "kornia_rs", "lpips", "pypng", "safetensors", "pytest", "pluggy", "iniconfig")
SDIST_ONLY = ("antlr4-python3-runtime",)  # published as a source package only: built into a wheel here
SOURCE = ("nir_colorize", "conf", "tests", "data/sample", "pyproject.toml", "README.md")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def normalise(name: str) -> str:
    """PEP 503 name: ``segmentation_models_pytorch`` and ``segmentation-models-pytorch`` are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_pins(lock: Path = PROJECT_ROOT / "requirements.lock", names: tuple[str, ...] = BUNDLE_PINS) -> list[str]:
    """``name==version`` from the lock for each of ``names``; an error names any the lock does not pin."""
    pins = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split(";")[0].split("==", 1)
            pins[normalise(name.strip())] = f"{name.strip()}=={version.strip()}"
    missing = [n for n in names if normalise(n) not in pins]
    if missing:
        raise SystemExit(f"{lock}: no pin for {', '.join(missing)}")
    return [pins[normalise(n)] for n in names]


def wheel_of(pin: str, folder: Path) -> Path | None:
    """The wheel in ``folder`` of ``name==version`` (any tag), or None."""
    name, version = pin.split("==")
    for path in sorted(folder.glob("*.whl")):
        dist, wversion = path.name.split("-")[:2]
        if normalise(dist) == normalise(name) and wversion == version:
            return path
    return None


def download_wheels(dest: Path, python_version: str | None = None) -> None:
    """``pip download`` the pinned wheels into ``dest`` (for this Python, or for ``python_version`` on
    manylinux x86_64); the source-only ones are built into wheels with ``pip wheel``."""
    dest.mkdir(parents=True, exist_ok=True)
    pins = locked_pins()
    binary = [p for p in pins if normalise(p.split("==")[0]) not in map(normalise, SDIST_ONLY)]
    sdist = [p for p in pins if p not in binary]
    target = []
    if python_version:
        target = ["--python-version", python_version, "--implementation", "cp"]
        for platform in PLATFORMS:
            target += ["--platform", platform]
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", *target, "-d", str(dest), *binary],
                   check=True)
    todo = [p for p in sdist if wheel_of(p, dest) is None]
    if todo:
        subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dest), *todo], check=True)


def copy_source(out: Path) -> list[str]:
    """The tracked files of ``SOURCE`` (``git ls-files`` where the checkout is a git repository, else the folders
    as they are, caches and build outputs left out) into ``out``; returns the relative paths copied."""
    try:
        listed = subprocess.run(["git", "-C", str(PROJECT_ROOT), "ls-files", "-z", *SOURCE], check=True,
                                capture_output=True).stdout.decode().split("\0")
        files = [f for f in listed if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for item in SOURCE:
            path = PROJECT_ROOT / item
            paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            files += [str(p.relative_to(PROJECT_ROOT)) for p in paths if "__pycache__" not in p.parts]
    for rel in files:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / rel, out / rel)
    return files


def build(out: Path, wheels: Path | None = None, python_version: str | None = None) -> Path:
    """Write the bundle into ``out`` (which must not exist or be empty); returns ``out``."""
    from nir_colorize.metrics import lpips_weights

    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out}: exists and is not empty; remove it or choose another --out")
    found = {}
    if wheels is not None:
        found = {pin: wheel_of(pin, wheels) for pin in locked_pins()}
        if missing := [pin for pin, path in found.items() if path is None]:
            raise SystemExit(f"{wheels}: no wheel of {', '.join(missing)}; run `python -m nir_colorize.offline.bundle "
                             f"wheels --dest {wheels}` (make install) or leave out --wheels (needs the index)")
    features = lpips_weights.converted_path()
    if not features.is_file():
        raise SystemExit(f"{features}: missing; make it once with `python -m nir_colorize.offline` (make install)")
    (out / "wheels").mkdir(parents=True)
    if wheels is None:
        download_wheels(out / "wheels", python_version)
    for path in found.values():
        shutil.copy2(path, out / "wheels" / path.name)
    copy_source(out / "src")
    (out / "cache" / "lpips").mkdir(parents=True)
    shutil.copy2(features, out / "cache" / "lpips" / features.name)
    shutil.copy2(Path(bundle_install.__file__), out / "install.py")
    manifest = {
        "nir_colorize": __version__,
        "torch": {"min": bundle_install.TORCH_MIN, "tested": bundle_install.TORCH_TESTED},
        "python": python_version or ".".join(map(str, sys.version_info[:2])),
        "wheels": sorted(p.name for p in (out / "wheels").glob("*.whl")),
        "bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
    }
    (out / "bundle.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.offline.bundle", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the bundle folder")
    b.add_argument("--out", type=Path, default=PROJECT_ROOT / "dist" / "gpu-bundle")
    b.add_argument("--wheels", type=Path, default=None, help="take the wheels from this folder (no index)")
    b.add_argument("--python-version", default=None, help="the GPU machine's Python, e.g. 3.12 (pip download)")
    w = sub.add_parser("wheels", help="download this Python's pinned wheels (make install)")
    w.add_argument("--dest", type=Path, default=PROJECT_ROOT / ".cache" / "wheels")
    args = parser.parse_args(argv)
    if args.command == "wheels":
        download_wheels(args.dest)
        print(f"{len(list(args.dest.glob('*.whl')))} wheels in {args.dest}")
        return
    out = build(args.out, args.wheels, args.python_version)
    manifest = json.loads((out / "bundle.json").read_text())
    print(f"GPU bundle in {out}: {len(manifest['wheels'])} wheels, {manifest['bytes'] / 2**20:.1f} MiB; on the GPU "
          f"machine: python3 install.py (README, A fresh CUDA machine)")


if __name__ == "__main__":
    main()

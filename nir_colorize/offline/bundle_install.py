"""Install nir-colorize from a GPU bundle (``make gpu-bundle``) on a machine with its own torch and no package index.

Run it with the Python that has the machine's torch (copied into the bundle as ``install.py``)::

    python3 install.py [--venv DIR] [--no-smoke]

1. Checks that Python's torch (the supported range: TORCH_MIN to TORCH_TESTED), torchvision and CUDA.
2. Makes a virtual environment (default: ``venv/`` in the bundle) that sees that Python's packages (torch stays the
   machine's: nothing here replaces it), even where that Python is itself a venv or conda environment.
3. Installs the bundle's wheels with ``pip --no-index`` and the package from ``src/`` (a path entry: no build step,
   so no setuptools from an index), checks that the entry points import, and names any missing dependency.
4. Writes ``activate.sh`` (the venv, ``NIR_COLORIZE_CACHE`` = the bundle's ``cache/``, offline flags), then colorizes
   one embedded sample through ``python -m nir_colorize.predict`` (``--no-smoke``: skip).

Standard library only: it runs before any dependency is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

TORCH_MIN = "2.11"      # the lent H200 image's torch (../shared/gpu/REPORT.md)
TORCH_TESTED = "2.14.1"  # requirements.lock: what `make test` runs on
ENTRY_POINTS = ("nir_colorize.predict", "nir_colorize.train", "nir_colorize.eval")
OPTIONAL = {"wandb": "logger=wandb", "tensorboard": "logger=tensorboard", "av": "video input", "onnxruntime":
            "backend=onnxruntime", "matplotlib": "report figures", "hydra_plugins.hydra_joblib_launcher":
            "hydra/launcher=joblib_local", "hydra_plugins.hydra_submitit_launcher": "hydra/launcher=slurm"}
SMOKE_IMAGES = "data/sample/Validation/*_nir.png"
HERE = Path(__file__).resolve().parent


class InstallError(SystemExit):
    """A failed step: the message says what and how to fix it (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"install.py: {message}")


def version_tuple(version: str) -> tuple[int, ...]:
    """``2.11.0+cu130`` -> (2, 11, 0)."""
    return tuple(int(n) for n in re.findall(r"\d+", version.split("+")[0])[:3])


def check_torch() -> str:
    """The machine's torch, torchvision and CUDA, as one line; an error if torch is missing or too old."""
    if sys.version_info < (3, 10):  # noqa: UP036 (runs on whatever Python the GPU machine has)
        raise InstallError(f"{sys.executable} is Python {sys.version.split()[0]}; nir-colorize needs 3.10 or newer")
    try:
        import torch
    except ImportError as exc:
        raise InstallError(f"{sys.executable} has no torch ({exc}): the bundle keeps the machine's own torch; run "
                           "install.py with the Python that has it") from None
    if version_tuple(torch.__version__) < version_tuple(TORCH_MIN):
        raise InstallError(f"torch {torch.__version__} is older than {TORCH_MIN}, the oldest supported")
    try:
        import torchvision
    except Exception as exc:  # missing, or built for another torch ("operator torchvision::nms does not exist")
        raise InstallError(f"torchvision does not import beside torch {torch.__version__} ({exc}); install the "
                           "torchvision built for that torch") from None
    facts = [f"torch {torch.__version__}", f"torchvision {torchvision.__version__}"]
    if version_tuple(torch.__version__) > version_tuple(TORCH_TESTED):
        facts.append(f"newer than the tested {TORCH_TESTED}")
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        bf16 = "bf16" if major >= 8 else "no bf16: fp32"
        facts.append(f"CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)} (sm_{major}{minor}, {bf16})")
    else:
        facts.append(f"no CUDA device (torch built for CUDA {torch.version.cuda}): runs on the CPU")
    return ", ".join(facts)


def machine_site_dirs() -> list[str]:
    """Where this Python finds its packages (site-packages of a system Python, a venv or a conda environment)."""
    dirs = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


def venv_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def make_venv(env: Path) -> Path:
    """A venv at ``env`` that sees this Python's packages; reused if it is one already. A dangling link at ``env``
    (a checkout copied without its target) is replaced; anything else that is not a venv is an error."""
    if env.is_symlink() and not env.exists():
        print(f"install.py: {env} is a link to {os.readlink(env)}, which does not exist: replacing it with a venv")
        env.unlink()
    if env.exists() and not (env / "pyvenv.cfg").is_file():
        raise InstallError(f"{env} exists and is not a virtual environment; remove it or pass --venv elsewhere")
    if not env.exists():
        try:
            venv.EnvBuilder(system_site_packages=True, with_pip=True, symlinks=os.name != "nt").create(env)
        except (subprocess.CalledProcessError, OSError) as exc:
            raise InstallError(f"could not make a venv at {env} ({exc}); on Debian/Ubuntu the python3-venv package "
                               "provides ensurepip") from None
    py = venv_python(env)
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # --system-site-packages sees the base interpreter's packages only; this path file adds those of the Python
    # that runs install.py (its torch), also when that Python is a venv or a conda environment
    (Path(purelib) / "nir_colorize_machine.pth").write_text("\n".join(machine_site_dirs()) + "\n")
    (Path(purelib) / "nir_colorize_src.pth").write_text(str(HERE / "src") + "\n")
    return py


def pip_install(py: Path) -> None:
    """The bundle's wheels into the venv, offline; the pinned versions win over any the machine has."""
    wheels = sorted((HERE / "wheels").glob("*.whl"))
    if not wheels:
        raise InstallError(f"{HERE / 'wheels'}: no wheels; rebuild the bundle with `make gpu-bundle`")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--ignore-installed",
                    "--disable-pip-version-check", "--no-warn-script-location", *map(str, wheels)], check=True)


def check_imports(py: Path) -> str:
    """Import the entry points in the venv: an error names the missing module; returns the optional features that
    are off (their package is missing)."""
    code = ("import importlib, importlib.util, json\n"
            f"for name in {ENTRY_POINTS!r}:\n"
            "    importlib.import_module(name)\n"
            f"print(json.dumps([k for k in {sorted(OPTIONAL)!r} if importlib.util.find_spec(k.split('.')[0]) is None"
            " or (('.' in k) and importlib.util.find_spec(k) is None)]))")
    done = subprocess.run([str(py), "-c", code], capture_output=True, text=True)
    if done.returncode:
        missing = re.findall(r"No module named '([^']+)'", done.stderr)
        hint = (f"the machine lacks the package of module {missing[-1]!r}: `pip download --no-deps` its wheel (the "
                "version requirements.lock pins) on a machine with the index into wheels/ and run install.py again"
                if missing else done.stderr.strip().splitlines()[-1])
        raise InstallError(f"nir_colorize does not import in {py}: {hint}")
    off = json.loads(done.stdout.strip().splitlines()[-1])
    return ", ".join(f"{OPTIONAL[k]} (no {k.split('.')[-1]})" for k in off)


def write_activate(env: Path) -> Path:
    path = HERE / "activate.sh"
    path.write_text(f". {shlex.quote(str(env / 'bin' / 'activate'))}\n"
                    f"export NIR_COLORIZE_CACHE={shlex.quote(str(HERE / 'cache'))} HF_HUB_OFFLINE=1 WANDB_MODE=offline\n")
    return path


def smoke(py: Path, out: Path) -> Path:
    """Colorize the embedded sample's first Validation image through ``python -m nir_colorize.predict``."""
    images = sorted((HERE / "src").glob(SMOKE_IMAGES))
    if not images:
        raise InstallError(f"{HERE / 'src' / SMOKE_IMAGES}: no sample image to colorize")
    env = dict(os.environ, NIR_COLORIZE_CACHE=str(HERE / "cache"), HF_HUB_OFFLINE="1", WANDB_MODE="offline")
    command = [str(py), "-m", "nir_colorize.predict", f"input={images[0]}", f"output={out}",
               f"hydra.run.dir={out / 'run'}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    written = next(iter(sorted(out.glob("*.png"))), None)
    if done.returncode or written is None:
        raise InstallError(f"the smoke run failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Install nir-colorize from this GPU bundle (no package index).")
    parser.add_argument("--venv", type=Path, default=HERE / "venv", help="the virtual environment to make or reuse")
    parser.add_argument("--no-smoke", action="store_true", help="skip colorizing a sample image at the end")
    args = parser.parse_args(argv)
    print(f"install.py: {sys.executable}: {check_torch()}")
    py = make_venv(args.venv.absolute())
    pip_install(py)
    off = check_imports(py)
    activate = write_activate(args.venv.absolute())
    print(f"install.py: installed in {args.venv}" + (f"; off for want of a package: {off}" if off else ""))
    if not args.no_smoke:
        written = smoke(py, HERE / "smoke")
        print(f"install.py: colorized {written}")
    print(f"install.py: now `. {activate}`, then e.g. `cd {HERE / 'src'} && python -m pytest -q -k cuda`")


if __name__ == "__main__":
    main()

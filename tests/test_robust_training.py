"""Training without a logger, and training that survives a kill (atomic checkpoints, resume)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nir_colorize import train
from nir_colorize.utils import checkpoints
from nir_colorize.utils.checkpoints import TEMP_PATTERN, save_atomic
from tests.conftest import QUICK, ROOT, task_nices, train_cfg


def test_training_without_a_logger(tmp_path: Path, one_thread, caplog: pytest.LogCaptureFixture) -> None:
    """``logger=none``: the default callbacks' LearningRateMonitor would refuse a Trainer without a logger."""
    with caplog.at_level(logging.DEBUG, logger="nir_colorize.utils.instantiate"):
        train.run(train_cfg(tmp_path, "logger=none", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                            "trainer.limit_val_batches=1", "test=false"))
    assert any("no logger: leaving out LearningRateMonitor" in r.getMessage() for r in caplog.records)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == 2
    assert not (tmp_path / "run" / "csv").exists()


# ---------------------------------------------------------------- checkpoints that survive a kill

def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_atomic_save_keeps_the_old_checkpoint_when_a_write_fails(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "ckpts" / "last.ckpt"
    save_atomic({"epoch": 1, "w": torch.arange(4)}, path)
    assert oct(path.stat().st_mode & 0o777) == "0o644"

    def half_written(obj, f) -> None:  # a save that dies halfway through
        f.write(b"PK\x03\x04 partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", half_written)
    with pytest.raises(OSError, match="No space left"):
        save_atomic({"epoch": 2}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1  # the previous checkpoint, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no temp file left
    monkeypatch.undo()
    stale = path.parent / f".best.ckpt.tmp-{dead_pid()}-abc123"  # left by a killed writer
    live = path.parent / f".best.ckpt.tmp-{os.getpid()}-def456"  # being written by this process
    stale.write_bytes(b"partial")
    live.write_bytes(b"partial")
    save_atomic({"epoch": 3}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 3
    assert not stale.exists() and live.exists()


EPOCHS = 4


def temp_files(folder: Path) -> list[Path]:
    """Files (not the folders other libraries make there, e.g. W&B's) in a temp folder."""
    return [p for p in folder.iterdir() if p.is_file()]


def train_command(run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nir_colorize.train", *QUICK, f"trainer.max_epochs={EPOCHS}",
            "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "callbacks.last_checkpoint.every_n_epochs=1",
            "test=false", f"hydra.run.dir={run}", f"paths.log_dir={run.parent}", *extra]


@pytest.mark.slow
def test_training_killed_while_writing_a_checkpoint_resumes(tmp_path: Path) -> None:
    """SIGKILL ``python -m nir_colorize.train`` in the middle of writing a checkpoint (once last.ckpt exists,
    the moment the next checkpoint's temp file appears, in the run folder or the system temp folder): every
    ``*.ckpt`` left loads, nothing half-written is left outside the run folder, and ``ckpt_path=last.ckpt``
    resumes to ``max_epochs``, cleaning up the interrupted write's temp file."""
    run, systmp = tmp_path / "run", tmp_path / "systmp"
    ckpts = run / "checkpoints"
    systmp.mkdir()
    env = os.environ | {"TMPDIR": str(systmp), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    log_file = tmp_path / "first.log"
    with open(log_file, "w") as log:
        proc = subprocess.Popen(train_command(run), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    try:
        writing: list[Path] = []
        while not writing:
            assert proc.poll() is None, f"training ended (rc {proc.returncode}) before the kill:\n{log_file.read_text()}"
            assert time.monotonic() < deadline, "no second checkpoint write within 180 s"
            if (ckpts / "last.ckpt").exists():
                writing = [p for p in ckpts.iterdir() if p.suffix != ".ckpt"] + temp_files(systmp)
            time.sleep(0.002)
        nices = task_nices(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        assert nices and min(nices) >= max(10, os.getpriority(os.PRIO_PROCESS, 0)), nices  # conf/train.yaml nice
        assert all(TEMP_PATTERN.match(p.name) and p.parent == ckpts for p in writing), writing  # our IO wrote
    finally:
        proc.kill()
        proc.wait()
    killed_at = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)
    for ckpt in ckpts.glob("*.ckpt"):
        torch.load(ckpt, map_location="cpu", weights_only=False)  # whole, not truncated
    assert temp_files(systmp) == [], "half-written checkpoint data left in the temp folder"
    assert all(TEMP_PATTERN.match(p.name) for p in ckpts.iterdir() if p.suffix != ".ckpt")
    assert killed_at["epoch"] < EPOCHS - 1

    resumed = subprocess.run(train_command(run, f"ckpt_path={ckpts / 'last.ckpt'}"), cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restored all states from the checkpoint" in resumed.stderr
    final = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)
    assert final["epoch"] == EPOCHS - 1 and final["global_step"] == 2 * EPOCHS
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert temp_files(systmp) == []

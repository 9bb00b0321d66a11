"""User errors of the entry points: one line on stderr naming the file or key and the fix, exit status 2;
the traceback only with HYDRA_FULL_ERROR=1 (nir_colorize.utils.errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from nir_colorize.utils.errors import EXIT_USER_ERROR, one_line
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # each test starts python -m nir_colorize.<entry point>


def clis(tmp_path: Path, *calls: tuple[str, tuple[str, ...], dict[str, str]]) -> list[subprocess.CompletedProcess]:
    """Run ``(entry, args, env)`` calls of ``python -m nir_colorize.<entry>`` side by side (start-up is most of
    their time), each in its own run folder (``run``, ``run1``, ...); their results in order."""
    started = []
    for i, (entry, args, env) in enumerate(calls):
        environ = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "NIR_COLORIZE_SHORT_ERRORS")}
        environ |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **env}
        run_dir, log_dir = (tmp_path / f"run{i}", tmp_path / f"logs{i}") if i else (tmp_path / "run", tmp_path)
        command = [sys.executable, "-m", f"nir_colorize.{entry}", *args, f"hydra.run.dir={run_dir}",
                   f"paths.log_dir={log_dir}"]
        started.append((command, subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE, text=True)))
    done = []
    for command, proc in started:
        stdout, stderr = proc.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(command, proc.returncode, stdout, stderr))
    return done


def cli(entry: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return clis(tmp_path, (entry, args, env))[0]


def error_line(proc: subprocess.CompletedProcess, whole: bool = True) -> str:
    """The one error line; ``whole``: stderr holds nothing else (train/eval first print Lightning's
    'Seed set to 42' and device lines there)."""
    assert proc.returncode == EXIT_USER_ERROR, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "Error executing job" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    if whole:
        assert len(lines) == 1, proc.stderr
    assert lines[-1].startswith("error: ") and sum(line.startswith("error: ") for line in lines) == 1, proc.stderr
    return lines[-1]


@pytest.fixture
def nir_png(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "a.png"
    path.parent.mkdir()
    Image.fromarray((np.arange(64 * 64) % 251).reshape(64, 64).astype(np.uint8)).save(path)
    return path


def test_missing_input_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "x.png"
    args = (f"ckpt_path={tmp_path / 'm.ckpt'}", f"input={missing}", f"output={tmp_path / 'out'}")
    short, full = clis(tmp_path, ("predict", args, {}), ("predict", args, {"HYDRA_FULL_ERROR": "1"}))
    assert f"input {missing}: no images found" in error_line(short)
    # the same with HYDRA_FULL_ERROR=1: the traceback, Python's exit status
    assert full.returncode == 1 and "Traceback (most recent call last)" in full.stderr
    assert f"FileNotFoundError: input {missing}: no images found" in full.stderr


def test_run_dir_under_a_dangling_link(tmp_path: Path, nir_png: Path) -> None:
    """A checkout copied without the target of its ``logs`` link: Hydra cannot make the run folder."""
    (tmp_path / "run").symlink_to(tmp_path / "gone")  # clis runs in tmp_path/run
    line = error_line(cli("predict", tmp_path, f"input={nir_png}", f"output={tmp_path / 'out'}"))
    assert line == (f"error: {tmp_path / 'run'} is a link to {tmp_path / 'gone'}, which does not exist: make that "
                    "folder, remove the link, or pass hydra.run.dir=... (and paths.log_dir=...) elsewhere")
    assert not (tmp_path / "out").exists()


def test_not_a_checkpoint(tmp_path: Path, nir_png: Path) -> None:
    """A PNG given as the checkpoint: torch's 'Weights only load failed ... Unsupported operand' pickle error."""
    fake = tmp_path / "model.ckpt"
    fake.write_bytes(nir_png.read_bytes())
    line = error_line(cli("predict", tmp_path, f"ckpt_path={fake}", f"input={nir_png}", f"output={tmp_path / 'out'}",
                          "trainer.accelerator=cpu"))
    assert line.startswith(f"error: {fake}: not a checkpoint (") and "ckpt_path=" in line
    assert not (tmp_path / "out").exists()


def test_checkpoint_of_another_network(tmp_path: Path, nir_png: Path) -> None:
    bare = tmp_path / "resnet.pth"
    torch.save(nn.Linear(4, 2).state_dict(), bare)  # a bare state_dict, e.g. downloaded weights
    other = tmp_path / "other.ckpt"  # a Lightning checkpoint whose weights belong to another network
    torch.save({"pytorch-lightning_version": "2.6.6", "state_dict": {"net.head.weight": torch.zeros(3, 8)},
                "hyper_parameters": {"model": {"name": "linknet", "encoder_weights": None}}}, other)
    predicted, evaluated = clis(
        tmp_path, ("predict", (f"ckpt_path={bare}", f"input={nir_png}", f"output={tmp_path / 'out'}",
                               "trainer.accelerator=cpu"), {}),
        ("eval", (f"ckpt_path={other}", "trainer.accelerator=cpu"), {}))
    line = error_line(predicted)
    assert line.startswith(f"error: {bare}: not a Lightning checkpoint") and "ckpt_path=" in line
    line = error_line(evaluated, whole=False)
    assert line.startswith(f"error: {other}: its weights do not fit the network")
    assert "1 unexpected keys" in line and "missing keys" in line


def test_unknown_override_and_option(tmp_path: Path) -> None:
    key, option = clis(tmp_path, ("train", ("trainer.max_epoch=3",), {}), ("train", ("model=foo",), {}))
    line = error_line(key)
    assert "'trainer.max_epoch'" in line and "+trainer.max_epoch=3" in line
    line = error_line(option)
    assert "Could not find 'model/foo'; available options: acd, colornet, linknet, scd" in line


def test_missing_data_root(tmp_path: Path) -> None:
    root = tmp_path / "no_such_root"
    proc = cli("train", tmp_path, f"data.source.root={root}", "trainer.accelerator=cpu")
    line = error_line(proc, whole=False)
    assert f"VCIP 2020 data root {root} does not exist" in line
    logged = (tmp_path / "run" / "train.log").read_text()  # the full message, in the run's log file
    assert "DatasetError: splits: 1 problem(s):" in logged and f"root {root} does not exist" in logged


def test_one_line_keeps_the_head_and_counts_the_rest() -> None:
    message = "folder /d: 9 problem(s):\n  " + "\n  ".join(f"/d/{i}.png: unreadable" for i in range(9))
    line = one_line(message, max_lines=3)
    assert "\n" not in line
    assert line.startswith("folder /d: 9 problem(s): /d/0.png: unreadable; /d/1.png: unreadable; /d/2.png")
    assert line.endswith("... and 6 more line(s) (in the run's log file, or with HYDRA_FULL_ERROR=1)")


def test_bad_init_from(tmp_path: Path) -> None:
    missing = tmp_path / "none.ckpt"
    cpu = "trainer.accelerator=cpu"
    absent, foreign, unset = clis(tmp_path, ("train", (f"init_from={missing}", cpu), {}),
                                  ("train", ("init_from=reference", cpu), {}),  # the shipped VGG16 UNet into LinkNet
                                  ("train", ("+experiment=reference_finetune", cpu), {}))
    line = error_line(absent, whole=False)
    assert f"init_from={missing}: no such file or shipped model (shipped: reference)" in line
    line = error_line(foreign, whole=False)
    assert line.startswith("error: init_from=reference: its weights do not fit model=linknet (")
    line = error_line(unset, whole=False)
    assert line == "error: missing value for stage1_ckpt: pass stage1_ckpt=... on the command line"

"""Load-adaptive torch threads (nir_colorize.utils.threads): one thread while other processes keep the CPUs busy."""

from __future__ import annotations

import os

import pytest
import torch

from nir_colorize.bench.threads import busy
from nir_colorize.fusion import wls_smooth
from nir_colorize.utils import threads

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc (Linux)")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    threads._last.clear()
    yield
    torch.set_num_threads(before)
    threads._last.clear()


def test_other_load_sees_a_busy_process():
    with busy(threads=1, settle=1.0):
        assert threads.other_load(0.3) >= 0.6  # one core kept busy by another process


def test_block_runs_on_one_thread_beside_a_busy_process_and_restores(two_threads):
    with busy(threads=1, settle=1.0):
        with threads.load_adaptive_threads() as n:
            assert n == 1 and torch.get_num_threads() == 1
            with threads.load_adaptive_threads() as inner:  # re-entrant: keeps the outer choice
                assert inner == 1
            image = torch.rand(64, 96)
            assert (wls_smooth(image) - wls_smooth(image, solver="direct")).abs().max() <= 1 / 510
        assert torch.get_num_threads() == 2


def test_quiet_machine_keeps_the_threads_and_the_switch_turns_it_off(two_threads, monkeypatch):
    monkeypatch.setattr(threads, "other_load", lambda window=threads.WINDOW: 0.1)
    with threads.load_adaptive_threads() as n:
        assert n == 2 and torch.get_num_threads() == 2
    monkeypatch.setattr(threads, "other_load", lambda window=threads.WINDOW: 1.9)
    threads._last.clear()
    monkeypatch.setenv(threads.ENV, "0")
    with threads.load_adaptive_threads() as n:
        assert n == 2
    monkeypatch.delenv(threads.ENV)
    with threads.load_adaptive_threads() as n:
        assert n == 1
    assert torch.get_num_threads() == 2


def test_measurement_is_reused_for_recheck_seconds(two_threads, monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "other_load", lambda window=threads.WINDOW: calls.append(1) or 0.0)
    for _ in range(5):
        with threads.load_adaptive_threads():
            pass
    assert len(calls) == 1

"""Load-adaptive torch threads (nir_colorize.utils.threads): one thread while other processes keep the CPUs busy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from nir_colorize.bench.threads import busy
from nir_colorize.fusion import wls_smooth
from nir_colorize.utils import cpu_load, threads

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc (Linux)")


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)  # spinning threads: the case the adaptive count is for
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    threads._last.clear()
    yield
    torch.set_num_threads(before)
    threads._last.clear()


def test_other_load_sees_a_busy_process():
    with busy(threads=1, settle=1.0):
        assert threads.other_load(0.3) >= 0.6  # one core kept busy by another process (on the CPUs we may use)


def test_block_runs_on_one_thread_beside_a_busy_process_and_restores(two_threads):
    with busy(settle=1.0):  # every CPU this process may use kept busy: none left free
        with threads.load_adaptive_threads() as n:
            assert n == 1 and torch.get_num_threads() == 1
            with threads.load_adaptive_threads() as inner:  # re-entrant: keeps the outer choice
                assert inner == 1
            image = torch.rand(64, 96)
            assert (wls_smooth(image) - wls_smooth(image, solver="direct")).abs().max() <= 1 / 510
        assert torch.get_num_threads() == 2


def test_quiet_machine_keeps_the_threads_and_the_switch_turns_it_off(two_threads, monkeypatch):
    monkeypatch.setattr(threads, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "other_load", lambda window=cpu_load.WINDOW: 0.1)
    with threads.load_adaptive_threads() as n:
        assert n == 2 and torch.get_num_threads() == 2
    monkeypatch.setattr(threads, "other_load", lambda window=cpu_load.WINDOW: 1.9)
    threads._last.clear()
    monkeypatch.setenv(threads.ENV, "0")
    with threads.load_adaptive_threads() as n:
        assert n == 2
    monkeypatch.delenv(threads.ENV)
    with threads.load_adaptive_threads() as n:
        assert n == 1
    assert torch.get_num_threads() == 2


def test_threads_follow_the_free_cores_of_a_bigger_machine(monkeypatch):
    threads._last.clear()
    monkeypatch.setattr(threads, "cpu_count", lambda: 16)
    before = torch.get_num_threads()
    torch.set_num_threads(8)
    try:
        for load, expected in ((3.0, 8), (10.2, 6), (15.8, 1)):  # 13, 5.8 and 0.2 cores left free
            monkeypatch.setattr(threads, "other_load", lambda window=cpu_load.WINDOW, load=load: load)
            threads._last.clear()
            with threads.load_adaptive_threads() as n:
                assert n == expected == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
        threads._last.clear()


def test_cpu_accounting_covers_the_cpus_this_process_may_use():
    busy, own = cpu_load._busy_jiffies()
    assert threads.cpu_count() == len(os.sched_getaffinity(0)) and busy >= own >= 0


def test_measurement_is_reused_for_recheck_seconds(two_threads, monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "other_load", lambda window=cpu_load.WINDOW: calls.append(1) or 0.0)
    for _ in range(5):
        with threads.load_adaptive_threads():
            pass
    assert len(calls) == 1


@pytest.mark.parametrize(("given", "load", "first", "expected"), [
    ({}, 1.9, "", "PASSIVE"),                           # busy at start: threads sleep at barriers
    ({}, 0.1, "", None),                                # quiet: libgomp's default (spin, then sleep)
    ({"OMP_WAIT_POLICY": "ACTIVE"}, 1.9, "", "ACTIVE"),  # the user's choice wins
    ({"GOMP_SPINCOUNT": "300000"}, 1.9, "", None),
    ({}, 1.9, "import torch\n", None),                  # torch already loaded libgomp: too late, nothing set
])
def test_wait_policy_is_chosen_by_the_load_at_start(given, load, first, expected):
    """``import nir_colorize.utils.openmp`` (first in predict, eval, bench) sets OMP_WAIT_POLICY=PASSIVE when other
    processes keep >= BUSY_CORES busy, before torch loads libgomp; the load is faked in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")} | given
    code = (first + "import nir_colorize.utils.cpu_load as c\n"
            f"c.other_load = lambda window: {load}\n"
            "import os, nir_colorize.utils.openmp as o\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), o.CHOSEN, o.threads_sleep())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(expected), str(expected), str(expected == "PASSIVE")]


def test_sleeping_threads_keep_their_count_beside_a_busy_process(two_threads, monkeypatch):
    monkeypatch.setattr(threads, "other_load", lambda window=cpu_load.WINDOW: 1.9)
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    with threads.load_adaptive_threads() as n:
        assert n == 2 and torch.get_num_threads() == 2
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with threads.load_adaptive_threads() as n:
        assert n == 1

"""CPU priority of a training (nir_colorize.utils.priority): every thread reniced, later threads inherit it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc (Linux)")

CODE = """
import json, os, threading, torch
torch.set_num_threads(2)
torch.ones(256, 256) @ torch.ones(256, 256)  # torch's OpenMP pool: threads that exist before the call
from nir_colorize.utils.priority import lower_priority
def nices():
    return [int(open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()[16]) for t in os.listdir("/proc/self/task")]
start = min(nices())
first, again = lower_priority(start + 7), lower_priority(start + 3)
later = []
t = threading.Thread(target=lambda: later.append(os.getpriority(os.PRIO_PROCESS, 0)))
t.start(); t.join()
print(json.dumps({"start": start, "first": first, "again": again, "tasks": nices(), "later": later[0]}))
"""


def test_lower_priority_renices_every_thread_and_never_raises_it() -> None:
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=ROOT,
                          env=os.environ | {"PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout.splitlines()[-1])
    want = r["start"] + 7
    assert r["first"] == want and r["again"] == want  # a smaller value leaves it as it is
    assert len(r["tasks"]) >= 2 and set(r["tasks"]) == {want}  # the OpenMP threads too, not only the caller
    assert r["later"] == want  # a thread started afterwards inherits it

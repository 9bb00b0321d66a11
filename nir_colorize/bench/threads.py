"""The OpenMP thread policy, measured quiet and beside a busy process (``make bench``: "beside a busy process").

``python -m nir_colorize.bench.threads [--image urban] [--repeat 5] [--json PATH]``

Two torch threads on two cores that another process also uses spin at every OpenMP barrier and wait for
each other (libgomp spins ~300k iterations before it sleeps): the exact WLS, hundreds of small parallel
ops, then runs many times slower. Policies: fixed OpenMP settings, and the default of nir_colorize
(``nir_colorize.utils.openmp``: threads that sleep at barriers when started beside a busy process;
``nir_colorize.utils.threads``: else no more threads than other processes leave cores free). Each policy runs
in a fresh process (libgomp reads its environment when torch loads it): on a quiet machine, beside ``busy()``, a
process that keeps every core busy with matmuls the way a training does, at normal priority, and beside the same
process at the priority ``train`` takes (``conf/train.yaml`` ``nice``). Timed: the exact WLS of one benchmark image and LinkNet inference of
it, both at 1024x680 (``--size``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from nir_colorize import CONFIG_DIR, PROJECT_ROOT
from nir_colorize.utils.hardware import cpu_count

# name -> environment of the child. GOMP_SPINCOUNT=300000 is libgomp's own default (and keeps nir_colorize.utils.openmp
# from choosing PASSIVE); NIR_COLORIZE_ADAPTIVE_THREADS=0 keeps the fixed policies fixed (nir_colorize.utils.threads
# would otherwise drop to one thread when busy).
FIXED = {"NIR_COLORIZE_ADAPTIVE_THREADS": "0"}
POLICIES = {
    "libgomp default (spin, then sleep)": {"GOMP_SPINCOUNT": "300000", **FIXED},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000", **FIXED},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE", **FIXED},
    "1 thread": {"OMP_NUM_THREADS": "1", **FIXED},
    "load-adaptive threads, libgomp default (before)": {"GOMP_SPINCOUNT": "300000"},
    "wait policy and threads by load (nir_colorize default)": {},
}
BUSY_CODE = """
import os
os.nice({nice})  # before torch starts its threads: they inherit it
import torch
torch.set_num_threads({threads})
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a * 1e-3)
"""
CHILD_CODE = """
import nir_colorize.utils.openmp  # first, as predict and eval do: PASSIVE beside a busy process
import json, statistics, sys, time, torch
from nir_colorize.bench.fusion import load_nir
from nir_colorize.fusion import wls_smooth
from nir_colorize.models import build_model
from nir_colorize.utils.threads import load_adaptive_threads
name, repeat, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
image = load_nir(name, (w, h))[0]
def times(fn):
    fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return statistics.median(out), min(out), max(out)
net = build_model("linknet").eval()
x = image[None, None]
def infer_once():
    with load_adaptive_threads():  # as predict does (off in the fixed policies)
        return net(x)
with torch.inference_mode():
    infer = times(infer_once)
print("RESULT " + json.dumps({"threads": torch.get_num_threads(), "wls": times(lambda: wls_smooth(image)),
                              "infer": infer}))
"""


def train_nice() -> int:
    """The CPU priority (nice) that ``train`` takes by default (``conf/train.yaml``)."""
    from omegaconf import OmegaConf

    return int(OmegaConf.load(Path(CONFIG_DIR) / "train.yaml").get("nice") or 0)


# the busy neighbour: a process with libgomp's default policy; "busy": another program at normal priority,
# "training": at the priority `train` takes (conf/train.yaml `nice`). Values: busy() keyword arguments.
SPIN = {"GOMP_SPINCOUNT": "300000"}
STATES = {"quiet": None, "busy": {"env": SPIN}, "training": {"env": SPIN, "nice": train_nice()}}
THREAD_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", *FIXED)


def child_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without its thread settings (``THREAD_VARS``), plus ``env``."""
    return {k: v for k, v in os.environ.items() if k not in THREAD_VARS} | env


@contextlib.contextmanager
def busy(threads: int | None = None, settle: float = 2.0, env: dict[str, str] | None = None,
         nice: int = 0) -> Iterator[subprocess.Popen]:
    """A process that keeps ``threads`` (default: every CPU) busy with matmuls until the block ends, at CPU
    priority ``nice`` (its threads inherit it)."""
    threads = threads or cpu_count()
    proc = subprocess.Popen([sys.executable, "-c", BUSY_CODE.format(threads=threads, nice=nice)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env(env or {}))
    try:
        time.sleep(settle)  # imports done, threads spinning
        if proc.poll() is not None:
            raise RuntimeError(f"the busy process exited at once (rc {proc.returncode})")
        yield proc
    finally:
        proc.kill()
        proc.wait()


def measure_policy(env: dict[str, str], image: str, repeat: int, size: tuple[int, int] = (1024, 680),
                   timeout: float = 600) -> dict:
    """Run the child (WLS and inference timings) in a fresh process with ``env`` added to this one's environment."""
    proc = subprocess.run([sys.executable, "-c", CHILD_CODE, image, str(repeat), *map(str, size)], capture_output=True,
                          text=True, env=child_env(env), cwd=PROJECT_ROOT, timeout=timeout)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        return {"error": f"child failed (rc {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"}
    raw = json.loads(line[len("RESULT "):])
    return {"threads": raw["threads"], **{k: dict(zip(("median_s", "min_s", "max_s"), raw[k], strict=True))
                                         for k in ("wls", "infer")}}


def run(image: str = "urban", repeat: int = 5, size: tuple[int, int] = (1024, 680), log=print) -> dict:
    """Every policy quiet, then beside each kind of ``busy()`` neighbour (``STATES``); the loaded / quiet ratios."""
    rows = {name: {} for name in POLICIES}
    for state, neighbour in STATES.items():
        with busy(**neighbour) if neighbour is not None else contextlib.nullcontext():
            for name, env in POLICIES.items():
                rows[name][state] = r = measure_policy(env, image, repeat, size)
                log(f"  {state} {name}: " + (r.get("error") or
                    f"WLS {r['wls']['median_s']:.3f} s, LinkNet {r['infer']['median_s']:.3f} s"))
    for row in rows.values():
        if all("error" not in r for r in row.values()):
            row["busy_over_quiet"] = {state: {k: row[state][k]["median_s"] / row["quiet"][k]["median_s"]
                                              for k in ("wls", "infer")} for state in STATES if state != "quiet"}
    return {"image": image, "size": list(size), "repeat": repeat, "cpus": cpu_count(),
            "policies": rows, "chosen": chosen_policy(), "train_nice": STATES["training"]["nice"]}


def chosen_policy() -> str:
    """What nir_colorize does by default (``nir_colorize.utils.openmp`` and ``nir_colorize.utils.threads``)."""
    from nir_colorize.utils import cpu_load, openmp, threads

    return (f"OMP_WAIT_POLICY=PASSIVE where other processes use >= {openmp.BUSY_CORES:g} cores when predict or eval "
            f"starts (measured over {openmp.START_WINDOW * 1000:.0f} ms), else libgomp's default; and load-adaptive "
            "threads: torch's threads, but no more than other processes leave cores free (at least one; measured "
            f"over {cpu_load.WINDOW * 1000:.0f} ms, at most every {threads.RECHECK:g} s)")


def markdown(result: dict) -> list[str]:
    w, h = result["size"]
    busy_states = [s for s in STATES if s != "quiet"]
    lines = [f"WLS (exact, `pcg`) of `{result['image']}` and LinkNet inference, both {w}x{h}, median of "
             f"{result['repeat']} after a warm-up, each policy in a fresh process. Busy: beside a process that keeps all "
             f"{result['cpus']} CPUs busy with matmuls under libgomp's default policy, at normal priority; training: "
             f"the same process at the priority `train` takes (nice {result['train_nice']}). "
             f"Chosen default: {result['chosen']}.", "",
             "| policy | threads | " + " | ".join(f"WLS {s} s" for s in STATES) + " | "
             + " | ".join(f"LinkNet {s} s" for s in STATES) + " | WLS " + " / ".join(busy_states) + " over quiet |",
             "|---|---|" + "---|" * (2 * len(STATES) + 1)]
    for name, row in result["policies"].items():
        errors = [r["error"] for r in row.values() if "error" in r]
        if errors:
            lines.append(f"| {name} | {errors[0]} |" + " |" * (2 * len(STATES) + 1))
            continue
        ratios = " / ".join(f"{row['busy_over_quiet'][s]['wls']:.1f}" for s in busy_states)
        lines.append(f"| {name} | {row['quiet']['threads']} | "
                     + " | ".join(f"{row[s]['wls']['median_s']:.3f}" for s in STATES) + " | "
                     + " | ".join(f"{row[s]['infer']['median_s']:.3f}" for s in STATES) + f" | {ratios} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="urban", help="benchmark-set image (nir_colorize.bench.fusion.BENCH_SET)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 680), metavar=("W", "H"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args.image, args.repeat, tuple(args.size))
    print("\n".join(markdown(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

"""The OpenMP thread policy, measured quiet and beside a busy process (``make bench``: "beside a busy process").

``python -m nir_colorize.bench.threads [--image urban] [--repeat 5] [--json PATH]``

Two torch threads on two cores that another process also uses spin at every OpenMP barrier and wait for
each other (libgomp spins ~300k iterations before it sleeps): the exact WLS, hundreds of small parallel
ops, then runs many times slower. Each policy runs in a fresh process (libgomp reads its environment when
torch loads it), once on a quiet machine and once beside ``busy()``, a process that keeps every core busy
with matmuls the way a training does. Timed: the exact WLS of one benchmark image and LinkNet inference of
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

from nir_colorize import PROJECT_ROOT

# name -> environment of the child; GOMP_SPINCOUNT=300000 is libgomp's own default (it also keeps
# nir_colorize from choosing a policy for the child, see nir_colorize/__init__.py)
POLICIES = {
    "libgomp default (spin, then sleep)": {"GOMP_SPINCOUNT": "300000"},
    "OMP_WAIT_POLICY=ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1 thread": {"OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": "300000"},
}
BUSY_CODE = """
import torch
torch.set_num_threads({threads})
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a * 1e-3)
"""
CHILD_CODE = """
import json, statistics, sys, time, torch
from nir_colorize.bench.fusion import load_nir
from nir_colorize.fusion import wls_smooth
from nir_colorize.models import build_model
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
with torch.inference_mode():
    infer = times(lambda: net(x))
print("RESULT " + json.dumps({"threads": torch.get_num_threads(), "wls": times(lambda: wls_smooth(image)),
                              "infer": infer}))
"""


@contextlib.contextmanager
def busy(threads: int | None = None, settle: float = 2.0) -> Iterator[subprocess.Popen]:
    """A process that keeps ``threads`` (default: every CPU) busy with matmuls until the block ends."""
    threads = threads or len(os.sched_getaffinity(0))
    proc = subprocess.Popen([sys.executable, "-c", BUSY_CODE.format(threads=threads)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
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
    child_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                                                   "OMP_NUM_THREADS")} | env
    proc = subprocess.run([sys.executable, "-c", CHILD_CODE, image, str(repeat), *map(str, size)], capture_output=True, text=True,
                          env=child_env, cwd=PROJECT_ROOT, timeout=timeout)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        return {"error": f"child failed (rc {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"}
    raw = json.loads(line[len("RESULT "):])
    return {"threads": raw["threads"], **{k: dict(zip(("median_s", "min_s", "max_s"), raw[k], strict=True))
                                         for k in ("wls", "infer")}}


def run(image: str = "urban", repeat: int = 5, size: tuple[int, int] = (1024, 680), log=print) -> dict:
    """Every policy quiet, then every policy beside ``busy()``; the loaded / quiet ratios."""
    rows = {name: {} for name in POLICIES}
    for state in ("quiet", "busy"):
        with busy() if state == "busy" else contextlib.nullcontext():
            for name, env in POLICIES.items():
                rows[name][state] = r = measure_policy(env, image, repeat, size)
                log(f"  {state:5s} {name}: " + (r.get("error") or
                    f"WLS {r['wls']['median_s']:.3f} s, LinkNet 1024x680 {r['infer']['median_s']:.3f} s"))
    for row in rows.values():
        if "error" not in row["quiet"] and "error" not in row["busy"]:
            row["busy_over_quiet"] = {k: row["busy"][k]["median_s"] / row["quiet"][k]["median_s"]
                                      for k in ("wls", "infer")}
    return {"image": image, "size": list(size), "repeat": repeat, "cpus": len(os.sched_getaffinity(0)),
            "policies": rows, "chosen": chosen_policy()}


def chosen_policy() -> str:
    """The policy that nir_colorize sets when the environment sets none (see nir_colorize/__init__.py)."""
    from nir_colorize import DEFAULT_OMP_WAIT_POLICY

    return f"OMP_WAIT_POLICY={DEFAULT_OMP_WAIT_POLICY}" if DEFAULT_OMP_WAIT_POLICY else "libgomp default (spin, then sleep)"


def markdown(result: dict) -> list[str]:
    w, h = result["size"]
    lines = [f"WLS (exact, `pcg`) of `{result['image']}` and LinkNet inference, both {w}x{h}, median of "
             f"{result['repeat']} after a warm-up, each policy in a fresh process; busy = beside a process that keeps "
             f"all {result['cpus']} CPUs busy with matmuls (like a training). Chosen default: {result['chosen']}.", "",
             "| policy | threads | WLS quiet s | WLS busy s | busy / quiet | LinkNet quiet s | LinkNet busy s | busy / quiet |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in result["policies"].items():
        q, b = row["quiet"], row["busy"]
        if "error" in q or "error" in b:
            lines.append(f"| {name} | {q.get('error') or b.get('error')} | | | | | | |")
            continue
        ratio = row["busy_over_quiet"]
        lines.append(f"| {name} | {q['threads']} | {q['wls']['median_s']:.3f} | {b['wls']['median_s']:.3f} | "
                     f"{ratio['wls']:.1f} | {q['infer']['median_s']:.3f} | {b['infer']['median_s']:.3f} | "
                     f"{ratio['infer']:.1f} |")
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

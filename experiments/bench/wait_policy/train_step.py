"""One training step's time in a fresh process, as ``train`` runs it (nir_colorize imported first).

``python experiments/bench/wait_policy/train_step.py MODEL fp32|bf16``: 2 warm-up steps, then the median of 8 steps of
batch 16 at 128x128 (forward, L1 loss, backward, Adam). ``unet_vgg16_frozen``: the shipped reference's stage 1.
"""

import json
import os
import statistics
import sys
import time

import torch

from nir_colorize.models import build_model

name, bf16 = sys.argv[1], sys.argv[2] == "bf16"
torch.manual_seed(0)
net = (build_model("unet_vgg16", freeze_encoder=True) if name == "unet_vgg16_frozen" else build_model(name)).train()
opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], 1e-3)
x, y = torch.rand(16, 1, 128, 128), torch.rand(16, 3, 128, 128) * 2 - 1


def step() -> None:
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        out = net(x)
    loss = (out.float() - y).abs().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


for _ in range(2):
    step()
times = []
for _ in range(8):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
print("RESULT", json.dumps({"policy": os.environ.get("OMP_WAIT_POLICY"), "median": statistics.median(times),
                            "min": min(times)}))

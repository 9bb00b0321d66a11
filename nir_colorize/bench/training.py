"""Training-step benchmark: every variant in fp32 and the fast precision, NCHW and channels_last, with the
FLOPs of a step, the machine's matmul peak measured in the same run, and what bf16 costs in accuracy.

Cases (``nir_colorize.bench.cases`` runs each in a fresh process):

- ``train``: seconds per training step (forward, L2-sum loss, backward, Adam step) at one precision
  (``fp32``, or ``bf16``: the forward under ``torch.autocast(device, torch.bfloat16)`` as Lightning's
  ``bf16-mixed`` does, fp32 weights and optimizer) and one memory layout (``nchw``, or ``channels_last``:
  ``net.to(memory_format=torch.channels_last)`` and the input ``.contiguous(memory_format=...)``).
- ``train_profile``: once per variant, the FLOPs of one fp32 step (``torch.utils.flop_counter``: forward
  and backward) and, from the same initial weights on the same real batch, one step per precision / layout
  compared with fp32 NCHW (relative difference of the loss, of the gradients, of the Adam update).
- ``matmul``: FLOP/s of an n x n matmul at one dtype, the peak that the steps are compared with.
"""

from __future__ import annotations

import contextlib
import itertools
import math

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from nir_colorize.bench.common import build_net, real_nir, real_rgb, timed
from nir_colorize.utils.hardware import BF16, fast_precision

PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}  # benchmark name -> Lightning precision
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
REFERENCE = ("fp32", "nchw")  # "before"


def resolve_precisions(names: list[str], device: str) -> list[str]:
    """``names`` (``fp32``, ``bf16``, or ``fast`` = what ``fast_precision(device)`` says) as benchmark
    precisions, without repeats, in order."""
    fast = "bf16" if fast_precision(device) == BF16 else "fp32"
    out: list[str] = []
    for name in names:
        precision = fast if name == "fast" else name
        if precision not in PRECISIONS:
            raise ValueError(f"precision {name!r}: choose from fp32, bf16, fast")
        if precision not in out:
            out.append(precision)
    return out


def combos(precisions: list[str], layouts: list[str]) -> list[tuple[str, str]]:
    """Every (precision, layout), fp32 NCHW (the reference) first when present."""
    for layout in layouts:
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r}: choose from {', '.join(LAYOUTS)}")
    pairs = list(itertools.product(precisions, layouts))
    return sorted(pairs, key=lambda pair: pair != REFERENCE)


def real_batch(batch: int, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` side-by-side ``size`` x ``size`` crops of the real sample: NIR (B, 1, S, S) in [0, 1]
    and the RGB target (B, 3, S, S) mapped to [-1, 1]."""
    nir = torch.from_numpy(real_nir(size * batch, size)).reshape(size, batch, size).permute(1, 0, 2)[:, None]
    rgb = torch.from_numpy(real_rgb(size * batch, size)).reshape(size, batch, size, 3).permute(1, 3, 0, 2)
    return nir.contiguous().to(device), (rgb * 2 - 1).contiguous().to(device)


def setup(model: str, device: str, layout: str, state: dict | None = None):
    """The network (seed 0, or ``state``) in training mode in ``layout``, and its Adam (design section 1 hyper-parameters)."""
    torch.manual_seed(0)
    net = build_net(model)
    if state is not None:
        net.load_state_dict(state)
    net = net.to(device).train()
    if layout == "channels_last":
        net = net.to(memory_format=torch.channels_last)
    return net, torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8)


def step(net, opt, nir: torch.Tensor, target: torch.Tensor, precision: str, flops: dict | None = None) -> torch.Tensor:
    """One training step; returns the loss. ``flops``: filled with the ``forward`` and ``backward`` FLOPs
    of this step (``FlopCounterMode``: convolutions and matmuls, 2 per multiply-add)."""
    counting = flops is not None
    fwd, bwd = (FlopCounterMode(display=False) if counting else contextlib.nullcontext() for _ in range(2))
    opt.zero_grad(set_to_none=True)
    with fwd, torch.autocast(nir.device.type, dtype=torch.bfloat16,
                             enabled=precision == "bf16"):
        out = net.forward_tanh(nir)
    loss = F.mse_loss(out.float(), target, reduction="sum")
    with bwd:
        loss.backward()
    opt.step()
    if counting:
        flops |= {"forward": fwd.get_total_flops(), "backward": bwd.get_total_flops()}
    return loss.detach()


def train_case(model: str, size: int, batch: int, device: str, warmup: int, repeat: int, precision: str = "fp32",
               layout: str = "nchw") -> dict:
    """Seconds per training step of ``model`` at ``precision`` and ``layout`` on the real sample batch."""
    net, opt = setup(model, device, layout)
    nir, target = real_batch(batch, size, device)
    nir = nir.contiguous(memory_format=LAYOUTS[layout])
    return timed(lambda: step(net, opt, nir, target, precision), device, warmup, repeat, per_call=batch,
                 unit="images_per_s", parameters=sum(p.numel() for p in net.parameters()), precision=precision,
                 layout=layout)


def compare(reference: dict, other: dict, names: list[str]) -> dict:
    """How far one step is from the reference step. Each has ``loss`` (float), ``grad`` and ``update`` (one
    tensor per parameter, in the order of ``names``; update = parameters after minus before the step).
    Returns ``|loss - ref| / |ref|``; ``||g - g_ref|| / ||g_ref||`` over all parameters (L2), the gradients'
    cosine, and the worst convolution / linear weight (a tensor of 2 or more dimensions; biases and norms
    are left out, as the gradient of a bias before a BatchNorm is ~0 and its ratio noise) by the same ratio;
    ``||u - u_ref|| / ||u_ref||`` of the Adam update. Sums in float64, one tensor at a time."""
    def sums(xs: list[torch.Tensor], refs: list[torch.Tensor]) -> list[tuple[float, float, float, float]]:
        out = []
        for x, r in zip(xs, refs, strict=True):
            x, r = x.double(), r.double()
            out.append((float(((x - r) ** 2).sum()), float((r * r).sum()), float((x * r).sum()), float((x * x).sum())))
        return out

    def rel(parts) -> float:
        den = sum(p[1] for p in parts)
        return math.sqrt(sum(p[0] for p in parts) / den) if den else math.nan

    grad = sums(other["grad"], reference["grad"])
    per_tensor = [math.sqrt(d / r) if r else math.nan for d, r, _, _ in grad]
    weights = [i for i, g in enumerate(other["grad"]) if g.ndim >= 2 and not math.isnan(per_tensor[i])]
    worst = max(weights, key=per_tensor.__getitem__) if weights else None
    norms = math.sqrt(sum(p[1] for p in grad) * sum(p[3] for p in grad))
    return {"loss": other["loss"], "loss_rel_diff": abs(other["loss"] - reference["loss"]) / abs(reference["loss"]),
            "grad_rel_diff": rel(grad), "grad_cosine": sum(p[2] for p in grad) / norms if norms else math.nan,
            "worst_grad_param": None if worst is None else names[worst],
            "worst_grad_rel_diff": None if worst is None else per_tensor[worst],
            "update_rel_diff": rel(sums(other["update"], reference["update"]))}


def _conv_layout_probe(net: torch.nn.Module, seen: list[bool]) -> list:
    """Forward pre-hooks recording, per convolution call, whether its input is channels_last (inputs whose
    layout is ambiguous, e.g. one channel, are skipped); returns the handles."""
    def hook(_module, args) -> None:
        x = args[0]
        cl = x.is_contiguous(memory_format=torch.channels_last)
        if x.ndim == 4 and cl != x.is_contiguous():
            seen.append(cl)

    return [m.register_forward_pre_hook(hook) for m in net.modules()
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]


def train_profile_case(model: str, size: int, batch: int, device: str, combos: list) -> dict:
    """FLOPs of one fp32 NCHW step of ``model``, and the accuracy of one step per (precision, layout) of
    ``combos`` against it: same initial weights (seed 0), same real batch. For channels_last, also the
    fraction of convolution inputs that were channels_last (1.0: the layout holds through the network)."""
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in build_net(model).state_dict().items()}
    nir, target = real_batch(batch, size, device)
    flops: dict = {}
    reference: dict = {}
    accuracy = []
    for precision, layout in [REFERENCE, *(tuple(c) for c in combos if tuple(c) != REFERENCE)]:
        net, opt = setup(model, device, layout, state)
        names = [n for n, _ in net.named_parameters()]
        before = [p.detach().clone() for p in net.parameters()]
        seen: list[bool] = []
        hooks = _conv_layout_probe(net, seen)
        torch.manual_seed(0)
        loss = step(net, opt, nir.contiguous(memory_format=LAYOUTS[layout]), target, precision,
                    flops if (precision, layout) == REFERENCE else None)
        for h in hooks:
            h.remove()
        result = {"loss": float(loss), "grad": [p.grad for p in net.parameters()],
                  "update": [p.detach() - b for p, b in zip(net.parameters(), before, strict=True)]}
        if (precision, layout) == REFERENCE:
            reference = result
            continue
        accuracy.append({"precision": precision, "layout": layout, **compare(reference, result, names),
                         "channels_last_conv_inputs": sum(seen) / len(seen) if seen else None})
    return {"flops_per_step": flops["forward"] + flops["backward"], "forward_flops": flops["forward"],
            "backward_flops": flops["backward"], "reference_loss": reference["loss"], "accuracy": accuracy}


def matmul_case(dtype: str, n: int, device: str, warmup: int, repeat: int) -> dict:
    """FLOP/s (2 n^3 per call) of an ``n`` x ``n`` by ``n`` x ``n`` matmul in ``dtype`` (``fp32`` or ``bf16``);
    fp32 as torch runs it by default (``torch.get_float32_matmul_precision()``, recorded)."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device, DTYPES[dtype]) for _ in range(2))
    return timed(lambda: a @ b, device, warmup, repeat, per_call=2 * n**3, unit="flop_per_s", dtype=dtype, n=n,
                 float32_matmul_precision=torch.get_float32_matmul_precision())


def derive(rows: list[dict], profiles: dict, peaks: dict, baseline: str) -> list[dict]:
    """Add to each timed row (in place; returns ``rows``): ``flops_per_step`` (its variant's profile),
    ``achieved_flop_per_s`` = FLOPs / median s, ``peak_fraction`` = that / the matmul peak of its precision,
    ``speedup_vs_fp32`` = images/s / that of its variant in fp32 NCHW, ``throughput_ratio_to_baseline`` =
    images/s / that of ``baseline`` at the same precision and layout. None where a part is missing."""
    def ips(model: str, precision: str, layout: str) -> float | None:
        return next((r.get("images_per_s") for r in rows
                     if (r["model"], r["precision"], r["layout"]) == (model, precision, layout)), None)

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    for r in rows:
        flops = (profiles.get(r["model"]) or {}).get("flops_per_step")
        seconds = (r.get("seconds") or {}).get("median")
        r["flops_per_step"] = flops
        r["achieved_flop_per_s"] = ratio(flops, seconds)
        r["peak_fraction"] = ratio(r["achieved_flop_per_s"], (peaks.get(r["precision"]) or {}).get("flop_per_s"))
        r["speedup_vs_fp32"] = ratio(r.get("images_per_s"), ips(r["model"], *REFERENCE))
        r["throughput_ratio_to_baseline"] = ratio(r.get("images_per_s"), ips(baseline, r["precision"], r["layout"]))
    return rows

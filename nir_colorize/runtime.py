"""Inference runtimes behind the torch network's contract: bf16 autocast, and ONNX for ``predict backend=onnxruntime``.

``Bf16ChannelsLast(net)``: ``net`` under bf16 autocast on its input's device (CPU or CUDA) with channels_last
weights and inputs (``predict precision=bf16``; ``auto`` picks it where the device computes bf16 natively: CPUs
with AMX-BF16 or AVX512-BF16, CUDA GPUs from Ampere on; ``resolve_precision``).

``OnnxColorizer(path)`` runs an export of ``nir_colorize.export`` with onnxruntime on the CPU
(``CPUExecutionProvider``, ``torch.get_num_threads()`` intra-op threads) and behaves like the
``Colorizer`` it came from: ``pad_multiple`` and ``output_stride`` (from the file's metadata), ``parameters()``
yields one (empty) CPU tensor so that ``inference.colorize`` finds its device, ``net(nir) -> rgb`` on tensors
(B, 1, H, W) -> (B, 3, H, W) in [0, 1], images too small to reflect-pad replicate-padded as the network does.
So tiled inference and BFWLS apply unchanged.

Which network to wrap, and the cached ONNX export, are ``nir_colorize.loading``'s.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from nir_colorize import onnx_export
from nir_colorize.errors import UserError
from nir_colorize.models.base import pad_to_multiple

PRECISIONS = ("fp32", "bf16", "auto")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``predict precision=``: ``auto`` is bf16 where ``device`` computes bf16 natively
    (``fast_precision``: a CPU with AMX-BF16 / AVX512-BF16, a CUDA GPU of compute capability 8.0 or newer), else
    fp32. ``bf16`` is refused on a GPU without native bf16 (a CPU emulates it, slowly)."""
    from nir_colorize.utils.hardware import BF16, fast_precision

    if precision not in PRECISIONS:
        raise UserError(f"precision={precision}: choose one of {', '.join(PRECISIONS)}")
    native = fast_precision(device) == BF16
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and device.type != "cpu" and not native:
        raise UserError(f"precision=bf16: device {device} has no native bf16 (CUDA compute capability 8.0 or newer, "
                        "Ampere on); use precision=fp32 or auto")
    return precision


class Bf16ChannelsLast(nn.Module):
    """``net`` under bf16 autocast (on the input's device) with channels_last weights and input; fp32 output;
    the network's contract (``pad_multiple``, ``output_stride``, ``parameters()``) for ``inference.colorize``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.to(memory_format=torch.channels_last)
        self.pad_multiple = net.pad_multiple
        self.output_stride = getattr(net, "output_stride", net.pad_multiple)

    def forward(self, nir: torch.Tensor) -> torch.Tensor:
        with torch.autocast(nir.device.type, dtype=torch.bfloat16):
            return self.net(nir.contiguous(memory_format=torch.channels_last)).float()


EXPORT_HINT = "export one with `python -m nir_colorize.export ckpt_path=... output=FILE.onnx`, or leave onnx_path=null"


class OnnxColorizer(nn.Module):
    """An ONNX export of a ``Colorizer`` run by onnxruntime, with the network's contract (see the module doc)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"onnx_path={self.path}: no such ONNX file; {EXPORT_HINT}")
        self.threads = int(threads or torch.get_num_threads())
        try:
            self.session = onnx_export.session(self.path, self.threads)
        except Exception as exc:  # noqa: BLE001 - a file that is not ONNX: one clear line
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UserError(f"onnx_path={self.path}: not an ONNX model onnxruntime can load ({reason}); "
                            f"{EXPORT_HINT}") from exc
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if "pad_multiple" not in self.meta:
            raise UserError(f"onnx_path={self.path}: not an export of nir_colorize.export (no pad_multiple in its "
                            f"metadata); {EXPORT_HINT}")
        self.pad_multiple = int(self.meta["pad_multiple"])
        self.output_stride = int(self.meta.get("output_stride", self.pad_multiple))
        self.model_name = self.meta.get("model", "unknown")
        # the training scale, where the export records it (nir_colorize.scale)
        self.train_long_side = int(self.meta["train_long_side"]) if self.meta.get("train_long_side") else None
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)  # parameters(): the device, the CPU

    def forward(self, nir: torch.Tensor) -> torch.Tensor:
        if nir.ndim != 4 or nir.shape[1] != 1:
            raise ValueError(f"expected NIR of shape (B, 1, H, W), got {tuple(nir.shape)}")
        h, w = nir.shape[-2:]
        m = self.pad_multiple
        x = nir.detach().to("cpu", torch.float32)
        if (-h) % m >= h or (-w) % m >= w:  # too small to reflect: replicate, as Colorizer does (then no pad)
            x, _ = pad_to_multiple(x, m)
        out = self.session.run([onnx_export.OUTPUT], {onnx_export.INPUT: x.contiguous().numpy()})[0]
        return torch.from_numpy(out)[..., :h, :w].to(nir.device)

    def extra_repr(self) -> str:
        return f"{self.path}, model={self.model_name}, pad_multiple={self.pad_multiple}, threads={self.threads}"

"""A network to ONNX, checked against torch (the library of ``python -m nir_colorize.export``).

The exported graph is a ``nir_colorize.models.Colorizer`` in fp32:
input ``nir`` float32 (batch, 1, height, width) in [0, 1], output ``rgb`` float32 (batch, 3, height, width) in
[0, 1], batch, height and width dynamic. It pads the input internally (reflect, bottom/right) to a multiple of
the network's ``pad_multiple`` and crops the output back, as the torch network does, so any size above the
padding runs; an image whose height or width is at most its own padding (below about ``pad_multiple`` / 2
pixels), which torch pads by replication instead, must be replicate-padded by the caller
(``nir_colorize.runtime.OnnxColorizer`` does). ``pad_multiple``, ``output_stride``, the model's name and where the
weights came from are in the file's ``metadata_props``.

Exporter: ``torch.onnx.export(dynamo=True)`` (``torch.export`` + onnxscript). The TorchScript exporter
(``dynamo=False``) is not used: with this torch it exports LinkNet and ColorNet graphs whose output differs
from the network's even at the traced size. The dynamo export keeps dynamic shapes through the ResNet encoder,
LinkNet's transposed convolutions and skip additions, and GLFFNet's bilinear resize to the input's size;
every export is checked with onnxruntime against torch at an odd size before it is written (atomically).
See docs/predict.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nir_colorize import __version__
from nir_colorize.errors import UserError
from nir_colorize.utils.atomic import atomic_path

log = logging.getLogger(__name__)

QUIET = ("onnx_ir", "onnxscript", "torch.onnx", "torch.export", "torch._export")  # INFO lines per optimizer pass
DEFAULT_OPSET = 20
MIN_OPSET = 18  # the dynamo exporter's lowest
INPUT, OUTPUT = "nir", "rgb"
DIMS = ("batch", "height", "width")
EXPORT_VERSION = "1"  # bump when the exported graph changes: cached exports (nir_colorize.loading) are redone
TOLERANCE = 1 / 255  # the largest difference to torch an export may have on its check input


class ExportNet(nn.Module):
    """``Colorizer.forward`` written without data-dependent Python branches, for a graph valid at every size.

    ``Colorizer`` pads only when needed and chooses reflect or replicate by the image size; traced, that
    choice would be fixed at the example's size. Here the pad is always there (of size 0 at a multiple):
    reflect, which is what the network does for every image whose sides exceed their padding.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.multiple = int(net.pad_multiple)

    def forward(self, nir: torch.Tensor) -> torch.Tensor:
        h, w = nir.shape[-2], nir.shape[-1]
        m = self.multiple
        x = F.pad(nir * 2.0 - 1.0, (0, (m - w % m) % m, 0, (m - h % m) % m), mode="reflect")
        return (self.net.core(x)[..., :h, :w] + 1.0) / 2.0


def weights_fingerprint(net: nn.Module, model_name: str | None = None) -> str:
    """sha256 (16 hex digits) of the network's state dict (names, dtypes, shapes, values) and ``model_name``:
    equal for equal weights, wherever they were loaded from."""
    digest = hashlib.sha256(f"{model_name}\n".encode())
    for key, value in net.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def check_opset(opset: int) -> int:
    """``opset`` when the exporter writes it (``MIN_OPSET`` up to the ``onnx`` library's latest); whether
    onnxruntime runs it shows when the export is checked."""
    import onnx

    top = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= int(opset) <= top:
        raise UserError(f"opset={opset}: the exporter writes opsets {MIN_OPSET} to {top} (default {DEFAULT_OPSET})")
    return int(opset)


def session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime ``InferenceSession`` of ``path`` on the CPU (``CPUExecutionProvider``) with ``threads``
    intra-op threads (default ``torch.get_num_threads()``) and one inter-op thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_size(multiple: int) -> tuple[int, int]:
    """An odd (height, width) for the check: neither a multiple of ``multiple`` nor of 2."""
    return 2 * multiple + 5, 3 * multiple + 3


@contextlib.contextmanager
def quiet_exporter():
    """The exporter without its progress lines (stdout), warnings and per-pass INFO logs."""
    levels = {name: logging.getLogger(name).level for name in QUIET}
    try:
        for name in QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def to_onnx(net: nn.Module, opset: int = DEFAULT_OPSET):
    """The ``onnx.ModelProto`` of ``net`` (fp32, eval, contiguous) with dynamic batch, height and width."""
    net = net.float().eval().to(memory_format=torch.contiguous_format)
    example = torch.rand(2, 1, *check_size(int(net.pad_multiple)))
    dim = torch.export.Dim.DYNAMIC
    with quiet_exporter():
        program = torch.onnx.export(ExportNet(net), (example,), None, dynamo=True, opset_version=opset,
                                    input_names=[INPUT], output_names=[OUTPUT], external_data=False,
                                    dynamic_shapes={INPUT: dict(zip((0, 2, 3), (dim, dim, dim), strict=True))},
                                    verbose=False)
        proto = program.model_proto
    # name the dynamic dimensions (the exporter writes s38, or an expression for the cropped output)
    for value, channels in ((proto.graph.input[0], 1), (proto.graph.output[0], 3)):
        dims = value.type.tensor_type.shape.dim
        for index, name in zip((0, 2, 3), DIMS, strict=True):
            dims[index].Clear()
            dims[index].dim_param = name
        dims[1].Clear()
        dims[1].dim_value = channels
    return proto


def set_metadata(proto, meta: dict[str, Any]) -> None:
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def check_export(path: Path, net: nn.Module, threads: int | None = None) -> float:
    """Max abs difference between onnxruntime on ``path`` and ``net`` on a random odd-sized input."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, *check_size(int(net.pad_multiple)), generator=generator)
    with torch.inference_mode():
        expected = net(x).numpy()
    got = session(path, threads).run([OUTPUT], {INPUT: x.numpy()})[0]
    if got.shape != expected.shape:
        raise RuntimeError(f"ONNX export {path}: output shape {got.shape}, torch {expected.shape}")
    return float(np.abs(got - expected).max())


def export_onnx(net: nn.Module, path: str | os.PathLike, opset: int = DEFAULT_OPSET, model_name: str | None = None,
                meta: dict[str, Any] | None = None, check: bool = True) -> dict[str, Any]:
    """Write ``net`` (a ``Colorizer``) to ``path`` as ONNX, atomically; returns path, bytes, opset, seconds and
    the check's max abs difference to torch (``check=True``: raises above ``TOLERANCE``)."""
    import onnx

    path = Path(path)
    opset = check_opset(opset)
    start = time.perf_counter()
    net = net.float().eval().to(memory_format=torch.contiguous_format)
    proto = to_onnx(net, opset)
    info = {"model": model_name or "unknown", "pad_multiple": int(net.pad_multiple),
            "output_stride": int(getattr(net, "output_stride", net.pad_multiple)),
            "input": f"{INPUT}: float32 (batch, 1, height, width) in [0, 1]",
            "output": f"{OUTPUT}: float32 (batch, 3, height, width) in [0, 1]",
            "padding": "internal: reflect to a multiple of pad_multiple; sides at most their padding: "
                       "replicate-pad them to the multiple first",
            "weights_sha256": weights_fingerprint(net, model_name), "export_version": EXPORT_VERSION,
            "nir_colorize": __version__, "torch": torch.__version__} | (meta or {})
    set_metadata(proto, info)
    proto.doc_string = f"nir-colorize {info['model']}: NIR -> RGB colorization"
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
        try:
            diff = check_export(tmp, net) if check else None
        except Exception as exc:  # noqa: BLE001 - an opset onnxruntime does not run: a user error
            if "opset" not in str(exc).lower():
                raise
            import onnxruntime as ort

            raise UserError(f"opset={opset}: onnxruntime {ort.__version__} cannot run it "
                            f"({str(exc).strip().splitlines()[0][:200]}); use opset={DEFAULT_OPSET}") from exc
        if diff is not None and diff > TOLERANCE:
            raise RuntimeError(f"ONNX export of {info['model']}: onnxruntime differs from torch by {diff:.3g} "
                               f"(> 1/255) on a {check_size(int(net.pad_multiple))} input; not written")
    return {"path": path, "bytes": path.stat().st_size, "opset": opset, "seconds": time.perf_counter() - start,
            "max_abs_diff": diff, "meta": info}

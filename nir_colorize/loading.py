"""Getting a trained network, in one place: from a training checkpoint, a shipped model id or an ONNX export.

- ``load_module(ckpt_path, model_id)``: the ``ColorizationModule`` on the CPU in eval mode: ``ckpt_path`` (a
  ``.ckpt`` of ``nir_colorize.train``), else the shipped ``model_id`` (``nir_colorize/weights``, see
  ``nir_colorize.shipped``); ``model_id=nir_copy`` is the trivial baseline (NIR copied into R, G, B).
- ``load_net(cfg, device)``: the network ``predict`` runs, behind one contract (``pad_multiple``,
  ``output_stride``, ``net(nir) -> rgb``): torch in fp32, torch under bf16 autocast (``precision=``), or the
  ONNX export run by onnxruntime (``backend=onnxruntime``), so that tiling and fusion run unchanged.
- ``export_source``: the fp32 network to export and where it came from; ``cached_onnx``: its export in the
  cache (``$NIR_COLORIZE_CACHE/onnx``), made on first use.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from nir_colorize import onnx_export, shipped
from nir_colorize.errors import UserError
from nir_colorize.module import ColorizationModule
from nir_colorize.offline.cache import cache_root
from nir_colorize.runtime import Bf16ChannelsLast, OnnxColorizer, resolve_precision
from nir_colorize.utils.errors import CKPT_HINT, checkpoint_errors

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime")
NIR_COPY = "nir_copy"


def load_checkpoint(ckpt_path: str | Path, **overrides: Any) -> ColorizationModule:
    """A training checkpoint's module on the CPU, with a one-line error for a missing or foreign file."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist ({CKPT_HINT})")
    with checkpoint_errors(path):  # a file that is not (our) checkpoint: CheckpointError, one line
        return ColorizationModule.load_from_checkpoint(path, map_location="cpu", **overrides).eval()


def load_shipped(model_id: str = shipped.DEFAULT_ID, **overrides: Any) -> ColorizationModule:
    """The shipped ``model_id`` as a module in fp32 on the CPU, loaded strictly."""
    meta = shipped.read_metadata(model_id)
    model = dict(meta["model"])
    if "encoder_weights" in model:  # the shipped state dict holds every weight: no pretrained file is needed
        model["encoder_weights"] = None
    recorded = (meta.get("module") or {}).get("train_long_side")  # the training scale, where the file records it
    module = ColorizationModule(model=model, **({"train_long_side": recorded} if recorded else {}) | overrides)
    module.net.load_state_dict(shipped.read_weights(shipped.weights_path(model_id)), strict=True)
    return module.eval()


def load_module(ckpt_path: str | Path | None = None, model_id: str | None = None,
                **overrides: Any) -> ColorizationModule:
    """``ckpt_path`` when given, else the shipped ``model_id`` (default ``reference``), or the NIR copy."""
    if ckpt_path:
        return load_checkpoint(ckpt_path, **overrides)
    if model_id == NIR_COPY:
        return ColorizationModule(model={"name": NIR_COPY}, **overrides).eval()
    return load_shipped(model_id or shipped.DEFAULT_ID, **overrides)


def train_long_side(module: ColorizationModule) -> int | None:
    """The training scale a module records (design section 10), or None (trained before it was recorded)."""
    value = module.hparams.get("train_long_side")
    return int(value) if value else None


def describe(ckpt_path: str | Path | None = None, model_id: str | None = None) -> str:
    """Where ``load_module(ckpt_path, model_id)`` takes the network from, in words."""
    return f"checkpoint {ckpt_path}" if ckpt_path else f"shipped model_id={model_id or shipped.DEFAULT_ID}"


def export_source(ckpt_path: str | Path | None = None,
                  model_id: str | None = None) -> tuple[torch.nn.Module, str, dict[str, Any]]:
    """The network to export (fp32, eval, not compiled, NCHW), its model name and the export's metadata: where it
    came from (``describe``'s words) and its training scale where it records one."""
    module = load_module(ckpt_path, model_id, compile=False, channels_last=False)
    meta = {"source": describe(ckpt_path, model_id)}
    if side := train_long_side(module):
        meta["train_long_side"] = side
    return module.net.float().eval(), str(module.hparams.model["name"]), meta


def cached_onnx(ckpt_path: str | Path | None, model_id: str | None, opset: int = onnx_export.DEFAULT_OPSET) -> Path:
    """The ONNX export of the network in ``cache_root()/onnx``, named by a fingerprint of its weights, the opset,
    torch's version and the exporter's version; exported now if it is not there."""
    net, name, meta = export_source(ckpt_path, model_id)
    key = (f"{name}-{onnx_export.weights_fingerprint(net, name)}-opset{opset}-torch{torch.__version__}"
           f"-v{onnx_export.EXPORT_VERSION}")
    path = cache_root() / "onnx" / f"{key.replace('+', '_')}.onnx"
    if path.is_file():
        log.info("onnxruntime: cached export %s", path)
        return path
    log.info("onnxruntime: exporting %s (%s) to %s", name, meta["source"], path)
    onnx_export.export_onnx(net, path, opset, model_name=name, meta=meta)
    return path


def resolve_device(accelerator: str) -> torch.device:
    """``trainer.accelerator`` to a device: cpu, or the GPU (``gpu``/``cuda``, or ``auto`` when one exists)."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.accelerator={accelerator}: no CUDA device here (use trainer.accelerator=cpu)")
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    if accelerator in ("cpu", "auto"):
        return torch.device("cpu")
    raise UserError(f"trainer.accelerator={accelerator}: predict runs on cpu, gpu or auto")


def load_net(cfg: DictConfig, device: torch.device) -> torch.nn.Module:
    """The network for ``cfg.backend``: the torch ``Colorizer`` on ``device`` (``cfg.precision``: fp32, or bf16
    autocast with channels_last), or (``onnxruntime``, CPU only) an ``OnnxColorizer`` of ``cfg.onnx_path``, else
    of ``cached_onnx``."""
    backend = str(cfg.get("backend") or "torch")
    precision = str(cfg.get("precision") or "fp32")
    if backend == "torch":
        module = load_module(cfg.get("ckpt_path"), cfg.get("model_id"))
        net = module.net.eval().to(device)
        if resolve_precision(precision, device) == "bf16":
            log.info("precision=%s: bf16 autocast, channels_last (docs/predict.md: speed and PSNR cost)", precision)
            net = Bf16ChannelsLast(net)
        net.train_long_side = train_long_side(module)  # read by pipeline's scale=auto
        return net
    if precision == "bf16":
        raise UserError(f"precision=bf16 is a torch path; backend={backend} runs fp32 (use precision=auto or fp32)")
    if backend != "onnxruntime":
        raise UserError(f"backend={backend}: choose one of {', '.join(BACKENDS)}")
    if device.type != "cpu":
        raise UserError(f"backend=onnxruntime runs on the CPU (trainer.accelerator={cfg.trainer.accelerator}); "
                        "use trainer.accelerator=cpu, or backend=torch on the GPU")
    if cfg.get("onnx_path"):
        return OnnxColorizer(cfg.onnx_path)
    return OnnxColorizer(cached_onnx(cfg.get("ckpt_path"), cfg.get("model_id"),
                                     int(cfg.get("opset") or onnx_export.DEFAULT_OPSET)))

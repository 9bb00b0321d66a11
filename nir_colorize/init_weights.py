"""Start a training run from trained weights (``train init_from=...``): fine-tuning, or a second training stage.

``init_from`` names a training checkpoint (``.ckpt``: its ``state_dict``), a shipped model's file
(``.safetensors``) or a shipped model's id (``reference``). The network's weights are loaded strictly, so the
source must be the same network as ``model=`` (whether its encoder is frozen does not matter); the optimiser, the
schedule and the epoch count start afresh (unlike ``ckpt_path=``, which resumes a run).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from nir_colorize.errors import CheckpointError
from nir_colorize.module import ColorizationModule
from nir_colorize.utils.errors import checkpoint_errors

log = logging.getLogger(__name__)

HINT = "init_from= takes a .ckpt written by nir_colorize.train, a shipped .safetensors file or a shipped model id"


def read_state(source: str | Path) -> dict[str, torch.Tensor]:
    """The network's state dict (keys of ``module.net``) held by ``source``, in fp32."""
    from nir_colorize import shipped

    path = Path(source)
    if not path.exists() and str(source) in shipped.available():
        path = shipped.weights_path(str(source))
    if not path.is_file():
        raise FileNotFoundError(f"init_from={source}: no such file or shipped model "
                                f"(shipped: {', '.join(shipped.available()) or 'none'}); {HINT}")
    if path.suffix == ".safetensors":
        try:
            return shipped.read_weights(path)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for a foreign file
            raise CheckpointError(f"{path}: not a safetensors file ({str(exc).splitlines()[0]}); {HINT}") from exc
    with checkpoint_errors(path, HINT):  # a file that is not (our) checkpoint: one line naming it
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v.float() for k, v in shipped.net_state(state).items()}


def init_weights(module: ColorizationModule, source: str | Path,
                 state: dict[str, torch.Tensor] | None = None) -> None:
    """Load ``source``'s network weights (``state``, if already read) into ``module.net``, strictly; the
    parameters' ``requires_grad`` flags (a frozen encoder) are kept."""
    state = read_state(source) if state is None else state
    try:
        module.net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing, unexpected = module.net.state_dict().keys() - state.keys(), state.keys() - module.net.state_dict()
        detail = f"{len(missing)} missing, {len(unexpected)} unexpected keys" if missing or unexpected else "shapes"
        raise CheckpointError(f"init_from={source}: its weights do not fit model={module.hparams.model['name']} "
                              f"({detail}); give the network it was trained as") from exc
    log.info("network initialised from %s (%d tensors)", source, len(state))

"""Trained models shipped inside the package (``nir_colorize/weights/<model_id>.safetensors``), no download.

A shipped model is the network's state dict in fp16 safetensors (safe to load: no pickle), with the network's
builder arguments, the recipe and the training facts in the file's metadata, and a model card beside it
(``<model_id>.md``). ``predict`` and ``eval`` use one when no ``ckpt_path`` is given (``model_id=``; ``nir_colorize.loading``).

``python -m nir_colorize.shipped export CKPT --id reference [--card CARD.md]`` writes one from a training
checkpoint (weights and hyper-parameters: ``best.ckpt``); ``python -m nir_colorize.shipped list`` lists them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from nir_colorize.errors import ShippedModelError
from nir_colorize.utils.atomic import atomic_path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_ID = "reference"
MAX_BYTES = 70 * 2**20  # at most 70 MB a model (issue 16)


def weights_path(model_id: str) -> Path:
    return WEIGHTS_DIR / f"{model_id}.safetensors"


def available() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def read_metadata(model_id: str) -> dict[str, Any]:
    """The ``nir_colorize`` metadata of a shipped model (model arguments, recipe, training facts)."""
    path = weights_path(model_id)
    if not path.is_file():
        raise ShippedModelError(f"model_id={model_id}: no shipped model {path} (shipped: "
                                f"{', '.join(available()) or 'none'}); give ckpt_path=... instead")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if "nir_colorize" not in meta:
        raise ShippedModelError(f"{path}: not a nir-colorize shipped model (no nir_colorize metadata)")
    return json.loads(meta["nir_colorize"])


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The network state dict of a shipped file, in fp32 on the CPU."""
    from safetensors.torch import load_file

    return {k: v.float() for k, v in load_file(str(path), device="cpu").items()}


def net_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's entries (``module.net``, keys without the ``net.`` prefix) of a training checkpoint's
    ``state_dict``."""
    return {k.removeprefix("net."): v for k, v in state_dict.items() if k.startswith("net.")}


def export(ckpt_path: str | Path, model_id: str, extra: dict[str, Any] | None = None,
           out_dir: Path = WEIGHTS_DIR) -> Path:
    """Write ``<out_dir>/<model_id>.safetensors`` (fp16 network weights + metadata) from a training checkpoint."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    hparams = ckpt.get("hyper_parameters", {})
    if "model" not in hparams or "state_dict" not in ckpt:
        raise ValueError(f"{ckpt_path}: not a nir-colorize training checkpoint (no hyper_parameters.model)")
    state = {k: v.half().contiguous() for k, v in net_state(ckpt["state_dict"]).items() if v.is_floating_point()}
    meta = {"model": dict(hparams["model"]), "epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step"),
            "source_checkpoint": Path(ckpt_path).name, "module": {k: v for k, v in hparams.items() if k != "model"}}
    run_cfg = Path(ckpt_path).resolve().parent.parent / ".hydra"
    if (run_cfg / "config.yaml").is_file():  # the training run's recipe and overrides
        from omegaconf import OmegaConf

        meta["recipe"] = OmegaConf.select(OmegaConf.load(run_cfg / "config.yaml"), "recipe")
        if (run_cfg / "overrides.yaml").is_file():
            meta["overrides"] = [str(o) for o in OmegaConf.load(run_cfg / "overrides.yaml")]
    meta |= extra or {}
    path = out_dir / f"{model_id}.safetensors"
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"nir_colorize": json.dumps(meta, default=str), "format": "pt"})
        if (size := tmp.stat().st_size) > MAX_BYTES:
            raise ValueError(f"{model_id}: {size / 2**20:.0f} MB is above the {MAX_BYTES / 2**20:.0f} MB limit")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nir_colorize.shipped", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="a training checkpoint -> nir_colorize/weights/<id>.safetensors")
    exp.add_argument("ckpt_path")
    exp.add_argument("--id", default=DEFAULT_ID)
    exp.add_argument("--meta", help="a JSON file of facts to record (recipe, data, training time, machine)")
    exp.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"folder (default {WEIGHTS_DIR})")
    sub.add_parser("list", help="the shipped models")
    args = parser.parse_args(argv)
    if args.command == "list":
        for model_id in available():
            meta = read_metadata(model_id)
            print(f"{model_id}: {meta['model']['name']} ({weights_path(model_id).stat().st_size / 2**20:.1f} MB)")
        return 0
    extra = json.loads(Path(args.meta).read_text()) if args.meta else None
    path = export(args.ckpt_path, args.id, extra, out_dir=args.out)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

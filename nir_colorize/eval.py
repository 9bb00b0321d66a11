"""Evaluate a checkpoint: ``python -m nir_colorize.eval ckpt_path=PATH [data=...] [fusion=bfwls]``.

Writes ``per_image.csv``, ``metrics.json`` and ``metrics.md`` (laid out like the paper's Table 1)
into the run directory and prints the table.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nir_colorize import CONFIG_DIR
from nir_colorize.module import ColorizationModule
from nir_colorize.results import summarize, write_results
from nir_colorize.utils.distributed import gather_rows
from nir_colorize.utils.errors import CKPT_HINT, checkpoint_error
from nir_colorize.utils.instantiate import instantiate_callbacks, instantiate_loggers

log = logging.getLogger(__name__)


def load_module(ckpt_path: str | Path, **overrides) -> ColorizationModule:
    """Load a trained module on the CPU, with a clear error for a missing or foreign file."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist ({CKPT_HINT})")
    try:
        return ColorizationModule.load_from_checkpoint(path, map_location="cpu", **overrides)
    except Exception as exc:  # noqa: BLE001 - a file that is not (our) checkpoint: CheckpointError, one line
        error = checkpoint_error(path, exc)
        if error is None:
            raise
        raise error from exc


def run(cfg: DictConfig) -> dict:
    """Test ``cfg.ckpt_path`` on ``cfg.split`` of ``cfg.data``; returns the summary."""
    L.seed_everything(cfg.seed, workers=True)
    module = load_module(cfg.ckpt_path, test_metrics=list(cfg.metrics))
    datamodule = instantiate(cfg.data)
    if cfg.split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {cfg.split!r}")
    datamodule.setup("test" if cfg.split == "test" else "validate")
    loader = datamodule.test_dataloader() if cfg.split == "test" else datamodule.val_dataloader()
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=instantiate_callbacks(cfg),
                                     logger=instantiate_loggers(cfg) or False)
    trainer.test(module, dataloaders=loader)
    model_name = module.hparams.model["name"]
    meta = {"title": f"{model_name} on the {cfg.split} split", "checkpoint": str(cfg.ckpt_path),
            "data": OmegaConf.to_container(cfg.data.source, resolve=True), "split": cfg.split,
            "fusion": cfg.fusion.name}
    rows = gather_rows(module.test_rows)  # every rank's images, each once (DDP)
    if not trainer.is_global_zero:  # one writer
        return summarize(rows)
    paths = write_results(Path(cfg.paths.output_dir), rows, meta,
                          {"raw": model_name, "bfwls": f"{model_name} + BFWLS"})
    print(paths["md"].read_text())
    print(f"results: {paths['md']}\n         {paths['json']}\n         {paths['csv']}")
    import json

    return json.loads(paths["json"].read_text())["summary"]


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    from nir_colorize.utils.errors import run_main

    run_main(main)  # a user error: one line on stderr, exit status 2 (HYDRA_FULL_ERROR=1: the traceback)

"""Evaluate a checkpoint: ``python -m nir_colorize.eval ckpt_path=PATH [data=...] [fusion=bfwls] [split=test|val|SET]``.

Scores every test set of the data config (``split=test``; VCIP 2020: ``validation`` and ``testing``), the
validation split (``split=val``) or the named set, each on all its images and on its clean subset, and writes
``per_image.csv``, ``metrics.json``, ``metrics.md`` (laid out like the paper's Table 1, with 95 % bootstrap
intervals) and ``splits.json`` (the leakage check) into the run directory, then prints the table.
"""

from __future__ import annotations

import nir_colorize.utils.openmp  # noqa: F401  # isort: skip  (first: libgomp reads its wait policy when torch loads it)
import json
import logging
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nir_colorize import CONFIG_DIR, loading
from nir_colorize.results import summarize, write_results
from nir_colorize.testing import resolve_sets, run_test_sets
from nir_colorize.utils.instantiate import instantiate_callbacks, instantiate_loggers

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    """Test ``cfg.ckpt_path`` on the sets ``cfg.split`` of ``cfg.data``; returns the summary."""
    L.seed_everything(cfg.seed, workers=True)
    module = loading.load_module(cfg.get("ckpt_path"), cfg.get("model_id"), test_metrics=list(cfg.metrics))
    module.tta = cfg.get("tta", False)
    module.scale, module.restore = cfg.get("scale", 1.0), str(cfg.get("restore") or module.restore)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    sets = resolve_sets(datamodule, str(cfg.split))  # checks every split, finds duplicates
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=instantiate_callbacks(cfg),
                                     logger=instantiate_loggers(cfg) or False)
    rows, _ = run_test_sets(trainer, module, datamodule, sets)
    model_name = module.hparams.model["name"]
    meta = {"title": f"{model_name} on {', '.join(sets)}",
            "checkpoint": str(cfg.ckpt_path) if cfg.get("ckpt_path") else loading.describe(model_id=cfg.get("model_id")),
            "data": OmegaConf.to_container(cfg.data.source, resolve=True), "sets": sets,
            "fusion": cfg.fusion.name, "tta": module.tta, "scale": str(module.scale), "restore": module.restore, "leakage": {"policy": datamodule.leakage, "check_seconds":
                                                   round(datamodule.check_seconds, 3)}}
    if not trainer.is_global_zero:  # one writer
        return summarize(rows)
    out = Path(cfg.paths.output_dir)
    datamodule.write_splits(out / "splits.json")
    paths = write_results(out, rows, meta, {"raw": model_name, "bfwls": f"{model_name} + BFWLS"})
    print(paths["md"].read_text())
    print(f"results: {paths['md']}\n         {paths['json']}\n         {paths['csv']}")
    return json.loads(paths["json"].read_text())["summary"]


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    from nir_colorize.utils.errors import run_main

    run_main(main)  # a user error: one line on stderr, exit status 2 (HYDRA_FULL_ERROR=1: the traceback)

"""Train (and test) a colorization model: ``python -m nir_colorize.train [overrides]``."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from nir_colorize import CONFIG_DIR
from nir_colorize.init_weights import init_weights, read_state
from nir_colorize.module import ColorizationModule
from nir_colorize.results import write_results
from nir_colorize.testing import run_test_sets
from nir_colorize.utils.instantiate import instantiate_callbacks, instantiate_loggers
from nir_colorize.utils.loggers import finish_wandb
from nir_colorize.utils.priority import lower_priority

log = logging.getLogger(__name__)


def stage_labels(cfg: DictConfig) -> dict[str, str]:
    """Row labels of the metric table: the model's name, and with its fusion."""
    model = cfg.model.name
    return {"raw": model, "bfwls": f"{model} + BFWLS"}


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit, then test the best checkpoint; returns the final callback metrics."""
    L.seed_everything(cfg.seed, workers=True)
    init_from = cfg.get("init_from")
    init_state = read_state(init_from) if init_from else None  # a bad init_from fails before any data is read
    out = Path(cfg.paths.output_dir)
    datamodule = instantiate(cfg.data)
    module = ColorizationModule(model=OmegaConf.to_container(cfg.model), **OmegaConf.to_container(cfg.module))
    if init_from:
        init_weights(module, init_from, init_state)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=instantiate_callbacks(cfg),
                                     logger=instantiate_loggers(cfg) or False)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    datamodule.prepare_data()
    datamodule.check()  # every split and test set decoded and checked, duplicates found, before training
    if not module.hparams.get("train_long_side"):  # the training scale, saved with the checkpoints (design section 10)
        module.hparams["train_long_side"] = datamodule.frame_long_side
    if trainer.is_global_zero:
        datamodule.write_splits(out / "splits.json")
    if cfg.train:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.test:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best and not trainer.fast_dev_run:
            log.warning("no best checkpoint: testing the current weights")
        rows, logged = run_test_sets(trainer, module, datamodule, "test", ckpt_path=best or None)
        metrics.update(logged)
        if trainer.is_global_zero:
            datamodule.write_splits(out / "test" / "splits.json")
            paths = write_results(out / "test", rows,
                                  {"title": f"Test metrics: {cfg.model.name}", "checkpoint": best,
                                   "data": cfg.data.source.get("root"),
                                   "selection": "best checkpoint by val/psnr on the val split"}, stage_labels(cfg))
            log.info("test metrics:\n%s", paths["md"].read_text())
    finish_wandb(trainer.loggers)  # one W&B run per job of a sweep
    if trainer.is_global_zero:
        ckpt_dir = out / "checkpoints"
        print(f"\nrun directory: {out}\n  checkpoints: {ckpt_dir if ckpt_dir.exists() else '(none)'}\n"
              f"  metrics: {out / 'csv' / 'metrics.csv'}\n  test results: {out / 'test'}")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    lower_priority(cfg.get("nice") or 0)  # a batch job: predict, eval and the desktop beside it keep their speed
    metrics = run(cfg)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return value


if __name__ == "__main__":
    from nir_colorize.utils.errors import run_main

    run_main(main)  # a user error: one line on stderr, exit status 2 (HYDRA_FULL_ERROR=1: the traceback)

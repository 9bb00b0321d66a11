"""Test a module on every test set of a datamodule, one named set at a time (design section 6)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L

from nir_colorize.data.datamodule import NIRDataModule
from nir_colorize.errors import DatasetError
from nir_colorize.results import annotate
from nir_colorize.utils.distributed import gather_rows

log = logging.getLogger(__name__)


def resolve_sets(datamodule: NIRDataModule, which: str | list[str] = "test") -> list[str]:
    """``test``: every test set present; ``val``: the validation split; else the set name(s) given."""
    present = datamodule.check()
    if which == "test":
        names = [n for n in datamodule.test_sets if n in present]
        if not names:
            raise DatasetError(f"{type(datamodule.source).__name__}: no test set to evaluate (have: "
                               f"{', '.join(present)}); use split=val for the validation split")
        return names
    names = [which] if isinstance(which, str) else list(which)
    unknown = [n for n in names if n not in present]
    if unknown:
        raise DatasetError(f"split={','.join(unknown)}: no such set (have: {', '.join(present)}; `test` = every test set)")
    return names


def run_test_sets(trainer: L.Trainer, module: L.LightningModule, datamodule: NIRDataModule,
                  which: str | list[str] = "test", ckpt_path: str | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Per-image rows (every rank's, each image once) of every chosen set, annotated with what each image
    duplicates and whether it is clean; and the logged means (``test/<set>/<metric>``) of all sets."""
    rows: list[dict[str, Any]] = []
    logged: dict[str, float] = {}
    for name in resolve_sets(datamodule, which):
        log.info("testing on %s (%d pairs)", name, len(datamodule.split(name)))
        module.test_set = name
        trainer.test(module, dataloaders=datamodule.test_loader(name), ckpt_path=ckpt_path)
        rows += gather_rows(module.test_rows)
        logged.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    annotate(rows, datamodule.duplicate_labels(), datamodule.leaks())
    return rows, logged

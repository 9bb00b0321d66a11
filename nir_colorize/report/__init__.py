"""Collect a sweep (e.g. the ablation study) into a results page: ``python -m nir_colorize.report SWEEP_DIR``.

Reads every job of a Hydra multirun directory (``.hydra/``, ``test/metrics.json``, ``csv/metrics.csv``,
``checkpoints/best.ckpt``) and writes ``experiments/<study>/``: ``README.md``, ``table.md`` (laid out like the
paper's Table 2), ``samples.png`` (NIR | each variant | ground truth) and ``val_psnr.png``. See docs/ablation.md.
"""

from typing import Any

__all__ = ["Run", "Sweep", "collect_sweep", "find_sweep", "write_report"]


def __getattr__(name: str) -> Any:
    """The names of ``__all__``, imported on first use: ``python -m nir_colorize.report.compare`` then runs its module
    once, not after the package imported it (runpy's RuntimeWarning)."""
    if name == "write_report":
        from nir_colorize.report.page import write_report

        return write_report
    if name in __all__:
        from nir_colorize.report import collect

        return getattr(collect, name)
    raise AttributeError(f"module 'nir_colorize.report' has no attribute {name!r}")

"""Collect a sweep (e.g. the ablation study) into a results page: ``python -m nir_colorize.report SWEEP_DIR``.

Reads every job of a Hydra multirun directory (``.hydra/``, ``test/metrics.json``, ``csv/metrics.csv``,
``checkpoints/best.ckpt``) and writes ``experiments/<study>/``: ``README.md``, ``table.md`` (laid out like the
paper's Table 2), ``samples.png`` (NIR | each variant | ground truth) and ``val_psnr.png``. See docs/ablation.md.
"""

from nir_colorize.report.collect import Run, Sweep, collect_sweep, find_sweep
from nir_colorize.report.page import write_report

__all__ = ["Run", "Sweep", "collect_sweep", "find_sweep", "write_report"]

"""torchmetrics wrappers: the mean over images of a per-image metric, synchronised across processes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric, MetricCollection

from nir_colorize.metrics.functional import FUNCTIONS, check_names, per_image


class ImageMean(Metric):
    """Mean over images of the per-image metric ``name`` (a key of ``FUNCTIONS``).

    A per-image mean, not a pixel mean pooled over the dataset: every image counts once whatever its size.
    Which way is better: ``HIGHER_IS_BETTER[name]``.
    """

    full_state_update = False

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(**kwargs)
        check_names([name])
        self.metric_name = name
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @property
    def fn(self):
        return FUNCTIONS[self.metric_name]

    def update(self, pred: torch.Tensor | None = None, target: torch.Tensor | None = None, *,
               values: torch.Tensor | None = None) -> None:
        """Add a batch: images ``pred``/``target``, or per-image ``values`` already computed (no recompute)."""
        if values is None:
            if pred is None or target is None:
                raise ValueError(f"{self.metric_name}: update needs pred and target, or values")
            values = per_image(pred, target, [self.metric_name])[self.metric_name]
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp_min(1)).float()


def build_metrics(names: Sequence[str], prefix: str = "") -> MetricCollection:
    """A MetricCollection of ``ImageMean`` metrics, keys ``{prefix}{name}``.

    ``compute_groups=False``: torchmetrics would otherwise merge metrics whose states are equal after the first
    update (every error metric is 0 on a perfect first batch) and from then on update only one of them.
    """
    check_names(names)
    return MetricCollection({name: ImageMean(name) for name in names}, prefix=prefix, compute_groups=False)


def update_from_values(collection: MetricCollection, values: dict[str, torch.Tensor]) -> None:
    """Feed per-image ``values`` (``per_image``'s output) to a ``build_metrics`` collection."""
    for name, metric in collection.items(keep_base=True):
        metric.update(values=values[name])


__all__ = ["ImageMean", "build_metrics", "update_from_values"]

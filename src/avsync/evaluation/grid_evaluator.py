"""Evaluation of offset classifiers on a grid (SparseSync, Synchformer): exact and tolerant accuracy,
the loss, and (test) per dataset class.

Per batch the logits (or class indices) and the true classes update ``{stage}/acc@1`` and
``{stage}/acc_tol`` (±``tolerance_classes`` grid classes) and ``{stage}/loss`` (a ``MeanMetric``
weighted by the batch size, the mean over every clip of the epoch). With ``class_names`` the
tolerant metric counts per dataset class as well, for the test's breakdown.
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor
from torchmetrics import MeanMetric, Metric, MetricCollection

from avsync.evaluation.class_accuracy import ClassOffsetAccuracy
from avsync.evaluation.evaluator import OffsetEvaluator, update_accuracy
from avsync.evaluation.metrics import OffsetAccuracy

__all__ = ["GridEvaluator"]


class GridEvaluator(OffsetEvaluator):
    """One stage's metrics of a grid classifier over ``offsets_sec`` (the grid's values)."""

    def __init__(self, stage: str, offsets_sec: Sequence[float], tolerance_classes: int = 1,
                 class_names: Sequence[str] = ()):
        super().__init__()
        self.stage = stage
        tolerant = (ClassOffsetAccuracy(offsets_sec, class_names, classes=tolerance_classes, score="acc_tol")
                    if class_names else OffsetAccuracy(offsets_sec, classes=tolerance_classes, score="acc_tol"))
        self.accuracy = MetricCollection({"acc@1": OffsetAccuracy(offsets_sec, classes=tolerance_classes,
                                                                  score="acc@1"),
                                          "acc_tol": tolerant}, prefix=f"{stage}/", compute_groups=False)
        self.headline = tolerant
        # batch-size weighted as Lightning's own mean. Not nan_strategy="disable": torchmetrics 1.9 then
        # drops the weights (every batch counts 1); the default drops a NaN loss with a warning
        self.loss = MeanMetric()
        self.prog_bar = frozenset({f"{stage}/acc_tol"} | ({f"{stage}/acc@1"} if stage != "train" else set()))

    def update(self, logits: Tensor, target: Tensor, classes: Tensor | None = None) -> dict[str, Metric]:
        """Count a batch: logits (B, C) or class indices (B,), true classes (B,), dataset classes (B,) or None."""
        for metric in self.accuracy.values():
            update_accuracy(metric, logits, target, classes)
        return dict(self.accuracy.items())

    def update_loss(self, loss: Tensor, batch_size: int) -> MeanMetric:
        """Add a batch's mean loss (weighted by its size); the metric's step value is this batch's loss."""
        self.loss(loss.detach(), batch_size)
        return self.loss

"""Test-time accuracy per dataset class and per true offset, kept for the reproduction runner.

A mixin for modules that hold one :class:`~avsync.evaluation.metrics.OffsetAccuracy` per stage in
``self.metrics[f"{stage}_acc"]`` (grid classifiers, AVST). At the start of a test it rebuilds the
test metric for the data module's classes (``datamodule.classes``: VGGSound family, the toy
sparse set) as a :class:`~avsync.evaluation.class_accuracy.ClassOffsetAccuracy`, so the test step can pass
``batch["class_index"]``; at the end of the test the module logs the sorted per-class bar chart to
TensorBoard and leaves the numbers in ``self.test_breakdown`` (offsets, per-offset and per-class
accuracy as lists), which ``avsync reproduce`` stores in the stage's ``result.json``.
"""
from __future__ import annotations

from torch import Tensor

from avsync.evaluation.class_accuracy import ClassOffsetAccuracy, breakdown, dataset_classes
from avsync.evaluation.class_plots import per_class_figure
from avsync.evaluation.metrics import OffsetAccuracy

__all__ = ["ClassBreakdown", "accuracy_like"]


def accuracy_like(metric: OffsetAccuracy, class_names: list[str]) -> OffsetAccuracy:
    """A fresh metric with ``metric``'s candidates and tolerance; per class when there are classes."""
    tol = metric.tolerance
    kwargs = {"classes": {"classes": tol.k}, "frames": {"frames": (tol.k, tol.fps)},
              "window_ms": {"window_ms": (tol.lo_ms, tol.hi_ms)}}[tol.kind]
    if class_names:
        return ClassOffsetAccuracy(metric.offsets_sec, class_names, exact_tol_sec=metric.exact_tol_sec, **kwargs)
    return OffsetAccuracy(metric.offsets_sec, exact_tol_sec=metric.exact_tol_sec, **kwargs)


class ClassBreakdown:
    """Mixin (before ``LightningModule`` in the bases); see the module docstring."""

    test_breakdown: dict | None = None

    def on_test_start(self) -> None:
        super().on_test_start()
        trainer = getattr(self, "_trainer", None)
        names = dataset_classes(getattr(trainer, "datamodule", None)) if trainer is not None else []
        self.metrics["test_acc"] = accuracy_like(self.metrics["test_acc"], names).to(self.device)
        self.test_breakdown = None

    @staticmethod
    def update_accuracy(metric: OffsetAccuracy, preds: Tensor, target: Tensor, classes: Tensor | None) -> None:
        """``metric.update(preds, target)``, with each prediction's class where the metric counts them."""
        if isinstance(metric, ClassOffsetAccuracy) and classes is not None:
            metric.update(preds, target, classes=classes)
        else:
            metric.update(preds, target)

    def keep_breakdown(self, stage: str, metric: OffsetAccuracy, result: dict) -> None:
        """At the end of a test: store the breakdown and log the per-class bars (rank 0)."""
        if stage != "test":
            return
        self.test_breakdown = breakdown(metric, result)
        trainer = getattr(self, "_trainer", None)
        if "per_class" not in self.test_breakdown or trainer is None or not trainer.is_global_zero:
            return
        writer = getattr(self.logger, "experiment", None)
        if writer is None or not hasattr(writer, "add_figure"):
            return
        import matplotlib.pyplot as plt

        per_class = self.test_breakdown["per_class"]
        fig = per_class_figure(self.test_breakdown["classes"], per_class["acc_tol"], per_class["acc@1"],
                               per_class["count"], "test accuracy per class")
        writer.add_figure("test/per_class_accuracy", fig, global_step=self.global_step)
        plt.close(fig)

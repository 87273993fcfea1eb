"""Test-time accuracy per dataset class and per true offset, kept for the reproduction runner.

A mixin for modules that hold one offset evaluator per stage in ``self.evaluators[stage]`` and
build them with ``self.build_evaluator(stage, class_names)`` (grid classifiers, AVST). At the
start of a test it rebuilds the test evaluator for the data module's classes
(``datamodule.classes``: VGGSound family, the toy sparse set), whose headline metric is then a
:class:`~avsync.evaluation.class_accuracy.ClassOffsetAccuracy`, so the test step can pass
``batch["class_index"]``; at the end of the test (:meth:`ClassBreakdown.keep_breakdown`, from the
module's ``on_test_epoch_end``) the module logs the sorted per-class bar chart to TensorBoard and
leaves the numbers in ``self.test_breakdown`` (offsets, per-offset and per-class accuracy as
lists), which ``avsync reproduce`` stores in the stage's ``result.json``.
"""
from __future__ import annotations

from avsync.evaluation.class_accuracy import dataset_classes
from avsync.evaluation.class_plots import per_class_figure
from avsync.evaluation.figures import log_figures
from avsync.training.attached import attached_trainer

__all__ = ["ClassBreakdown"]


class ClassBreakdown:
    """Mixin (before ``LightningModule`` in the bases); see the module docstring."""

    test_breakdown: dict | None = None

    def on_test_start(self) -> None:
        super().on_test_start()
        trainer = attached_trainer(self)
        names = dataset_classes(getattr(trainer, "datamodule", None)) if trainer is not None else []
        self.evaluators["test"] = self.build_evaluator("test", names).to(self.device)
        self.test_breakdown = None

    def keep_breakdown(self) -> None:
        """At the end of a test: store the breakdown and log the per-class bars (rank 0)."""
        evaluator = self.evaluators["test"]
        result = evaluator.results()
        if result is None:
            return
        self.test_breakdown = kept = evaluator.breakdown(result)
        if "per_class" in kept:
            per_class = kept["per_class"]
            log_figures(self, {"test/per_class_accuracy": lambda: per_class_figure(
                kept["classes"], per_class["acc_tol"], per_class["acc@1"], per_class["count"],
                "test accuracy per class")})

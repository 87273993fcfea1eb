"""What every evaluator shares: metrics that Lightning computes and resets, a breakdown, the figures.

An evaluator (one per protocol: :class:`~avsync.evaluation.grid_evaluator.GridEvaluator`,
:class:`~avsync.evaluation.score_search_evaluator.ScoreSearchEvaluator`,
:class:`~avsync.evaluation.distance_evaluator.DistanceEvaluator`) is an ``nn.Module`` a
LightningModule holds per stage. Its ``update(...)`` takes one batch of answers and returns
``{logged name: metric}``: every metric is a scalar ``torchmetrics.Metric`` (an
:class:`~avsync.evaluation.metrics.OffsetAccuracy` built with ``score=``), so the module logs the
metric *objects* (:meth:`OffsetEvaluator.log`) and Lightning computes them at the end of the
epoch and resets them. Nothing is computed or reset by hand, and a metric no batch updated is
never logged.

:class:`OffsetEvaluator` adds what the offset protocols share: the full result of the headline
tolerant metric (per offset, per dataset class) for the test's breakdown and the figures.
"""
from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn
from torchmetrics import Metric

from avsync.evaluation.class_accuracy import ClassOffsetAccuracy, breakdown
from avsync.evaluation.figures import FigureSource, confusion_figure, per_offset_figure
from avsync.evaluation.metrics import OffsetAccuracy

__all__ = ["Evaluator", "OffsetEvaluator", "StageEvaluators", "update_accuracy"]


def update_accuracy(metric: OffsetAccuracy, preds: Tensor, target: Tensor, classes: Tensor | None = None) -> None:
    """``metric.update(preds, target)``, with each prediction's dataset class where the metric counts them."""
    if isinstance(metric, ClassOffsetAccuracy) and classes is not None:
        metric.update(preds, target, classes=classes)
    else:
        metric.update(preds, target)


class Evaluator(nn.Module):
    """Base: ``prog_bar`` names the logged metrics shown in the progress bar."""

    prog_bar: frozenset[str] = frozenset()

    def log(self, module, metrics: Mapping[str, Metric], **kwargs) -> None:
        """``module.log_dict`` the metric objects (Lightning computes and resets them)."""
        shown = {k: v for k, v in metrics.items() if k in self.prog_bar}
        rest = {k: v for k, v in metrics.items() if k not in self.prog_bar}
        if shown:
            module.log_dict(shown, prog_bar=True, **kwargs)
        if rest:
            module.log_dict(rest, **kwargs)


class OffsetEvaluator(Evaluator):
    """An evaluator whose headline is a tolerant :class:`OffsetAccuracy` (``self.headline``):
    its full result gives the per-offset / per-class breakdown and the figures."""

    stage: str
    headline: OffsetAccuracy

    def results(self) -> dict[str, Tensor] | None:
        """The headline metric's full result of this epoch, synchronised across processes (call it on
        every rank, before drawing on rank 0); None when it counted nothing."""
        result = self.headline.results()
        return result if int(result["confusion"].sum()) > 0 else None

    def breakdown(self, result: dict[str, Tensor]) -> dict:
        """Per true offset and per dataset class as JSON-ready lists (see :func:`breakdown`)."""
        return breakdown(self.headline, result)

    def offset_figures(self, result: dict[str, Tensor], confusion: bool = False) -> dict[str, FigureSource]:
        """Per-offset accuracy (and the confusion over offsets) of ``result``, drawn only when logged."""
        stage, offsets = self.stage, self.headline.offsets_sec
        figures: dict[str, FigureSource] = {}
        if confusion:
            figures[f"{stage}/confusion"] = lambda: confusion_figure(result["confusion"], offsets,
                                                                     f"{stage} confusion")
        figures[f"{stage}/per_offset_accuracy"] = lambda: per_offset_figure(
            result["per_offset_acc@1"], result["per_offset_acc_tol"], offsets)
        return figures


class StageEvaluators(nn.ModuleDict):
    """A module's evaluators by stage (``evaluators["val"]``). Entries are registered as
    ``"<stage>_eval"``: a submodule called ``train`` would shadow ``nn.Module.train``."""

    def __getitem__(self, stage: str) -> Evaluator:
        return super().__getitem__(f"{stage}_eval")

    def __setitem__(self, stage: str, evaluator: Evaluator) -> None:
        super().__setitem__(f"{stage}_eval", evaluator)

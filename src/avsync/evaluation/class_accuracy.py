"""Offset accuracy broken down by the *dataset* class of each clip (AVST Fig. 3/6, SparseSync Fig. 3).

:class:`ClassOffsetAccuracy` is an :class:`~avsync.evaluation.metrics.OffsetAccuracy` (same tolerance, same
overall and per-offset numbers) that also counts hits per dataset class ("playing violin",
"dog barking", ...). The class of each prediction comes with the update as an integer index
into ``class_names`` (``batch["class_index"]``, −1 for a clip without a class: counted overall,
not per class). Every state is a count reduced with ``sum``, so the per-class value under DDP
equals the value on one process that saw all the data.

:func:`breakdown` turns a computed result into plain lists (JSON-ready, ``None`` where a class or
offset had no sample): what a stage stores for the reproduction runner's plots.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from avsync.evaluation.metrics import OffsetAccuracy

__all__ = ["ClassOffsetAccuracy", "breakdown", "dataset_classes"]


class ClassOffsetAccuracy(OffsetAccuracy):
    """OffsetAccuracy plus per-class counts; ``update(..., classes=(B,) int)`` (optional)."""

    def __init__(self, offsets_sec: Sequence[float], class_names: Sequence[str], **kwargs) -> None:
        super().__init__(offsets_sec, **kwargs)
        self.class_names = tuple(str(c) for c in class_names)
        if not self.class_names:
            raise ValueError("class_names is empty (use OffsetAccuracy for a data set without classes)")
        k = len(self.class_names)
        self.add_state("class_count", torch.zeros(k, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("class_correct", torch.zeros(k, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("class_correct_tol", torch.zeros(k, dtype=torch.long), dist_reduce_fx="sum")
        self._classes: Tensor | None = None

    def update(self, preds: Tensor | None = None, target: Tensor | None = None, *,
               pred_sec: Tensor | None = None, true_sec: Tensor | None = None,
               classes: Tensor | None = None) -> None:
        """As :meth:`OffsetAccuracy.update`; ``classes`` gives each prediction's class index (−1: none).
        Without ``classes`` only the overall and per-offset counts move."""
        self._classes = None if classes is None else self._check_classes(classes)
        try:
            super().update(preds, target, pred_sec=pred_sec, true_sec=true_sec)
        finally:
            self._classes = None

    def _accumulate(self, true_idx: Tensor, pred_idx: Tensor, exact: Tensor, tol: Tensor) -> None:
        super()._accumulate(true_idx, pred_idx, exact, tol)
        if self._classes is None:
            return
        classes = self._classes.to(true_idx.device)
        if classes.shape != true_idx.shape:
            raise ValueError(f"classes give {classes.numel()} entries for {true_idx.numel()} predictions")
        known = classes >= 0
        k = len(self.class_names)
        self.class_count += torch.bincount(classes[known], minlength=k)
        self.class_correct += torch.bincount(classes[known & exact], minlength=k)
        self.class_correct_tol += torch.bincount(classes[known & tol], minlength=k)

    def _check_classes(self, classes: Tensor) -> Tensor:
        classes = torch.as_tensor(classes).detach().reshape(-1)
        if classes.dtype.is_floating_point or classes.dtype == torch.bool:
            raise ValueError(f"classes must be integer indices, got {classes.dtype}")
        classes = classes.long()
        if classes.numel() and (classes.min() < -1 or classes.max() >= len(self.class_names)):
            raise ValueError(f"class indices outside -1..{len(self.class_names) - 1}")
        return classes

    def _result(self) -> dict[str, Tensor]:
        """OffsetAccuracy's result plus ``per_class_count``, ``per_class_acc@1`` and
        ``per_class_acc_tol`` (length K, NaN for a class without samples)."""
        result = super()._result()
        count = self.class_count.double()
        result["per_class_count"] = self.class_count.clone()
        result["per_class_acc@1"] = self.class_correct.double() / count
        result["per_class_acc_tol"] = self.class_correct_tol.double() / count
        return result


def _floats(values: Tensor) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.double().cpu().tolist()]


def breakdown(metric: OffsetAccuracy, result: dict[str, Tensor]) -> dict:
    """Per true offset (and per class, for a :class:`ClassOffsetAccuracy` that saw classes) as lists.
    Counts come from ``result`` (synchronised across processes), not from the metric's local states."""
    out = {"offsets_sec": list(metric.offsets_sec),
           "per_offset": {"count": result["confusion"].sum(1).cpu().tolist(),
                          "acc@1": _floats(result["per_offset_acc@1"]),
                          "acc_tol": _floats(result["per_offset_acc_tol"])}}
    if "per_class_count" in result and int(result["per_class_count"].sum()) > 0:
        out["classes"] = list(metric.class_names)
        out["per_class"] = {"count": result["per_class_count"].cpu().tolist(),
                            "acc@1": _floats(result["per_class_acc@1"]),
                            "acc_tol": _floats(result["per_class_acc_tol"])}
    return out


def dataset_classes(datamodule) -> list[str]:
    """The class names of a data module (``classes``), looking through wrappers that hold their data
    module as ``source`` (the feature bank); empty when it has none."""
    while datamodule is not None:
        classes = getattr(datamodule, "classes", None)
        if classes:
            return [str(c) for c in classes]
        datamodule = getattr(datamodule, "source", None)
    return []

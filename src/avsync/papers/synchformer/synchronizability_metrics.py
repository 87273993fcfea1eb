"""Synchronizability (Synchformer §4.2, Fig. 4) as data: ROC AUC and the filtered-accuracy curve.

A synchronizability model scores how likely a pair of streams can be synchronised at all. Fig. 4
(left) is its ROC curve (AUC 0.83 on VGGSound-Sparse); Fig. 4 (right) shows what the score is good
for: the offset accuracy of the synchronisation model over the clips whose score is at least a
threshold, against that threshold / the share of clips kept. Both are plain functions of
(scores, labels) or (scores, correct) so that a reproduction can write the numbers, and
:class:`FilteredAccuracyCurve` accumulates them over an evaluation epoch (DDP-safe cat states).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import binary_auroc, binary_roc
from torchmetrics.utilities import dim_zero_cat

__all__ = ["FilteredAccuracy", "filtered_accuracy_curve", "roc_auc", "roc_curve", "FilteredAccuracyCurve"]


@dataclass
class FilteredAccuracy:
    """Fig. 4 (right) as numbers: for each distinct score ``thresholds[i]`` (descending), the clips
    with a score >= it are kept: ``kept_fraction[i]`` of all clips, with offset accuracy ``accuracy[i]``."""

    thresholds: Tensor
    kept_fraction: Tensor
    accuracy: Tensor
    kept: Tensor

    def __post_init__(self) -> None:  # torchmetrics squeezes one-point results to 0-d tensors
        for name in ("thresholds", "kept_fraction", "accuracy", "kept"):
            setattr(self, name, torch.atleast_1d(getattr(self, name)))

    def as_dict(self) -> dict[str, list[float]]:
        self.__post_init__()
        return {"threshold": self.thresholds.tolist(), "kept_fraction": self.kept_fraction.tolist(),
                "accuracy": self.accuracy.tolist(), "kept": self.kept.tolist()}

    def accuracy_at_fraction(self, fraction: float) -> float:
        """Accuracy of the most confident ``fraction`` of the clips (the first point keeping at least it)."""
        self.__post_init__()
        at = int(torch.searchsorted(self.kept_fraction, torch.tensor(float(fraction) - 1e-9)))
        return float(self.accuracy[min(at, len(self.accuracy) - 1)])


def _check(scores: Tensor, other: Tensor, name: str) -> tuple[Tensor, Tensor]:
    scores, other = torch.as_tensor(scores).flatten().double(), torch.as_tensor(other).flatten()
    if scores.shape != other.shape:
        raise ValueError(f"scores and {name} differ in length: {scores.numel()} vs {other.numel()}")
    if scores.numel() == 0:
        raise ValueError("no clips: the curve needs at least one score")
    return scores, other


def filtered_accuracy_curve(scores: Tensor, correct: Tensor) -> FilteredAccuracy:
    """Offset accuracy of the clips with synchronizability >= t, for every distinct score t.

    ``scores`` (N,): synchronizability (higher = more synchronisable); ``correct`` (N,) bool: the
    clip's offset prediction is right (within the tolerance). Ties are kept or dropped together.
    """
    scores, correct = _check(scores, correct, "correct")
    order = torch.argsort(scores, descending=True, stable=True)
    sorted_scores, hits = scores[order], correct[order].double().cumsum(0)
    # the last position of each run of equal scores: keeping a threshold keeps the whole run
    last = torch.ones_like(sorted_scores, dtype=torch.bool)
    last[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    kept = torch.arange(1, len(scores) + 1, dtype=torch.float64)[last]
    return FilteredAccuracy(thresholds=sorted_scores[last], kept_fraction=kept / len(scores),
                            accuracy=hits[last] / kept, kept=kept.long())


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (1 = synchronisable)."""
    scores, labels = _check(scores, labels, "labels")
    return float(binary_auroc(scores.float(), labels.long()))


def roc_curve(scores: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(false-positive rate, true-positive rate, thresholds) of Fig. 4 (left)."""
    scores, labels = _check(scores, labels, "labels")
    return binary_roc(scores.float(), labels.long())


class FilteredAccuracyCurve(Metric):
    """Collects (synchronizability score, offset correct) of the synchronisable clips of an epoch;
    ``compute`` gives :func:`filtered_accuracy_curve`."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("correct", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, correct: Tensor) -> None:
        self.scores.append(scores.detach().flatten().float())
        self.correct.append(correct.detach().flatten().bool())

    def compute(self) -> FilteredAccuracy:
        return filtered_accuracy_curve(dim_zero_cat(self.scores), dim_zero_cat(self.correct))

"""Evaluation of score-search answers (AVST, VocaLiST, SyncNet): several contexts in one pass.

A score-search model answers each clip once per *context* (a run length of averaged windows
``"20f"``, a visual window length ``"len7"``, the whole clip ``"clip"``; ``None`` names the
protocol's single headline answer). For every context the evaluator counts, over the candidate
frame shifts ``offsets_sec``:

* ``acc@1`` and ``acc_tol`` (±``frames[0]`` frames at ``frames[1]`` fps);
* with ``in_sync_split``: ``acc_tol_in_sync`` (clips whose true offset is 0, the papers' protocol)
  and ``acc_tol_random_offset`` (the artificially shifted ones, DiVAS' protocol), each counted
  only on its own clips. They are logged once at the end of the epoch (:meth:`split_metrics`),
  when the epoch had such clips on any process: logged from the steps, a process would first log
  them in another order than the others where its first clip is of the other kind, and Lightning,
  computing the metrics in the order they were first logged, would then pair one process'
  in-sync counts with another's shifted counts in the synchronisation;
* for each ``windows_ms`` residual window: its accuracy (DiVAS' ``acc@±40ms``, ``acc@-125+45ms``).

Logged names are ``{stage}/{metric}`` for the context ``None`` and ``{stage}/{metric}_{context}``
otherwise; the first context's metrics named in ``aliases`` are logged under ``{stage}/{metric}``
as well (the shortest context as the headline, the checkpoint monitor). The first context's
tolerant metric is the headline of the breakdown and figures; with ``class_names`` it counts per
dataset class.
"""
from __future__ import annotations

from typing import Collection, Sequence

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from avsync.evaluation.class_accuracy import ClassOffsetAccuracy
from avsync.evaluation.evaluator import OffsetEvaluator, update_accuracy
from avsync.evaluation.metrics import OffsetAccuracy, tolerance_name

__all__ = ["ScoreSearchEvaluator"]

SPLITS = ("acc_tol_in_sync", "acc_tol_random_offset")


class ScoreSearchEvaluator(OffsetEvaluator):
    """One stage's score-search metrics for each of ``contexts``; see the module docstring."""

    def __init__(self, stage: str, offsets_sec: Sequence[float], *, frames: tuple[int, float],
                 contexts: Sequence[str | None] = (None,), windows_ms: Sequence[tuple[float, float]] = (),
                 in_sync_split: bool = False, class_names: Sequence[str] = (), aliases: Collection[str] = (),
                 prog_bar: Collection[str] = ("acc_tol",)):
        super().__init__()
        if not contexts or len(set(contexts)) != len(contexts):
            raise ValueError(f"contexts must be distinct and at least one, got {list(contexts)}")
        self.stage, self.contexts = stage, tuple(contexts)
        self.offsets_sec = tuple(float(o) for o in offsets_sec)
        self.zero = self.offsets_sec.index(0.0) if in_sync_split else None
        self.collections = nn.ModuleDict()
        self.names: dict[str, dict[str, list[str]]] = {}
        shown = set()
        for i, context in enumerate(self.contexts):
            members: dict[str, OffsetAccuracy] = {
                "acc@1": OffsetAccuracy(offsets_sec, frames=frames, score="acc@1"),
                "acc_tol": (ClassOffsetAccuracy(offsets_sec, class_names, frames=frames, score="acc_tol")
                            if class_names and i == 0 else OffsetAccuracy(offsets_sec, frames=frames, score="acc_tol"))}
            if in_sync_split:
                for split in SPLITS:
                    members[split] = OffsetAccuracy(offsets_sec, frames=frames, score=split)
            for window in windows_ms:  # logged in float32, as these accuracies always were
                members[tolerance_name(window)] = OffsetAccuracy(offsets_sec, window_ms=window, score="acc_tol",
                                                                 score_dtype=torch.float32)
            key = _key(context)
            self.collections[key] = MetricCollection(members, compute_groups=False)
            self.names[key] = {}
            for member in members:
                names = [f"{stage}/{member}" if context is None else f"{stage}/{member}_{context}"]
                if i == 0 and context is not None and member in aliases:
                    names.append(f"{stage}/{member}")
                self.names[key][member] = names
                if i == 0 and member in prog_bar:
                    shown.add(names[-1])
        self.headline = self.tolerant()
        self.prog_bar = frozenset(shown)

    def tolerant(self, context: str | None = None) -> OffsetAccuracy:
        """The tolerant accuracy metric of ``context`` (default: the first); ``.results()`` gives all its numbers."""
        return self.collections[_key(self.contexts[0] if context is None else context)]["acc_tol"]

    def update(self, context: str | None, pred_idx: Tensor, true_idx: Tensor,
               classes: Tensor | None = None) -> dict[str, Metric]:
        """Count the answers of one context: predicted and true candidate indices (N,), each
        answer's dataset class (N,) or None. Returns the metrics to log."""
        key = _key(context)
        collection, names = self.collections[key], self.names[key]
        updated = {}
        for member, metric in collection.items(keep_base=True):
            if member in SPLITS:  # logged at the end of the epoch (split_metrics)
                keep = (true_idx == self.zero) if member == "acc_tol_in_sync" else (true_idx != self.zero)
                if bool(keep.any()):
                    metric.update(pred_idx[keep], true_idx[keep])
                continue
            update_accuracy(metric, pred_idx, true_idx, classes)
            updated.update({name: metric for name in names[member]})
        return updated

    def split_metrics(self, result: dict[str, Tensor] | None) -> dict[str, Metric]:
        """The in-sync / random-offset accuracies of every context, to log at the end of the epoch,
        each where the epoch had such clips; ``result`` is :meth:`results` (synchronised, so every
        process logs the same names in the same order)."""
        if self.zero is None or result is None:
            return {}
        count = result["confusion"].sum(1)
        present = {"acc_tol_in_sync": int(count[self.zero]) > 0,
                   "acc_tol_random_offset": int(count.sum() - count[self.zero]) > 0}
        return {name: self.collections[key][member] for key in self.collections for member in SPLITS
                if present[member] for name in self.names[key][member]}


def _key(context: str | None) -> str:
    return "headline" if context is None else f"context_{context}"

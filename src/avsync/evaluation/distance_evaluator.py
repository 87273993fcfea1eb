"""Evaluation of a distance-matrix model (DiVAS §4.1): accuracy in millisecond windows at any frame rate.

Answers come in seconds (clips of one batch share a frame rate, batches may differ), so every
metric is an :class:`~avsync.evaluation.metrics.OffsetAccuracy` updated with seconds over the
candidate shifts ``offsets_sec``. Per residual window ``w`` of ``windows_ms``:

* ``{stage}/acc@±40ms`` … — the clip's answer (distances averaged over all its windows);
* ``{stage}/acc@±40ms_{c}f`` … — for each of ``contexts`` (frames): the answers of every run of
  windows covering ``c`` frames (several context lengths in one pass);
* ``{stage}/window_acc@±40ms`` … — each window's own answer (no averaging; a finer view than
  the clip accuracy, which saturates early). Not with a grid.

With ``grid_values`` (Table 5: clips at grid offsets) the clip's answer snapped to the nearest
class gives ``{stage}/acc@1`` and ``{stage}/acc_tol`` (±1 class) as well. Every value is float32,
as DiVAS always logged them.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from avsync.evaluation.evaluator import Evaluator
from avsync.evaluation.metrics import OffsetAccuracy, tolerance_name

__all__ = ["DistanceEvaluator"]


class DistanceEvaluator(Evaluator):
    """One stage's DiVAS metrics; see the module docstring."""

    def __init__(self, stage: str, offsets_sec: Sequence[float], windows_ms: Sequence[tuple[float, float]],
                 grid_values: Sequence[float] | None = None, contexts: Sequence[int] = ()):
        super().__init__()
        self.stage, self.contexts = stage, tuple(int(c) for c in contexts)

        def in_window(window):
            return OffsetAccuracy(offsets_sec, window_ms=window, score="acc_tol", score_dtype=torch.float32)

        clip = {tolerance_name(w): in_window(w) for w in windows_ms}
        self.clip = MetricCollection(clip, prefix=f"{stage}/", compute_groups=False)
        self.context = MetricCollection({f"{tolerance_name(w)}_{c}f": in_window(w) for c in self.contexts
                                         for w in windows_ms}, prefix=f"{stage}/", compute_groups=False)
        self.windows = MetricCollection({} if grid_values is not None else
                                        {f"window_{tolerance_name(w)}": in_window(w) for w in windows_ms},
                                        prefix=f"{stage}/", compute_groups=False)
        self.grid = MetricCollection({} if grid_values is None else {
            score: OffsetAccuracy(grid_values, classes=1, score=score, score_dtype=torch.float32)
            for score in ("acc@1", "acc_tol")}, prefix=f"{stage}/", compute_groups=False)
        self.grid_values = None if grid_values is None else tuple(float(v) for v in grid_values)
        self.windows_ms = tuple(windows_ms)
        self.prog_bar = frozenset(f"{stage}/{name}" for name in clip)

    def update(self, pred_sec: Tensor, true_sec: Tensor, *, window_pred_sec: Tensor | None = None,
               window_true_sec: Tensor | None = None,
               context_answers: dict[int, tuple[Tensor, Tensor]] | None = None) -> None:
        """Count a batch: clip answers and truths (N,) in seconds; each window's answer and its
        clip's truth (M,); per context (frames) the answers of its runs and their truths."""
        for metric in self.clip.values():
            metric.update_seconds(pred_sec, true_sec)
        if len(self.windows) and window_pred_sec is not None:
            for metric in self.windows.values():
                metric.update_seconds(window_pred_sec, window_true_sec)
        for c, (pred, true) in (context_answers or {}).items():
            for w in self.windows_ms:
                self.context[f"{tolerance_name(w)}_{c}f"].update_seconds(pred, true)
        if self.grid_values is not None:  # the answer snapped to the nearest class of the grid
            values = torch.tensor(self.grid_values, dtype=torch.float64, device=pred_sec.device)
            snapped = values[(pred_sec[:, None] - values[None]).abs().argmin(1)]
            for metric in self.grid.values():
                metric.update_seconds(snapped, true_sec)

    def metrics(self) -> dict[str, Metric]:
        """Every metric by its logged name (log them once per epoch: see DiVASModule)."""
        return {**dict(self.clip.items()), **dict(self.context.items()), **dict(self.windows.items()),
                **dict(self.grid.items())}

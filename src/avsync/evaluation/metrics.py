"""Offset accuracy as a ``torchmetrics.Metric``: exact, tolerant, per offset, and a confusion matrix.

Every state is a count reduced with ``sum``, so the value under DDP equals the value on one
process that saw all the data — whatever the sharding, with no gathering of predictions.

Tolerances (exactly one per metric):

* ``classes=k`` — |pred_idx − true_idx| ≤ k (SparseSync/Synchformer: ±1 class of 0.2 s).
* ``frames=(k, fps)`` — |round((pred_s − true_s)·fps)| ≤ k (AVST/VocaLiST: ±1 or ±5 frames).
* ``window_ms=(lo, hi)`` — lo ≤ residual ≤ hi with ``residual = true − predicted`` in ms.
  The residual is the offset a viewer still sees after the prediction has been corrected
  (audio leads > 0, :mod:`avsync.offsets`), so ITU-R BT.1359 windows such as (−125, 45) or
  (−185, 90) apply to it directly. The window is asymmetric: under (−185, 90) a prediction
  100 ms too small leaves the audio leading by 100 ms (rejected), one 100 ms too large leaves it
  lagging by 100 ms (accepted).

Logging from Lightning: by default ``compute()`` returns a dict with tensors of different shapes
(what :meth:`results` always returns). Built with ``score="acc_tol"`` (or ``acc@1``,
``acc_tol_in_sync``, ``acc_tol_random_offset``) the metric computes that one scalar, so a module
logs the metric *object* (``self.log(name, metric)``) and Lightning computes it at epoch end and
resets it; the evaluators of :mod:`avsync.evaluation.evaluators` build their collections so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["Tolerance", "OffsetAccuracy", "SCORES", "tolerance_name"]

# Slack for float comparisons on the window/seconds paths: 1 µs is far below any frame period
# and absorbs offsets given as float32 (e.g. ``OffsetGrid.as_tensor()``).
_SLACK_MS = 1e-3

# the scalars an OffsetAccuracy can compute (``score=``): overall exact / tolerant accuracy, and the
# tolerant accuracy of the clips whose true offset is 0 (in sync) or any other (artificially shifted)
SCORES = ("acc@1", "acc_tol", "acc_tol_in_sync", "acc_tol_random_offset")


@dataclass(frozen=True)
class Tolerance:
    """What counts as "close enough": ±k classes, ±k frames at fps, or a [lo, hi] ms window."""

    kind: str  # "classes" | "frames" | "window_ms"
    k: int = 0
    fps: float = 0.0
    lo_ms: float = 0.0
    hi_ms: float = 0.0

    @classmethod
    def parse(cls, classes: int | None, frames: tuple[int, float] | None,
              window_ms: tuple[float, float] | None) -> "Tolerance":
        given = [name for name, v in (("classes", classes), ("frames", frames),
                                      ("window_ms", window_ms)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one tolerance of classes=k, frames=(k, fps), "
                             f"window_ms=(lo, hi); got {given or 'none'}")
        if classes is not None:
            return cls("classes", k=int(classes))
        if frames is not None:
            return cls("frames", k=int(frames[0]), fps=float(frames[1]))
        lo, hi = (float(x) for x in window_ms)  # type: ignore[union-attr]
        if lo > hi:
            raise ValueError(f"window_ms=(lo, hi) needs lo <= hi, got {window_ms}")
        return cls("window_ms", lo_ms=lo, hi_ms=hi)

    def accepts(self, pred_idx: Tensor, true_idx: Tensor, pred_s: Tensor, true_s: Tensor) -> Tensor:
        """Boolean mask of the tolerated predictions (indices are candidate bins)."""
        if self.kind == "classes":
            return (pred_idx - true_idx).abs() <= self.k
        if self.kind == "frames":
            return torch.round((pred_s - true_s) * self.fps).abs() <= self.k
        residual_ms = (true_s - pred_s) * 1000.0
        return (residual_ms >= self.lo_ms - _SLACK_MS) & (residual_ms <= self.hi_ms + _SLACK_MS)


class OffsetAccuracy(Metric):
    """Accuracy of offset predictions over a fixed list of candidate offsets (seconds).

    ``offsets_sec`` are the candidates, e.g. ``get_grid(21).values`` for classifiers or
    ``FrameShifts(15).offsets_sec(fps)`` for score-search models; index i of a logit row or of
    a target means ``offsets_sec[i]``. ``exact_tol_sec`` is only used by :meth:`update_seconds`:
    a prediction within it of the truth counts as exact (1 ms < half a frame at 60 fps).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, offsets_sec: Sequence[float], *, classes: int | None = None,
                 frames: tuple[int, float] | None = None,
                 window_ms: tuple[float, float] | None = None,
                 exact_tol_sec: float = 1e-3, score: str | None = None,
                 score_dtype: torch.dtype = torch.float64, **kwargs) -> None:
        super().__init__(**kwargs)
        if score is not None and score not in SCORES:
            raise ValueError(f"score must be one of {SCORES} or None, got {score!r}")
        self.score, self.score_dtype = score, score_dtype
        # Python floats, not a buffer: module dtype casts (bf16-true etc.) must not touch them.
        if isinstance(offsets_sec, Tensor):
            offsets_sec = offsets_sec.detach().double().reshape(-1).tolist()
        self.offsets_sec = tuple(float(o) for o in offsets_sec)
        if len(self.offsets_sec) < 1:
            raise ValueError("offsets_sec is empty")
        self.tolerance = Tolerance.parse(classes, frames, window_ms)
        self.exact_tol_sec = float(exact_tol_sec)
        if score in ("acc_tol_in_sync", "acc_tol_random_offset") and 0.0 not in self.offsets_sec:
            raise ValueError(f"score={score!r} needs the in-sync offset 0 among the candidates")
        c = self.num_offsets
        self.add_state("count", torch.zeros(c, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("correct", torch.zeros(c, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("correct_tol", torch.zeros(c, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("confusion", torch.zeros(c, c, dtype=torch.long), dist_reduce_fx="sum")

    @property
    def num_offsets(self) -> int:
        return len(self.offsets_sec)

    # -- updates ------------------------------------------------------------------------
    def update(self, preds: Tensor | None = None, target: Tensor | None = None, *,
               pred_sec: Tensor | None = None, true_sec: Tensor | None = None) -> None:
        """``preds``: logits/scores (B, C) — argmax taken — or indices (B,); ``target``: indices (B,).

        Alternatively ``pred_sec``/``true_sec`` (see :meth:`update_seconds`). Both paths go
        through ``update`` so that torchmetrics' bookkeeping (update count, cached result) holds.
        """
        if pred_sec is not None or true_sec is not None:
            if preds is not None or target is not None or pred_sec is None or true_sec is None:
                raise ValueError("give either (preds, target) or (pred_sec, true_sec)")
            self._update_from_seconds(pred_sec, true_sec)
        elif preds is None or target is None:
            raise ValueError("update needs preds and target")
        else:
            self._update_from_indices(preds, target)

    def update_seconds(self, pred_sec: Tensor, true_sec: Tensor) -> None:
        """Predictions and truths in seconds, for models whose candidates vary per clip.

        Tolerances are judged on the seconds (``classes=k`` on the nearest-candidate bins);
        per-offset counts and the confusion matrix use the nearest candidate of each.
        """
        self.update(pred_sec=pred_sec, true_sec=true_sec)

    def _update_from_indices(self, preds: Tensor, target: Tensor) -> None:
        pred_idx = self._pred_indices(preds)
        true_idx = self._check_indices(target, "target")
        if pred_idx.shape != true_idx.shape:
            raise ValueError(f"preds give {pred_idx.numel()} predictions, target {true_idx.numel()}")
        table = self._table(true_idx.device)
        tol = self.tolerance.accepts(pred_idx, true_idx, table[pred_idx], table[true_idx])
        self._accumulate(true_idx, pred_idx, pred_idx == true_idx, tol)

    def _update_from_seconds(self, pred_sec: Tensor, true_sec: Tensor) -> None:
        pred_s = torch.as_tensor(pred_sec).detach().reshape(-1).to(torch.float64)
        true_s = torch.as_tensor(true_sec).detach().reshape(-1).to(torch.float64)
        if pred_s.shape != true_s.shape:
            raise ValueError(f"{pred_s.numel()} predictions for {true_s.numel()} truths")
        table = self._table(true_s.device)
        pred_idx, true_idx = self._nearest(pred_s, table), self._nearest(true_s, table)
        exact = (pred_s - true_s).abs() <= self.exact_tol_sec
        tol = self.tolerance.accepts(pred_idx, true_idx, pred_s, true_s)
        self._accumulate(true_idx, pred_idx, exact, tol)

    def _accumulate(self, true_idx: Tensor, pred_idx: Tensor, exact: Tensor, tol: Tensor) -> None:
        # bincount without weights is deterministic on CUDA as well
        c = self.num_offsets
        self.count += torch.bincount(true_idx, minlength=c)
        self.correct += torch.bincount(true_idx[exact], minlength=c)
        self.correct_tol += torch.bincount(true_idx[tol], minlength=c)
        self.confusion += torch.bincount(true_idx * c + pred_idx, minlength=c * c).view(c, c)

    # -- result -------------------------------------------------------------------------
    def compute(self) -> dict[str, Tensor] | Tensor:
        """The scalar ``score`` (as ``score_dtype``) when one was chosen, else :meth:`results`' dict."""
        result = self._result()
        if self.score is None:
            return result
        if self.score in ("acc@1", "acc_tol"):
            return result[self.score].to(self.score_dtype)
        zero = self.offsets_sec.index(0.0)
        count, tol = self.count.double(), self.correct_tol.double()
        if self.score == "acc_tol_in_sync":
            return (tol[zero] / count[zero]).to(self.score_dtype)
        return ((tol.sum() - tol[zero]) / (count.sum() - count[zero])).to(self.score_dtype)

    def results(self) -> dict[str, Tensor]:
        """Every number of the metric, states summed across processes: ``acc@1``, ``acc_tol``
        (scalars), ``per_offset_acc@1``, ``per_offset_acc_tol`` (length C, NaN where no sample had
        that true offset) and ``confusion`` (true × pred); per class for a class-counting metric."""
        with self.sync_context(should_sync=self.sync_on_compute):
            return self._result()

    def _result(self) -> dict[str, Tensor]:
        total = self.count.sum().double()
        return {
            "acc@1": self.correct.sum().double() / total,
            "acc_tol": self.correct_tol.sum().double() / total,
            "per_offset_acc@1": self.correct.double() / self.count.double(),
            "per_offset_acc_tol": self.correct_tol.double() / self.count.double(),
            "confusion": self.confusion.clone(),
        }

    # -- helpers ------------------------------------------------------------------------
    def _table(self, device: torch.device) -> Tensor:
        return torch.tensor(self.offsets_sec, dtype=torch.float64, device=device)

    @staticmethod
    def _nearest(seconds: Tensor, table: Tensor) -> Tensor:
        return (seconds[:, None] - table[None, :]).abs().argmin(dim=1)

    def _pred_indices(self, preds: Tensor) -> Tensor:
        if preds.ndim == 2:
            if preds.shape[1] != self.num_offsets:
                raise ValueError(f"preds have {preds.shape[1]} scores per row, "
                                 f"metric has {self.num_offsets} offsets")
            return preds.detach().argmax(dim=1)
        return self._check_indices(preds, "preds")

    def _check_indices(self, idx: Tensor, name: str) -> Tensor:
        if idx.ndim != 1 or idx.dtype.is_floating_point or idx.dtype == torch.bool:
            raise ValueError(f"{name} must be integer indices of shape (B,), got "
                             f"{tuple(idx.shape)} {idx.dtype}")
        idx = idx.detach().long()
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.num_offsets):
            raise ValueError(f"{name} indices outside 0..{self.num_offsets - 1}")
        return idx


def tolerance_name(window_ms: Sequence[float]) -> str:
    """``acc@±40ms``, ``acc@-125+45ms``: the metric name of a residual window."""
    lo, hi = (float(v) for v in window_ms)
    if lo == -hi:
        return f"acc@±{hi:g}ms"
    return f"acc@{lo:+g}{hi:+g}ms"

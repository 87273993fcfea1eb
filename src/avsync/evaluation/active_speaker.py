"""Active speaker detection with a sync model (DiVAS §5.6, SyncNet): a face speaks if it syncs.

For each supplied face crop (a track of the same scene), the score search against the scene's
audio gives an offset and a confidence (median − min of the window-averaged distances). A
speaker's lips show a clear distance minimum at one offset (high confidence); a listener's or
an off-screen voice's do not (DiVAS Fig. 2: 7.08 vs 1.39). A confidence threshold — a property
of the model, calibrated on labelled data with :func:`best_threshold` — turns it into a decision;
F1 is the paper's metric (Table 6).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torchmetrics.classification import BinaryF1Score

from avsync.evaluation.score_search import PairScorer, predict_offsets, shift_scores

__all__ = ["SpeakerDecision", "crop_confidence", "detect_active_speakers", "asd_f1", "best_threshold"]


@dataclass
class SpeakerDecision:
    offset_frames: int
    confidence: float
    speaking: bool


def crop_confidence(scorer: PairScorer, frames: Tensor, wav: Tensor, *, fps: float, sample_rate: int,
                    window_frames: int, max_shift: int = 15, batch_windows: int = 64) -> tuple[int, float]:
    """Clip-level offset (frames) and confidence of one face crop track against the scene audio."""
    scores = shift_scores(scorer, frames, wav, fps=fps, sample_rate=sample_rate, window_frames=window_frames,
                          max_shift=max_shift, batch_windows=batch_windows)
    offset, confidence = predict_offsets(scores, context=len(scores))
    return int(offset[0]), float(confidence[0])


def detect_active_speakers(scorer: PairScorer, crops: Sequence[Tensor], wav: Tensor, *, threshold: float,
                           **search) -> list[SpeakerDecision]:
    """One decision per face crop (T, H, W, 3) uint8 of the scene whose audio is ``wav``."""
    if not crops:
        raise ValueError("detect_active_speakers needs at least one face crop")
    decisions = []
    for frames in crops:
        offset, confidence = crop_confidence(scorer, frames, wav, **search)
        decisions.append(SpeakerDecision(offset, confidence, confidence >= threshold))
    return decisions


def asd_f1(confidence: Sequence[float] | Tensor, speaking: Sequence[bool] | Tensor, threshold: float) -> float:
    """F1 of "speaking" decisions (confidence >= threshold) against the labels (torchmetrics)."""
    conf = torch.as_tensor(confidence, dtype=torch.float64).reshape(-1)
    labels = torch.as_tensor(speaking).reshape(-1).long()
    if conf.shape != labels.shape:
        raise ValueError(f"{conf.numel()} confidences for {labels.numel()} labels")
    metric = BinaryF1Score(threshold=0.5)
    return float(metric((conf >= threshold).long(), labels))


def best_threshold(confidence: Sequence[float] | Tensor, speaking: Sequence[bool] | Tensor) -> float:
    """The confidence threshold with the highest F1 on labelled crops (midpoints between values)."""
    conf = torch.as_tensor(confidence, dtype=torch.float64).reshape(-1).sort().values
    if conf.numel() == 0:
        raise ValueError("best_threshold needs labelled confidences")
    candidates = torch.cat([conf[:1] - 1, (conf[1:] + conf[:-1]) / 2, conf[-1:] + 1]).tolist()
    return max(candidates, key=lambda t: (asd_f1(confidence, speaking, t), -abs(t)))

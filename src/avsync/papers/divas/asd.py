"""Active speaker detection as an evaluation of a trained DiVAS (paper §5.6, Table 6; toy edition).

DiVAS decides whether a face speaks from its sync confidence (median − min of the window-averaged
distances, :mod:`avsync.evaluation.active_speaker`): a speaker's lips give a clear minimum, a
listener's or an off-screen voice's do not. The paper's test set (film/TV scenes with speakers,
listeners and off-screen voices) is private; this protocol builds such scenes from any evaluation
batch instead:

* each clip's own face with its own audio is a **speaker** (positive);
* the face of *another* clip of the batch (the next one) against the same audio is a
  **non-speaker** (negative: a person who is not the voice).

The decision threshold is a property of the model, calibrated with
:func:`~avsync.evaluation.active_speaker.best_threshold` on the validation split (never on test)
before the test starts; F1 / precision / recall are torchmetrics (their states sum across DDP
ranks). Calibration reads the whole validation split on every rank, so every rank gets the same
threshold.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.aggregation import CatMetric
from torchmetrics.classification import BinaryF1Score, BinaryPrecision, BinaryRecall

from avsync.evaluation.active_speaker import best_threshold

__all__ = ["speaker_pairs", "ActiveSpeakerEvaluation"]

Confidences = Callable[[Tensor, Tensor, dict], Tensor]


def speaker_pairs(video: Tensor, audio: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(faces, audio, speaking) for a batch of B clips: B own faces (speaking) then B faces of the
    next clip (``roll``) against the same audio (not speaking). Needs B >= 2."""
    if len(video) != len(audio):
        raise ValueError(f"{len(video)} video clips for {len(audio)} audio clips")
    if len(video) < 2:
        raise ValueError("active speaker evaluation pairs each clip's audio with another clip's face: "
                         f"a batch needs at least 2 clips, got {len(video)} (raise the data module's batch_size)")
    faces = torch.cat([video, video.roll(-1, dims=0)])
    speaking = torch.cat([torch.ones(len(video), dtype=torch.long), torch.zeros(len(video), dtype=torch.long)])
    return faces, torch.cat([audio, audio]), speaking.to(video.device)


class ActiveSpeakerEvaluation(nn.Module):
    """Calibration (validation) and F1 / precision / recall (test) of speaking decisions.

    Args:
        threshold: a fixed confidence threshold; ``None`` calibrates it on the validation split.
    """

    def __init__(self, threshold: float | None = None):
        super().__init__()
        self.fixed_threshold = None if threshold is None else float(threshold)
        self.threshold: float | None = self.fixed_threshold
        self.calibration = nn.ModuleDict({"confidence": CatMetric(), "speaking": CatMetric()})
        self.decisions = MetricCollection({"asd_f1": BinaryF1Score(), "asd_precision": BinaryPrecision(),
                                           "asd_recall": BinaryRecall()})

    # -- calibration --------------------------------------------------------------------------
    def collect(self, confidence: Tensor, speaking: Tensor) -> None:
        """Labelled confidences for the calibration (a validation batch)."""
        self.calibration["confidence"].update(confidence.double())
        self.calibration["speaking"].update(speaking.double())

    def calibrate(self) -> tuple[float, float]:
        """Threshold with the best F1 on the collected confidences (kept unless it is fixed);
        returns (threshold, F1 at it on the calibration data). States sync across ranks."""
        if not self.calibration["confidence"].update_called:
            raise RuntimeError("no labelled confidences collected: the validation split is empty")
        confidence = self.calibration["confidence"].compute().reshape(-1).cpu()
        speaking = self.calibration["speaking"].compute().reshape(-1).cpu().long()
        for metric in self.calibration.values():
            metric.reset()
        threshold = best_threshold(confidence, speaking)
        if self.fixed_threshold is None:
            self.threshold = threshold
        f1 = BinaryF1Score()((confidence >= self.threshold).long(), speaking)
        return self.threshold, float(f1)

    def calibrate_on(self, batches: Iterable[dict], confidences: Confidences) -> tuple[float, float]:
        """Collect every batch of a (validation) loader through ``confidences`` and calibrate."""
        for batch in batches:
            faces, audio, speaking = speaker_pairs(batch["video"], batch["audio"])
            self.collect(confidences(faces, audio, batch), speaking)
        return self.calibrate()

    # -- test -----------------------------------------------------------------------------------
    def update(self, confidence: Tensor, speaking: Tensor) -> None:
        if self.threshold is None:
            raise RuntimeError("no ASD threshold: calibrate on labelled data first or pass a fixed threshold")
        self.decisions.update((confidence >= self.threshold).long(), speaking.long())

    def compute(self) -> dict[str, Tensor]:
        """F1 / precision / recall of the decisions so far (a module logs ``self.decisions`` instead:
        Lightning computes and resets the metric objects)."""
        return self.decisions.compute()

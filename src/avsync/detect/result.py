"""The answer for one file: the offset with its sign spelled out, a confidence, the runners-up."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Detection", "describe_offset", "detection_from_curve"]

_IN_SYNC_SEC = 1e-6


def describe_offset(offset_sec: float) -> str:
    """docs/conventions.md in words: Δ > 0 "audio leads by Δ s", Δ < 0 "audio lags by |Δ| s", 0 "in sync"."""
    if abs(offset_sec) < _IN_SYNC_SEC:
        return "in sync"
    return f"audio {'leads' if offset_sec > 0 else 'lags'} by {abs(offset_sec):.2f} s"


@dataclass
class Detection:
    """``offset_sec`` (+ = audio leads), its ``confidence`` (a mean probability for grid
    classifiers, SyncNet's max − median score for score-search models: ``confidence_kind``), and
    the next three candidates as (offset_sec, score) pairs."""

    path: str
    offset_sec: float
    confidence: float
    confidence_kind: str
    alternatives: list[tuple[float, float]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return describe_offset(self.offset_sec)

    def line(self) -> str:
        alts = ", ".join(f"{o:+.2f} s ({s:.3g})" for o, s in self.alternatives)
        return (f"{self.path}: {self.verdict} (offset {self.offset_sec:+.2f} s, + = audio leads); "
                f"confidence {self.confidence:.3g} ({self.confidence_kind}); alternatives: {alts}")

    def as_dict(self) -> dict:
        return {"path": self.path, "offset_sec": self.offset_sec, "verdict": self.verdict,
                "confidence": self.confidence, "confidence_kind": self.confidence_kind,
                "alternatives": [{"offset_sec": o, "score": s} for o, s in self.alternatives]}


def detection_from_curve(path: str, offsets_sec: np.ndarray, curve: np.ndarray, best: int, confidence: float,
                         confidence_kind: str, alternatives: int = 3) -> Detection:
    """The detection whose offset is ``offsets_sec[best]``; alternatives are the next best of ``curve``."""
    order = [int(i) for i in np.argsort(-curve, kind="stable") if int(i) != best][:alternatives]
    return Detection(str(path), float(offsets_sec[best]) + 0.0, float(confidence), confidence_kind,
                     [(float(offsets_sec[i]) + 0.0, float(curve[i])) for i in order])

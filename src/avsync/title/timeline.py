"""Title-level synchronisation verdict from clip predictions (DiVAS §4.4): pure logic, no media.

A title (film, episode) is cut into clips; each clip gets an offset and a confidence. Clips with
low confidence (no visible speaker, off-screen dialogue) are dropped, a RANSAC line
``offset(t) = intercept + slope·t`` is fitted to the rest, and its slope and level say which of
the real-world sync issues the title has:

* ``in sync`` — the line stays inside the sync window all along;
* ``constant lead`` / ``constant lag`` — flat, but away from 0 (audio early / late, docs/conventions.md sign);
* ``drift early`` / ``drift late`` — the offset changes over the title by more than ``drift_ms``
  (audio becoming earlier / later);
* ``intermittent`` — no line explains enough of the clips.

The verdict's confidence is the agreement: the share of kept clips that are RANSAC inliers.
Thresholds default to the title's frame period (predictions come in whole frames).
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["TitleThresholds", "LineFit", "TitleVerdict", "ransac_line", "keep_confident", "classify_title",
           "VERDICTS"]

VERDICTS = ("in sync", "constant lead", "constant lag", "drift early", "drift late", "intermittent", "undetermined")


@dataclass(frozen=True)
class TitleThresholds:
    """What counts as agreement, sync and drift (ms), and which clips are confident enough.

    ``min_confidence`` is absolute (model units); None keeps clips whose confidence is at least
    ``relative_confidence`` x the median confidence of the title, which works for any model scale.
    """

    inlier_ms: float = 40.0
    sync_window_ms: tuple[float, float] = (-20.0, 20.0)
    drift_ms: float = 40.0
    min_agreement: float = 0.6
    min_clips: int = 3
    min_confidence: float | None = None
    relative_confidence: float = 0.5
    ransac_iterations: int = 500
    seed: int = 0

    @classmethod
    def for_fps(cls, fps: float, **overrides) -> "TitleThresholds":
        """One frame period of agreement and drift, ± half a frame of sync (40 / ±20 ms at 25 fps)."""
        frame_ms = 1000.0 / float(fps)
        base = dict(inlier_ms=frame_ms, sync_window_ms=(-frame_ms / 2, frame_ms / 2), drift_ms=frame_ms)
        return cls(**{**base, **overrides})


@dataclass
class LineFit:
    intercept_ms: float
    slope_ms_per_sec: float
    inliers: np.ndarray  # bool per point

    def __call__(self, t_sec) -> np.ndarray:
        return self.intercept_ms + self.slope_ms_per_sec * np.asarray(t_sec, dtype=np.float64)


@dataclass
class TitleVerdict:
    kind: str
    agreement: float
    offset_ms: float | None           # mean level of the line over the kept clips
    start_offset_ms: float | None     # the line at the first and last kept clip
    end_offset_ms: float | None
    slope_ms_per_min: float | None
    kept: np.ndarray = field(repr=False)      # bool per clip: confident enough
    inlier: np.ndarray = field(repr=False)    # bool per clip: kept and explained by the line

    def as_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("kept", "inlier")}
        out["kept"], out["inlier"] = self.kept.tolist(), self.inlier.tolist()
        return out


def _least_squares(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(t) < 2 or np.ptp(t) == 0:
        return float(np.mean(y)), 0.0
    slope, intercept = np.polyfit(t, y, 1)
    return float(intercept), float(slope)


def ransac_line(t_sec, offsets_ms, inlier_ms: float, iterations: int = 500, seed: int = 0) -> LineFit:
    """RANSAC over point pairs (all pairs when there are few, else ``iterations`` random ones);
    most inliers wins, ties go to the smaller inlier residual; the winner is refitted on its inliers."""
    t = np.asarray(t_sec, dtype=np.float64)
    y = np.asarray(offsets_ms, dtype=np.float64)
    if t.shape != y.shape or t.ndim != 1:
        raise ValueError(f"times and offsets must be 1-D of one length, got {t.shape} and {y.shape}")
    if len(t) == 0:
        raise ValueError("RANSAC needs at least one point")
    pairs = list(itertools.combinations(range(len(t)), 2))
    if len(pairs) > iterations:
        rng = np.random.default_rng(seed)
        pairs = [tuple(rng.choice(len(t), 2, replace=False)) for _ in range(iterations)]
    candidates = [(float(y[0]), 0.0)] if not pairs else []
    for i, j in pairs:
        slope = 0.0 if t[i] == t[j] else (y[j] - y[i]) / (t[j] - t[i])
        candidates.append((y[i] - slope * t[i], slope))
    best, best_key = None, None
    for intercept, slope in candidates:
        residual = np.abs(y - (intercept + slope * t))
        inliers = residual <= inlier_ms
        key = (int(inliers.sum()), -float(residual[inliers].sum()))
        if best_key is None or key > best_key:
            best, best_key = inliers, key
    intercept, slope = _least_squares(t[best], y[best])
    inliers = np.abs(y - (intercept + slope * t)) <= inlier_ms
    return LineFit(intercept, slope, inliers)


def keep_confident(confidence, thresholds: TitleThresholds) -> np.ndarray:
    """Bool mask of the clips confident enough to take part in the fit."""
    c = np.asarray(confidence, dtype=np.float64)
    if len(c) == 0:
        return np.zeros(0, dtype=bool)
    if thresholds.min_confidence is not None:
        return c >= thresholds.min_confidence
    return c >= thresholds.relative_confidence * max(float(np.median(c)), 0.0)


def classify_title(t_sec, offsets_ms, confidence, thresholds: TitleThresholds = TitleThresholds()) -> TitleVerdict:
    """The title's verdict from per-clip times (s), offsets (ms, + = audio leads) and confidences."""
    t = np.asarray(t_sec, dtype=np.float64)
    y = np.asarray(offsets_ms, dtype=np.float64)
    kept = keep_confident(confidence, thresholds)
    if not (len(t) == len(y) == len(kept)):
        raise ValueError(f"{len(t)} times, {len(y)} offsets and {len(kept)} confidences")
    inlier = np.zeros(len(t), dtype=bool)
    if kept.sum() < thresholds.min_clips:
        return TitleVerdict("undetermined", 0.0, None, None, None, None, kept, inlier)
    fit = ransac_line(t[kept], y[kept], thresholds.inlier_ms, thresholds.ransac_iterations, thresholds.seed)
    inlier[np.flatnonzero(kept)[fit.inliers]] = True
    agreement = float(fit.inliers.mean())
    tk = t[kept]
    start, end = float(fit(tk.min())), float(fit(tk.max()))
    level = float(fit(tk).mean())
    numbers = (level, start, end, fit.slope_ms_per_sec * 60.0)
    if agreement < thresholds.min_agreement:
        return TitleVerdict("intermittent", agreement, *numbers, kept, inlier)
    change = end - start
    lo, hi = thresholds.sync_window_ms
    if abs(change) > thresholds.drift_ms:
        kind = "drift early" if change > 0 else "drift late"
    elif lo <= level <= hi:
        kind = "in sync"
    else:
        kind = "constant lead" if level > 0 else "constant lag"
    return TitleVerdict(kind, agreement, *numbers, kept, inlier)

"""The sync-score timeline of a long file (AVST Fig. 7): a moving window of the model's input length.

Every window gets a score over the candidate offsets, its best offset and a confidence, all
through the detector's own scoring and file-level decision
(:meth:`~avsync.detect.detectors.GridDetector.file_prediction` /
:meth:`~avsync.detect.detectors.ScoreSearchDetector.file_prediction` applied to the window's rows),
so a window is decided exactly as a file of that length would be.

* Grid classifiers (SparseSync, Synchformer): one crop of the model's length every ``hop_sec``;
  the window length is the model's input and cannot be changed.
* Score search (AVST, VocaLiST, SyncNet, DiVAS): the file's per-frame rows (one visual window of
  ``window_frames`` against every shift) are computed once; a timeline window of L frames holds
  the rows whose visual window and shifted audio both fall inside it, i.e. the rows a search on
  that L-frame cut would give. L defaults to the model's input (``input_spec.duration_sec``), at
  least ``window_frames + 2·max_shift`` frames.

Windows start every ``hop_sec`` exactly on average: window k starts at the frame nearest
k x hop_sec (:func:`~avsync.detect.detectors.frame_starts`); at 25 fps a 0.5 s hop (12.5 frames)
gives starts 0, 0.52, 1.0, 1.52, 2.0 ... s, and the reported hop is the 0.5 s asked for.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsync.detect.detectors import OffsetScores, frame_starts

__all__ = ["DEFAULT_HOP_SEC", "Timeline", "timeline"]

DEFAULT_HOP_SEC = 0.5


@dataclass
class Timeline:
    """``rows[i, j]``: score of candidate ``offsets_sec[j]`` in window i (``starts_sec[i]`` to
    ``starts_sec[i] + window_sec``); ``best_sec[i]`` and ``confidence[i]``: that window's decision."""

    offsets_sec: np.ndarray
    starts_sec: np.ndarray
    window_sec: float
    hop_sec: float
    rows: np.ndarray
    best_sec: np.ndarray
    confidence: np.ndarray
    kind: str  # "probability" or "score", as OffsetScores

    @property
    def centres_sec(self) -> np.ndarray:
        return self.starts_sec + self.window_sec / 2

    def windows(self) -> list[dict]:
        """One dict per window (JSON-ready): start, end, best offset, confidence."""
        return [{"start_sec": round(float(s), 4), "end_sec": round(float(s) + self.window_sec, 4),
                 "offset_sec": float(b) + 0.0, "confidence": float(c)}
                for s, b, c in zip(self.starts_sec, self.best_sec, self.confidence)]

    def as_dict(self) -> dict:
        return {"window_sec": self.window_sec, "hop_sec": self.hop_sec, "score_kind": self.kind,
                "windows": self.windows()}

    def write_csv(self, path: str | Path) -> Path:
        """start_sec, end_sec, offset_sec, confidence, then the score of every candidate offset."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["start_sec", "end_sec", "offset_sec", "confidence",
                             *(f"score@{o:+.3f}" for o in self.offsets_sec)])
            for window, row in zip(self.windows(), self.rows):
                writer.writerow([window["start_sec"], window["end_sec"], window["offset_sec"],
                                 f"{window['confidence']:.6g}", *(f"{v:.6g}" for v in row)])
        return path


def timeline(detector, decoded: tuple, scores: OffsetScores, window_sec: float | None = None,
             hop_sec: float | None = None, progress: bool = False) -> Timeline:
    """The moving-window timeline of a decoded file; ``scores`` are the detector's rows of the
    whole file (``detect_file``'s), reused by score-search models. Raises ValueError for a window
    a grid classifier cannot take, ClipTooShortForSearch for a file shorter than one window."""
    hop_sec = float(hop_sec or DEFAULT_HOP_SEC)
    if hop_sec <= 0:
        raise ValueError(f"the timeline hop must be positive, got {hop_sec}")
    if detector.kind == "probability":
        return _grid_timeline(detector, decoded, window_sec, hop_sec, progress)
    return _search_timeline(detector, decoded, scores, window_sec, hop_sec)


def _decide(detector, sub: OffsetScores) -> tuple[np.ndarray, float, float]:
    best, confidence = detector.file_prediction(sub)
    return sub.file_curve(), float(sub.offsets_sec[best]), confidence


def _grid_timeline(detector, decoded: tuple, window_sec: float | None, hop_sec: float,
                   progress: bool = False) -> Timeline:
    length = detector.spec.duration_sec
    if window_sec is not None and abs(window_sec - length) > 1e-6:
        raise ValueError(f"a grid classifier scores crops of its input length ({length:g} s); "
                         f"a {window_sec:g} s timeline window does not apply to it")
    crops = detector.scores(*decoded, hop_sec=hop_sec, max_crops=None, progress=progress)
    decided = [_decide(detector, OffsetScores(crops.offsets_sec, crops.times_sec[i:i + 1], crops.rows[i:i + 1],
                                              crops.kind)) for i in range(len(crops.rows))]
    return _assemble(crops.offsets_sec, crops.times_sec - length / 2, length, hop_sec, decided, crops.kind)


def _search_timeline(detector, decoded: tuple, scores: OffsetScores, window_sec: float | None,
                     hop_sec: float) -> Timeline:
    setup, fps = detector.setup, detector.setup.fps
    num_frames = len(decoded[0])
    shortest = setup.window_frames + 2 * setup.max_shift
    length = round((window_sec or detector.spec.duration_sec) * fps)
    length = min(max(length, shortest), num_frames)
    width = length - shortest + 1  # rows inside one timeline window
    starts = frame_starts(len(scores.rows) - width, hop_sec, fps)
    decided = [_decide(detector, OffsetScores(scores.offsets_sec, scores.times_sec[s:s + width],
                                              scores.rows[s:s + width], scores.kind)) for s in starts]
    return _assemble(scores.offsets_sec, np.asarray(starts) / fps, length / fps, hop_sec, decided, scores.kind)


def _assemble(offsets_sec, starts_sec, window_sec, hop_sec, decided, kind) -> Timeline:
    rows, best, confidence = zip(*decided)
    return Timeline(np.asarray(offsets_sec, dtype=np.float64), np.asarray(starts_sec, dtype=np.float64),
                    float(window_sec), float(hop_sec), np.stack(rows), np.asarray(best), np.asarray(confidence),
                    kind)

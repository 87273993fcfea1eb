"""Detecting the offset of one file: decode, the unsynchronisable checks, the detector's scores and
its answer, and the corrected copy. Shared by ``avsync detect`` (:mod:`avsync.detect.cli`), ``avsync
score`` and the per-face-track detection (:mod:`avsync.detect.face_tracks`)."""
from __future__ import annotations

import sys
from pathlib import Path

from avsync.detect.decoding import decode_for_detector
from avsync.detect.detectors import OffsetScores
from avsync.detect.result import Detection, detection_from_curve
from avsync.media import MediaError, probe, shift_audio_copy, unsynchronisable_reason

__all__ = ["detect_file", "detect_decoded", "write_corrected", "LONG_FILE_SEC"]

#: files longer than this (seconds) show what is happening on stderr: decoding, then a progress bar
LONG_FILE_SEC = 60.0


def detect_file(detector, path: str | Path, *, max_crops: int | None = 8, progress: bool = False
                ) -> tuple[Detection, OffsetScores, tuple]:
    """(detection, the window scores behind it, the decoded (frames, wav)) of one file; with
    ``progress``, a long file says it is decoding and shows a bar while it is scored."""
    if progress:
        seconds = probe(path).duration_sec
        progress = seconds > LONG_FILE_SEC
        if progress:
            print(f"avsync detect: {path}: {seconds:.0f} s, decoding ...", file=sys.stderr, flush=True)
    frames, wav = decode_for_detector(path, detector)
    detection, scores = detect_decoded(detector, path, frames, wav, max_crops=max_crops, progress=progress)
    return detection, scores, (frames, wav)


def detect_decoded(detector, path: str | Path, frames, wav, *, max_crops: int | None = 8, progress: bool = False
                   ) -> tuple[Detection, OffsetScores]:
    """:func:`detect_file` on a file already decoded by ``decode_for_detector`` (``avsync score``
    decodes in worker processes ahead of the model). Unsynchronisable input (silent, still, too
    short) raises a :class:`MediaError` with its reason code instead of getting an offset."""
    spec = detector.spec
    # grid classifiers need one crop of their length; score search says itself what it lacks
    min_seconds = spec.duration_sec if detector.kind == "probability" else 0.0
    reason = unsynchronisable_reason(frames.numpy(), wav.numpy(), spec.sample_rate, min_seconds, spec.fps)
    if reason is not None:
        raise MediaError(path, f"{reason.replace('_', ' ')}: nothing to synchronise, no offset given")
    scores = detector.scores(frames, wav, max_crops=max_crops, progress=progress)
    best, confidence = detector.file_prediction(scores)
    kind = "mean probability" if scores.kind == "probability" else "max - median score"
    detection = detection_from_curve(str(path), scores.offsets_sec, scores.file_curve(), best, confidence, kind)
    return detection, scores


def write_corrected(video: str | Path, out: str | Path, offset_sec: float) -> Path:
    """A copy whose audio is moved back by the detected offset (Δ > 0: the audio led, so it is
    delayed by Δ; :func:`~avsync.media.shift_audio_copy` with −Δ)."""
    return shift_audio_copy(video, out, -offset_sec)



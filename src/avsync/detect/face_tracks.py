"""Face-crop models in ``avsync detect`` and ``avsync score``: one detection per face track.

Each track of the file (:func:`avsync.faces.model_input.decode_face_clips`) is decided exactly as
a file of its own (:func:`avsync.detect.cli.detect_decoded`), on its crops and the audio under its
frames. Each track also gets the suite's active-speaker decision (:mod:`avsync.evaluation.
active_speaker`: a face speaks when its lips sync with the audio): the score is the track's
search confidence (max − median of the window-averaged scores, which for SyncNet is LSE-C), and
the face speaks when it reaches ``threshold`` — given by the caller or calibrated into the model
(DiVAS ``asd_threshold`` / ``asd_calibration``); with no threshold the flag stays empty. The
file's own answer is the track with the highest score (the face whose lips sync best).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avsync.detect.detectors import OffsetScores
from avsync.detect.result import Detection
from avsync.faces.model_input import FaceOptions, FaceTrackClip, decode_face_clips, uses_faces

__all__ = ["TrackDetection", "asd_threshold_of", "detect_tracks", "active_track", "wants_faces"]


@dataclass
class TrackDetection:
    clip: FaceTrackClip
    detection: Detection
    scores: OffsetScores  # times on the track's own clock (0 = its first frame)
    threshold: float | None = None

    @property
    def speaking_score(self) -> float:
        return self.detection.confidence

    @property
    def speaking(self) -> bool | None:
        return None if self.threshold is None else bool(self.speaking_score >= self.threshold)

    def line(self) -> str:
        flag = "" if self.speaking is None else (" - speaking" if self.speaking else " - not speaking")
        return f"{self.detection.line()}{flag}"

    def as_dict(self) -> dict:
        """The track's span, its detection and its active-speaker score and flag (JSON-ready)."""
        return {**self.clip.span(), **self.detection.as_dict(), "speaking_score": self.speaking_score,
                "speaking": self.speaking, "asd_threshold": self.threshold}


def wants_faces(detector, options: FaceOptions | None) -> bool:
    """Face tracks for this detector: its model takes face crops and faces are not switched off."""
    return uses_faces(detector.spec) and (options is None or options.enabled)


def asd_threshold_of(module, given: float | None = None) -> float | None:
    """The active-speaker threshold: ``given``, else the one calibrated into the model, else None."""
    if given is not None:
        return float(given)
    calibration = getattr(module, "asd_calibration", None)
    if calibration and calibration.get("threshold") is not None:
        return float(calibration["threshold"])
    hparams = getattr(module, "hparams", {}) or {}
    value = hparams.get("asd_threshold") if hasattr(hparams, "get") else None
    return None if value is None else float(value)


def detect_tracks(detector, path: str | Path, options: FaceOptions = FaceOptions(), *,
                  max_crops: int | None = 8, threshold: float | None = None,
                  face_detector=None, skipped: list | None = None) -> list[TrackDetection]:
    """One :class:`TrackDetection` per face track of ``path`` (MediaError ``no_face`` when none). A
    track that cannot be scored (still, too short) is left out, with its reason appended to
    ``skipped``; when no track can be scored, the first track's error is raised."""
    from avsync.detect.run import detect_decoded

    from avsync.media import MediaError
    from avsync.evaluation.score_search import ClipTooShortForSearch

    threshold = asd_threshold_of(detector.module, threshold)
    out, failed = [], []
    clips = decode_face_clips(path, detector, options, face_detector)
    for clip in clips:
        label = f"{path} [face {clip.index}, {clip.start_sec:.2f}-{clip.end_sec:.2f} s]"
        try:
            detection, scores = detect_decoded(detector, label, clip.frames, clip.wav, max_crops=max_crops)
        except (MediaError, ClipTooShortForSearch) as err:  # a still or too short track: the others count
            failed.append(err)
            if skipped is not None:
                code = err.code if isinstance(err, MediaError) else "too_short"
                skipped.append({**clip.span(), "status": "failed", "reason": code,
                                "message": " ".join(str(getattr(err, "reason", err)).split())})
            if len(failed) == len(clips):
                raise
            continue
        out.append(TrackDetection(clip, detection, scores, threshold))
    return out


def active_track(tracks: list[TrackDetection]) -> TrackDetection:
    """The track whose lips sync best with the audio (highest active-speaker score)."""
    return max(tracks, key=lambda t: t.speaking_score)


def _suffixed(path: Path, index: int) -> Path:
    return path.with_name(f"{path.stem}_face{index}{path.suffix}")


def face_file_record(detector, video: str | Path, options: FaceOptions, *, threshold: float | None,
                     max_crops: int | None, plot: Path | None = None, timeline_png: Path | None = None,
                     timeline_window: float | None = None, timeline_hop: float | None = None,
                     corrected: Path | None = None, echo=print) -> dict:
    """``avsync detect`` on a face-crop model: a line per track, the JSON record of the file (the
    active track's detection, every track under ``tracks``), the plot of the active track, a
    timeline per track (``<name>_face<i>.png`` / ``.csv``, windows on the file's timeline, each with
    its active-speaker score and flag) and the copy corrected by the active track's offset."""
    from avsync.detect.run import write_corrected
    from avsync.detect.plots import save, score_curve_figure, timeline_figure
    from avsync.detect.timeline import timeline

    skipped: list[dict] = []
    tracks = detect_tracks(detector, video, options, max_crops=max_crops, threshold=threshold, skipped=skipped)
    best = active_track(tracks)
    for t in tracks:
        echo(t.line())
    for s in skipped:
        echo(f"{video} [face {s['track']}, {s['start_sec']:.2f}-{s['end_sec']:.2f} s]: {s['message']}")
    record = {"status": "ok", **best.detection.as_dict(), "path": str(video), "active_track": best.clip.index,
              "tracks": [t.as_dict() for t in tracks]}
    if plot is not None:
        record["plot"] = str(save(score_curve_figure(best.scores, best.detection), plot))
    if timeline_png is not None:
        for t, entry in zip(tracks, record["tracks"]):
            line = timeline(detector, (t.clip.frames, t.clip.wav), t.scores, timeline_window, timeline_hop)
            line.starts_sec = line.starts_sec + t.clip.start_sec  # back on the file's timeline
            png = save(timeline_figure(line, t.detection), _suffixed(timeline_png, t.clip.index))
            data = {"csv": str(line.write_csv(png.with_suffix(".csv"))), **line.as_dict()}
            for window, conf in zip(data["windows"], line.confidence):
                window["speaking"] = None if t.threshold is None else bool(conf >= t.threshold)
            entry["timeline"], entry["timeline_data"] = str(png), data
    record["tracks"] = sorted(record["tracks"] + skipped, key=lambda t: t["track"])
    if corrected is not None:
        record["corrected"] = str(write_corrected(video, corrected, best.detection.offset_sec))
    return record

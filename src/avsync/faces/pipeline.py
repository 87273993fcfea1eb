"""Frames in, face crops per track out: the whole face pipeline in one call, with its reason code.

What ``avsync score`` / ``detect`` need from a decoded clip: every track's 224 px crops and the
span of clip time they cover (syncnet_python scores each track against the audio of that span),
or the reason ``no_face`` when no track was found — so the file still gets its row.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avsync.faces.crops import CROP_SCALE, CROP_SIZE, crop_track
from avsync.faces.detectors import FaceDetector, default_detector
from avsync.faces.tracks import FaceTrack, TrackParams, face_tracks

__all__ = ["NO_FACE", "TrackCrops", "FaceCrops", "face_track_crops"]

NO_FACE = "no_face"  # the reason code of a clip in which no face track was found


@dataclass
class TrackCrops:
    track: FaceTrack
    crops: np.ndarray  # (N, size, size, 3) uint8 RGB, one per frame of the track
    start_sec: float  # the track's span on the clip's timeline (frames at the decoding fps)
    end_sec: float


@dataclass
class FaceCrops:
    tracks: list[TrackCrops] = field(default_factory=list)
    reason: str = ""  # "" when at least one track was found, else NO_FACE


def face_track_crops(frames: np.ndarray, fps: float, detector: FaceDetector | None = None,
                     params: TrackParams = TrackParams(), crop_scale: float = CROP_SCALE,
                     size: int = CROP_SIZE) -> FaceCrops:
    """Tracks (:func:`avsync.faces.tracks.face_tracks`) and their crops
    (:func:`avsync.faces.crops.crop_track`) of (T, H, W, 3) uint8 RGB frames decoded at ``fps``;
    ``detector`` defaults to :func:`avsync.faces.detectors.default_detector`."""
    tracks = face_tracks(frames, fps, detector if detector is not None else default_detector(), params)
    out = [TrackCrops(t, crop_track(frames, t, crop_scale, size), *t.seconds(fps)) for t in tracks]
    return FaceCrops(out, "" if out else NO_FACE)

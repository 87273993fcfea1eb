"""Face tracks as the input of a face-crop model (SyncNet, VocaLiST, DiVAS face): one clip per track.

A model whose input contract is a face crop (``InputSpec.crop`` "face" or "mouth") is given the
speaker's face, not a centre crop of the frame: the file is decoded at the model's frame rate and
native size, faces are detected, tracked and cropped as syncnet_python does (:mod:`avsync.faces`:
scene cuts, IoU tracking, crop scale 0.4, 224 px), and each track's crops are resized to the
model's ``frame_size`` (OpenCV ``INTER_AREA``; the lower half for "mouth" models). Each track comes
with the audio under its own frames, so it is scored like a file of its own, and its times are
placed back on the file's timeline with ``start_sec``.

Protocols that resize stored face crops themselves (a detector with its own ``decode``, e.g. the
paper-size VocaLiST) get the 224 px crops as they are, like the face-crop files they were made for.

A file that is already a face crop (LRS3's 224 px crops) still works: the detector finds the face
in it (its track then spans the clip), or ``faces="off"`` keeps the old centre crop of the frame.
No track: a :class:`~avsync.media.MediaError` with reason code ``no_face``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avsync.faces.detectors import FaceDetector
from avsync.faces.tracks import TrackParams

__all__ = ["FACE_CROPS", "FaceOptions", "FaceTrackClip", "uses_faces", "fit_crops", "decode_face_clips", "face_clips",
           "no_face_reason"]

FACE_CROPS = ("face", "mouth")  # InputSpec.crop values that mean "the input is a face crop"


@dataclass(frozen=True)
class FaceOptions:
    """How ``detect`` / ``score`` / ``title-report`` find faces for face-crop models.

    ``enabled`` False keeps the centre crop of the whole frame (for files that are face crops
    already); ``detector`` "dlib" (default) or "s3fd"; ``params`` the tracker's limits
    (syncnet_python's defaults: tracks of more than 100 frames at 25 fps, faces over 100 px)."""

    enabled: bool = True
    detector: str = "dlib"
    params: TrackParams = TrackParams()

    def face_detector(self) -> FaceDetector:
        from avsync.faces.detectors import face_detector_named

        return face_detector_named(self.detector)


@dataclass
class FaceTrackClip:
    """One face track as a clip for the model: ``frames`` (N, S, S, 3) uint8 (or (N, S/2, S, 3) for
    mouth models), ``wav`` the audio under frames [first_frame, end_frame) at the model's rate."""

    index: int
    first_frame: int
    end_frame: int
    fps: float
    frames: torch.Tensor
    wav: torch.Tensor

    @property
    def start_sec(self) -> float:
        return self.first_frame / self.fps

    @property
    def end_sec(self) -> float:
        return self.end_frame / self.fps

    def span(self) -> dict:
        """JSON-ready identity of the track: its id, frames and seconds on the file's timeline."""
        return {"track": self.index, "first_frame": self.first_frame, "end_frame": self.end_frame,
                "start_sec": round(self.start_sec, 6), "end_sec": round(self.end_sec, 6)}


def uses_faces(spec) -> bool:
    """True for a model that takes face crops (``InputSpec.crop`` "face" or "mouth")."""
    return getattr(spec, "crop", "full") in FACE_CROPS


def fit_crops(crops: np.ndarray, spec) -> np.ndarray:
    """224 px track crops (N, 224, 224, 3) -> the model's input: ``frame_size`` square, lower half
    for "mouth" (as :func:`avsync.detect.decoding.centre_crop` cuts a face-crop file)."""
    import cv2

    size = spec.frame_size
    if crops.shape[1:3] != (size, size):
        crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops])
    if spec.crop == "mouth":
        crops = crops[:, size // 2:]
    return np.ascontiguousarray(crops)


def decode_face_clips(path: str | Path, detector, options: FaceOptions = FaceOptions(),
                      face_detector: FaceDetector | None = None) -> list[FaceTrackClip]:
    """Every face track of ``path`` as the offset ``detector`` (:mod:`avsync.detect.detectors`) reads
    a clip. Raises MediaError: the file's own reason first — silent audio, a still picture, or shorter
    than a face track can be (more than ``min_track`` frames at 25 fps) — then ``no_face`` when no track is
    found, so a silent or still file is said to be so by every metric, not "no face" by some."""
    from avsync.detect.decoding import decode_for_model
    from avsync.media import MediaError, unsynchronisable_reason

    spec = detector.spec
    frames, wav = decode_for_model(path, spec, native_size=True)
    reason = unsynchronisable_reason(frames.numpy(), wav.numpy(), spec.sample_rate,
                                     (options.params.min_track + 1) / 25.0, spec.fps)
    if reason is not None:
        raise MediaError(path, f"{reason.replace('_', ' ')}: nothing to synchronise, no offset given")
    native = getattr(detector, "decode", None) is not None  # the protocol resizes stored crops itself
    clips = face_clips(frames.numpy(), wav, spec, options, face_detector, native=native)
    if not clips:
        raise MediaError(path, no_face_reason(options))
    return clips


def no_face_reason(options: FaceOptions) -> str:
    return (f"no face: no face track of more than {options.params.min_track} frames (at 25 fps) with faces "
            f"over {options.params.min_face_size:g} px")


def face_clips(frames: np.ndarray, wav: torch.Tensor, spec, options: FaceOptions = FaceOptions(),
               face_detector: FaceDetector | None = None, native: bool = False) -> list[FaceTrackClip]:
    """The face tracks of (T, H, W, 3) uint8 ``frames`` at ``spec.fps`` with the audio ``wav`` (S,) at
    ``spec.sample_rate`` that starts with them; [] when there is none. ``native``: 224 px crops as
    they are, else :func:`fit_crops`."""
    from avsync.faces.pipeline import face_track_crops

    found = face_track_crops(frames, spec.fps, face_detector or options.face_detector(), options.params)
    clips = []
    for i, t in enumerate(found.tracks):
        first, end = int(t.track.frames[0]), int(t.track.frames[-1]) + 1
        s0, s1 = (int(round(f / spec.fps * spec.sample_rate)) for f in (first, end))
        piece = wav[s0:s1]
        if len(piece) < s1 - s0:
            piece = torch.cat([piece, piece.new_zeros(s1 - s0 - len(piece))])
        crops = t.crops if native else fit_crops(t.crops, spec)
        clips.append(FaceTrackClip(i, first, end, spec.fps, torch.from_numpy(crops), piece.contiguous()))
    return clips

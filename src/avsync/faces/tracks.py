"""Face tracks as syncnet_python's ``run_pipeline.py`` builds them before SyncNet scores a video.

The steps and their constants (syncnet_python's defaults, at its 25 fps):

1. detect faces in every frame (any :class:`avsync.faces.detectors.FaceDetector`; syncnet_python
   runs S3FD at scale 0.25, threshold 0.9);
2. cut the video into shots (:func:`scene_cuts`) and drop shots shorter than ``min_track`` frames;
3. inside a shot, grow tracks greedily: walking the frames in order, a detection joins the track
   when its IoU with the track's last box exceeds 0.5 and it lies at most ``num_failed_det``
   frames after it; a track is kept when it has more than ``min_track`` detections, and its
   boxes are linearly interpolated over the frames it spans; a track whose mean box width or
   height (the larger) is not above ``min_face_size`` px is dropped.

Step 3 follows the reference loop exactly, including a quirk that changes which detections a
track takes: when a detection is taken out of a frame's list while that list is being walked,
the detection right after it in the same frame is not looked at in that pass.

The frame-count constants are syncnet_python's at 25 fps; for frames at another rate they are
scaled by ``fps / 25`` (syncnet_python converts every video to 25 fps first, which is what callers
computing LSE should do too: decode at 25 fps).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from avsync.faces.detectors import FaceDetector

__all__ = ["FaceTrack", "TrackParams", "face_tracks", "detect_all", "scene_cuts", "tracks_from_detections",
           "box_iou"]

REFERENCE_FPS = 25.0


@dataclass(frozen=True)
class TrackParams:
    """syncnet_python's tracking constants (frame counts at 25 fps, sizes in pixels)."""

    min_track: int = 100  # a track needs more detections than this; shorter shots are skipped
    num_failed_det: int = 25  # the longest gap (frames) a track bridges
    min_face_size: float = 100.0  # mean box side (the larger of width/height) must exceed this
    iou_threshold: float = 0.5  # consecutive detections of one track overlap more than this
    scene_threshold: float = 30.0  # content change (mean HSV difference) that starts a new shot
    min_scene_len: int = 15  # frames between two cuts at least

    def at_fps(self, fps: float) -> "TrackParams":
        """The frame counts for frames at ``fps`` (identical at 25 fps)."""
        if fps == REFERENCE_FPS:
            return self
        k = fps / REFERENCE_FPS
        return TrackParams(max(1, round(self.min_track * k)), max(1, round(self.num_failed_det * k)),
                           self.min_face_size, self.iou_threshold, self.scene_threshold,
                           max(1, round(self.min_scene_len * k)))


@dataclass
class FaceTrack:
    """One face over consecutive frames: ``frames`` (N,) frame indices into the input, ``boxes``
    (N, 4) float64 (x1, y1, x2, y2) px, interpolated between detections; ``detected`` (N,) marks the
    frames where the detector actually found the box."""

    frames: np.ndarray
    boxes: np.ndarray
    detected: np.ndarray = field(repr=False)

    def seconds(self, fps: float) -> tuple[float, float]:
        """The track's span [start, end) in seconds of the clip (syncnet_python cuts its audio so)."""
        return self.frames[0] / fps, (self.frames[-1] + 1) / fps

    def __len__(self) -> int:
        return len(self.frames)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x1, y1, x2, y2) boxes (no clamping of degenerate boxes, as the reference)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def detect_all(frames: np.ndarray, detector: FaceDetector) -> list[np.ndarray]:
    """The detector's (K, 5) rows for every frame of (T, H, W, 3) uint8 RGB ``frames``."""
    return [np.asarray(detector(frame), dtype=np.float64).reshape(-1, 5) for frame in frames]


# PySceneDetect 0.5's automatic subsampling for shot detection: frame width -> keep every k-th pixel
_SUBSAMPLE_BY_WIDTH = ((3200, 12), (2100, 8), (1700, 6), (1200, 5), (900, 4), (600, 3), (400, 2))


def _downscale(width: int) -> int:
    return next((k for w, k in _SUBSAMPLE_BY_WIDTH if width >= w), 1)


def scene_cuts(frames: np.ndarray, threshold: float = 30.0, min_scene_len: int = 15) -> list[tuple[int, int]]:
    """Shots as [start, end) frame ranges covering the clip.

    A content detector of our own, after PySceneDetect 0.5's ContentDetector (the version
    syncnet_python pins): the frame is converted to HSV (OpenCV scales, H in 0..179), the mean
    absolute difference from the previous frame is taken per channel and averaged over the three;
    a new shot starts at a frame whose value reaches ``threshold``, if at least ``min_scene_len``
    frames have passed since the last cut. Frames 400 px wide or more are subsampled first (every
    2nd pixel from 400 px, every 3rd from 600, ... every 12th from 3200), as PySceneDetect does.
    """
    import cv2

    n = len(frames)
    if n == 0:
        return []
    step = _downscale(frames.shape[2])
    cuts, last_cut, previous = [], None, None
    for t in range(n):
        hsv = cv2.cvtColor(np.ascontiguousarray(frames[t, ::step, ::step]), cv2.COLOR_RGB2HSV).astype(np.int32)
        if previous is not None:
            delta = np.abs(hsv - previous).reshape(-1, 3).mean(0).mean()
            if delta >= threshold and (last_cut is None or t - last_cut >= min_scene_len):
                cuts.append(t)
                last_cut = t
        previous = hsv
    bounds = [0, *cuts, n]
    return list(zip(bounds[:-1], bounds[1:]))


def _grow_track(shot: list[list[dict]], params: TrackParams) -> list[dict]:
    """One greedy pass over the shot's remaining detections (taken ones are removed from ``shot``)."""
    track: list[dict] = []
    for faces in shot:
        i = 0
        while i < len(faces):  # a list iterator: removing faces[i] makes it skip the face after it
            face = faces[i]
            if not track:
                track.append(face)
                faces.pop(i)
            elif face["frame"] - track[-1]["frame"] <= params.num_failed_det:
                if box_iou(face["bbox"], track[-1]["bbox"]) > params.iou_threshold:
                    track.append(face)
                    faces.pop(i)
            else:
                break
            i += 1
    return track


def _interpolated(track: list[dict]) -> FaceTrack:
    from scipy.interpolate import interp1d

    frame_num = np.array([f["frame"] for f in track])
    bboxes = np.array([f["bbox"] for f in track], dtype=np.float64)
    frames = np.arange(frame_num[0], frame_num[-1] + 1)
    boxes = np.stack([interp1d(frame_num, bboxes[:, k])(frames) for k in range(4)], axis=1)
    return FaceTrack(frames, boxes, np.isin(frames, frame_num))


def tracks_from_detections(detections: Sequence[np.ndarray], shots: Sequence[tuple[int, int]],
                           params: TrackParams = TrackParams()) -> list[FaceTrack]:
    """Tracks from per-frame (K, >=4) detections and shots ([start, end) frame ranges), in the
    reference's order (shot by shot, then in the order they were grown)."""
    tracks = []
    for start, end in shots:
        if end - start < params.min_track:
            continue
        shot = [[{"frame": t, "bbox": [float(v) for v in det[:4]]} for det in detections[t]]
                for t in range(start, end)]
        while True:
            grown = _grow_track(shot, params)
            if not grown:
                break
            if len(grown) <= params.min_track:
                continue
            track = _interpolated(grown)
            width = np.mean(track.boxes[:, 2] - track.boxes[:, 0])
            height = np.mean(track.boxes[:, 3] - track.boxes[:, 1])
            if max(width, height) > params.min_face_size:
                tracks.append(track)
    return tracks


def face_tracks(frames: np.ndarray, fps: float, detector: FaceDetector,
                params: TrackParams = TrackParams()) -> list[FaceTrack]:
    """Face tracks of (T, H, W, 3) uint8 RGB ``frames`` decoded at ``fps``: detection in every frame,
    shots, greedy IoU tracking, interpolation (see the module docstring). An empty list means no
    face was tracked long enough (callers report it as ``no_face``)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"face_tracks takes (T, H, W, 3) RGB frames, got {frames.shape}")
    params = params.at_fps(fps)
    shots = scene_cuts(frames, params.scene_threshold, params.min_scene_len)
    return tracks_from_detections(detect_all(frames, detector), shots, params)

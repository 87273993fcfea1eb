"""Face crops of a track, as syncnet_python's ``crop_video`` makes them for SyncNet (and LSE).

Per frame of the track: the box's centre (x, y) and half-side s = max(width, height) / 2, each
median-filtered over 13 frames (SciPy's ``medfilt``, zero-padded at the ends as in the reference);
the frame is padded by ``int(s·(1 + 2·crop_scale))`` px of grey 110 on every side and the region
``[y − s, y + s·(1 + 2·crop_scale))`` x ``[x − s·(1 + crop_scale), x + s·(1 + crop_scale))`` —
a square of side 2·s·(1 + crop_scale) reaching further below the face than above, so the mouth
and chin are in — is resized to ``size`` px (OpenCV bilinear). Defaults: crop scale 0.4, 224 px.

Differences from the reference, on purpose: no intermediate video is written (the reference
round-trips its frames through JPEG files and an XVID AVI, which adds compression noise), and the
frames stay RGB (the reference's are BGR; the pixel operations are the same per channel).
"""
from __future__ import annotations

import numpy as np

from avsync.faces.tracks import FaceTrack

__all__ = ["crop_track", "smoothed_boxes", "PAD_VALUE", "CROP_SCALE", "CROP_SIZE", "SMOOTH_KERNEL"]

CROP_SCALE = 0.4
CROP_SIZE = 224
SMOOTH_KERNEL = 13
PAD_VALUE = 110


def smoothed_boxes(track: FaceTrack, kernel: int = SMOOTH_KERNEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median-filtered (x centre, y centre, half-side) per frame of the track."""
    from scipy.signal import medfilt

    boxes = np.asarray(track.boxes, dtype=np.float64)
    half = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    return medfilt(cx, kernel_size=kernel), medfilt(cy, kernel_size=kernel), medfilt(half, kernel_size=kernel)


def crop_track(frames: np.ndarray, track: FaceTrack, crop_scale: float = CROP_SCALE,
               size: int = CROP_SIZE) -> np.ndarray:
    """(N, size, size, 3) uint8 crops of ``track`` from the (T, H, W, 3) uint8 ``frames`` it was found in
    (``track.frames`` index them)."""
    import cv2

    if len(track) == 0:
        raise ValueError("crop_track got an empty track")
    if track.frames[-1] >= len(frames) or track.frames[0] < 0:
        raise ValueError(f"track spans frames {track.frames[0]}..{track.frames[-1]}, the clip has {len(frames)}")
    xs, ys, ss = smoothed_boxes(track)
    out = np.empty((len(track), size, size, 3), dtype=np.uint8)
    for i, t in enumerate(track.frames):
        bs = ss[i]
        pad = int(bs * (1 + 2 * crop_scale))
        padded = np.pad(frames[t], ((pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=PAD_VALUE)
        my, mx = ys[i] + pad, xs[i] + pad
        face = padded[int(my - bs):int(my + bs * (1 + 2 * crop_scale)),
                      int(mx - bs * (1 + crop_scale)):int(mx + bs * (1 + crop_scale))]
        if face.size == 0:
            raise ValueError(f"track box at frame {t} has zero size")
        out[i] = cv2.resize(face, (size, size))
    return out

"""Face crops from the per-frame boxes of the LRS3 ``.txt`` files (InputSpec crop="face" / "mouth").

An LRS3 ``<utt>.txt`` beside each clip lists, after a ``FRAME X Y W H`` line, one box per video
frame at 25 fps: the face's top-left corner and size as fractions of the source frame's width
and height. Full-frame clips (``h264_uncropped_...``) keep the source's aspect ratio, so the
fractions apply to them at any resolution.

A crop is a square around the box centre, ``scale`` times the box's longer side (one side for
the whole window, the median of its boxes, so the face does not zoom in and out; the centre
follows the face frame by frame), shifted to lie inside the frame, and resized to the model's
frame size. ``scale=1`` is LRS3's own "strict" crop: on the real fixture, the crop of the
full-frame clip correlates at 0.96 with the distributed 224x224 face clip (0.93 at 0.9 and
0.88 at 1.1). VocaLiST's mouth input is the lower half of that face crop (48x96 for a 96 crop).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avsync.media import MediaError

__all__ = ["BOX_FPS", "read_face_boxes", "window_boxes", "crop_faces"]

BOX_FPS = 25.0  # LRS3 boxes are given for every frame of the 25 fps source


def read_face_boxes(path: str | os.PathLike) -> np.ndarray:
    """The ``(N, 4)`` float32 boxes ``x, y, w, h`` (fractions of the frame) of an LRS3 ``.txt``."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise MediaError(path, f"cannot read face boxes: {err}") from err
    try:
        start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["FRAME"]) + 1
    except StopIteration:
        raise MediaError(path, "no 'FRAME X Y W H' table of face boxes") from None
    rows = []
    for line in lines[start:]:
        fields = line.split()
        if len(fields) < 5:
            break
        try:
            rows.append([float(v) for v in fields[1:5]])
        except ValueError:
            break
    if not rows:
        raise MediaError(path, "the face box table is empty")
    boxes = np.asarray(rows, dtype=np.float32)
    if (boxes[:, 2:] <= 0).any():
        raise MediaError(path, "a face box has zero or negative size")
    return boxes


def window_boxes(boxes: np.ndarray, start_sec: float, num_frames: int, fps: float,
                 box_fps: float = BOX_FPS) -> np.ndarray:
    """The box on screen at each output frame time ``start_sec + i / fps`` (nearest box row;
    rows past the end repeat the last box, as the decoder repeats the last frame)."""
    times = start_sec + np.arange(num_frames) / float(fps)
    rows = np.clip(np.floor(times * box_fps + 1e-6).astype(int), 0, len(boxes) - 1)
    return boxes[rows]


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int, scale: float = 1.0) -> np.ndarray:
    """Square face crops of ``frames`` (T, H, W, 3) uint8 around ``boxes`` (T, 4), resized to
    ``size`` x ``size``; returns (T, size, size, 3) uint8."""
    if len(frames) != len(boxes):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} boxes")
    height, width = frames.shape[1:3]
    box_px = boxes * np.array([width, height, width, height], dtype=np.float32)
    side = int(round(scale * float(np.median(np.maximum(box_px[:, 2], box_px[:, 3])))))
    side = max(2, min(side, height, width))
    centre_x = box_px[:, 0] + box_px[:, 2] / 2
    centre_y = box_px[:, 1] + box_px[:, 3] / 2
    x0 = np.clip(np.round(centre_x - side / 2).astype(int), 0, width - side)
    y0 = np.clip(np.round(centre_y - side / 2).astype(int), 0, height - side)
    crops = np.stack([f[y : y + side, x : x + side] for f, x, y in zip(frames, x0, y0)])
    if side == size:
        return np.ascontiguousarray(crops)
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()

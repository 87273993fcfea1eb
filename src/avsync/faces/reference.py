"""Where a face-crop clip sits inside its full-frame clip: the reference box for measuring detectors.

LRS3's face-crop videos are square crops of the full frame resized to 224 px. Shrinking a crop
frame to side ``s`` and searching it in the full frame (normalised cross-correlation, OpenCV's
``TM_CCOEFF_NORMED``) over a range of sides gives the crop's square box in full-frame pixels: the
best side and position is where the shrunk crop correlates best with the picture.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from avsync.faces.tracks import box_iou

__all__ = ["LocatedCrop", "locate_crop", "box_iou"]


@dataclass
class LocatedCrop:
    box: np.ndarray  # (x1, y1, x2, y2) in full-frame pixels
    ncc: float  # the normalised cross-correlation at the best side and position


def locate_crop(full_rgb: np.ndarray, crop_rgb: np.ndarray, sides: Iterable[int]) -> LocatedCrop:
    """The square box of ``full_rgb`` that ``crop_rgb`` shows, searched over the given sides (px)."""
    import cv2

    full = cv2.cvtColor(full_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    crop = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    best = LocatedCrop(np.zeros(4), -np.inf)
    for side in sides:
        if side > min(full.shape):
            continue
        template = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        score = cv2.matchTemplate(full, template, cv2.TM_CCOEFF_NORMED)
        _, value, _, (x, y) = cv2.minMaxLoc(score)
        if value > best.ncc:
            best = LocatedCrop(np.array([x, y, x + side, y + side], dtype=np.float64), float(value))
    return best

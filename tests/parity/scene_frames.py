"""A clip with shot changes built from the real LRS3 fixture (numpy only), for the shot-detection
goldens: the golden script and the test build the same frames from the same decoded fixture."""
from __future__ import annotations

import numpy as np

CLIP = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
NUM_SOURCE_FRAMES = 200


def shots_clip(frames: np.ndarray) -> np.ndarray:
    """(T, 256, 454, 3) uint8 RGB: the speaker; the same mirrored and darker (a cut); a 3-frame
    flash (cuts closer than 15 frames apart); a later part of the clip (a cut); a slow fade."""
    parts = [frames[0:40],
             (frames[40:80, :, ::-1].astype(np.float64) * 0.55).astype(np.uint8),
             np.full((3, *frames.shape[1:]), 235, np.uint8),
             frames[150:190],
             np.stack([(frames[190] * (1 - k / 20)).astype(np.uint8) for k in range(10)])]
    return np.ascontiguousarray(np.concatenate(parts))

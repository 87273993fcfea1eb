"""OpenCV's ``cv2.resize(img, (w, h))`` (INTER_LINEAR) on uint8 images, bit for bit, without OpenCV.

VocaLiST's authors resize every face crop with ``cv2.resize`` before cutting the mouth half. A
float bilinear resize (``F.interpolate(..., antialias=False)``) rounded to uint8 differs from it
by one grey level on ~7 % of the pixels, because OpenCV works in fixed point: the interpolation
weights are rounded to 1/2048, the horizontal pass sums in integers and the vertical pass of its
vectorised kernel (the one x86 builds run for 8-bit images) shifts each row right by 4 before a
16-bit multiply-high. This module repeats those integer steps, so the result equals OpenCV's
(checked against the authors' frames in ``tests/integration/test_parity_vocalist.py``).

Checked against OpenCV 5.1 on the fixture's 224x224 face crops: equal for the downscales tried
(96x96, 48x96, 50x70, 7x13) and the identity; an upscale (300x260) differed by one level on 0.06 %
of the values (OpenCV takes another path there), so use it for downscaling. The border rule (the
source index clamped, its weight moved to the nearest pixel) is OpenCV's.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["resize_linear_like_opencv"]

_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS


def _taps(out_size: int, in_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and fixed-point weights of each output position along one axis."""
    scale = in_size / out_size                                         # OpenCV: 1 / (dsize / ssize), double
    pos = ((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(pos).astype(np.int64)
    frac = (pos - first).astype(np.float32)
    low = first < 0
    frac[low], first[low] = 0.0, 0
    high = first >= in_size - 1
    frac[high], first[high] = 0.0, in_size - 1
    w0 = np.rint((np.float32(1.0) - frac) * _COEF_SCALE).astype(np.int64)
    w1 = np.rint(frac * _COEF_SCALE).astype(np.int64)
    second = np.minimum(first + 1, in_size - 1)
    return (torch.from_numpy(first), torch.from_numpy(second), torch.from_numpy(w0), torch.from_numpy(w1))


def resize_linear_like_opencv(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 (..., H, W, C) -> uint8 (..., height, width, C), as ``cv2.resize(img, (width, height))``."""
    if images.dtype != torch.uint8 or images.ndim < 3:
        raise ValueError(f"images must be uint8 (..., H, W, C), got {images.dtype} {tuple(images.shape)}")
    in_h, in_w = images.shape[-3:-1]
    x0, x1, a0, a1 = _taps(width, in_w)
    y0, y1, b0, b1 = _taps(height, in_h)
    img = images.to(torch.int64)
    rows = img[..., x0, :] * a0[:, None] + img[..., x1, :] * a1[:, None]      # (..., H, width, C), x 2048
    top, bottom = rows[..., y0, :, :], rows[..., y1, :, :]
    b0, b1 = b0[:, None, None], b1[:, None, None]
    out = (((b0 * (top >> 4)) >> 16) + ((b1 * (bottom >> 4)) >> 16) + 2) >> 2
    return out.clamp(0, 255).to(torch.uint8)

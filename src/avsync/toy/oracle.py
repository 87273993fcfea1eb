"""A PairScorer that needs no training: it knows how the dense toy set is rendered.

The dense toy clip (:func:`avsync.toy.render.render_dense`) draws a dark mouth ellipse whose
height follows the syllabic envelope e(t), and its voice's short-time RMS *is* e(t). So the dark
area in the lower half of a frame tracks the loudness of the audio at the same instant; the
correlation of the two over a window is a pair score that peaks at the true alignment.

It stands in for a trained model where the point of a test is the pipeline around the scores
(title reports, active speaker detection), never to measure a model.
"""
from __future__ import annotations

import torch
from torch import Tensor

DARK_LEVEL = 0.25  # background and skin stay above this in every channel; mouth and eyes below


class ToyOracleScorer:
    """Pearson correlation of the per-frame mouth darkness and the per-frame audio RMS (windows >= 3 frames)."""

    def pair_scores(self, frames: Tensor, wav: Tensor) -> Tensor:
        if frames.ndim != 5 or wav.ndim != 2 or len(frames) != len(wav):
            raise ValueError(f"expected frames (N, F, H, W, 3) and wav (N, S), got {tuple(frames.shape)} "
                             f"and {tuple(wav.shape)}")
        n, n_frames, height = frames.shape[:3]
        x = frames[:, :, height // 2:].float() / 255.0  # the eyes are in the upper half
        mouth = (DARK_LEVEL - x.amax(-1)).clamp_min(0).sum((-1, -2))  # (N, F)
        per_frame = wav.shape[1] // n_frames
        loudness = wav[:, : per_frame * n_frames].float().reshape(n, n_frames, per_frame).pow(2).mean(-1).sqrt()
        # the RMS of frame period i is centred half a frame after frame i is shown: compare it with
        # the mouth half-way between frames i and i + 1, or every prediction leans by half a frame
        mouth = 0.5 * (mouth[:, :-1] + mouth[:, 1:])
        return _pearson(mouth, loudness[:, :-1])


def _pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Row-wise correlation; 0 where either row is constant (a still mouth, silence)."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    denom = a.norm(dim=-1) * b.norm(dim=-1)
    return torch.where(denom > eps, (a * b).sum(-1) / denom.clamp_min(eps), torch.zeros_like(denom))

"""One visual window scored against several audio candidates per training clip (toy-scale efficiency).

``PairScoringModule.draw_pairs`` cuts one balanced pair per clip: every pair pays for a visual
encoding, which for VocaLiST's 3D CNN is nearly all of a CPU step, while the audio encoder and the
transformers are cheap. Here each clip gives one visual window and ``1 + negatives`` audio windows
(column 0 in sync at Δ, the others at distinct shifted candidates of the score search): the visual
window is encoded once and paired with all of them. With BCE and ``pos_weight = negatives`` the
in-sync and shifted pairs still weigh equally (the paper's balance), and the network sees for the
same lips the matching and several non-matching voices — the comparison the score search makes.
"""
from __future__ import annotations

import torch
from torch import Tensor

from avsync.modules.pair_scoring import cut_pairs
from avsync.offsets import FrameShifts


def draw_candidates(video: Tensor, audio: Tensor, delta: Tensor, *, shifts: FrameShifts, negatives: int,
                    window_frames: int, fps: float, sample_rate: int, min_gap: int = 1,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """frames (B, window, H, W, 3), wav (B, 1 + negatives, S) and the candidate shifts (B, 1 + negatives).

    Column 0 is the true shift Δ; the negatives are distinct shifts at least ``min_gap`` frames
    from Δ, uniform among those (``min_gap`` > 1: easy negatives first, a curriculum).
    """
    n, device = len(video), video.device
    max_shift = shifts.max_shift
    candidates = torch.arange(-max_shift, max_shift + 1, device=device)
    allowed = (candidates[None] - delta[:, None]).abs() >= min_gap              # (B, 2·max_shift + 1)
    if (allowed.sum(1) < negatives).any():
        raise ValueError(f"fewer than {negatives} candidates lie {min_gap}+ frames from the true offset")
    noise = torch.rand(allowed.shape, device=device, generator=generator).masked_fill(~allowed, -1.0)
    chosen = torch.cat([delta[:, None], candidates[noise.topk(negatives, dim=1).indices]], dim=1)
    last = video.shape[1] - window_frames - max_shift                           # the search rows
    starts = torch.randint(max_shift, last + 1, (n,), device=device, generator=generator)
    wavs = []
    for k in range(chosen.shape[1]):
        frames, wav = cut_pairs(video, audio, starts, chosen[:, k], fps=fps, sample_rate=sample_rate,
                                window_frames=window_frames)
        wavs.append(wav)
    return frames, torch.stack(wavs, dim=1), chosen

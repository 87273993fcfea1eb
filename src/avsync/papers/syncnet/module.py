"""SyncNet as a LightningModule: the two-stream baseline with its contrastive loss.

Pairs are the balanced in-sync / shifted pairs of :mod:`avsync.modules.pair_scoring`; the loss is
SyncNet's contrastive loss on the Euclidean distance of the two embeddings, and the pair score
of the search is −distance, so the offset is the argmin distance over ±15 frames and the
confidence median − min (:func:`~avsync.evaluation.score_search.predict_offsets`). The network
fixes the window to 5 frames (0.2 s); ``eval_contexts`` up to the clip length average its
distances over consecutive windows, and a context spanning every window gives SyncNet's
clip-level answer.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avsync.modules.offset_classification import load_matching_weights
from avsync.modules.pair_scoring import PairScoringModule, runs_of_equal_rows
from avsync.papers.syncnet.network import FRAME_SIZE, MFCC, MFCC_PER_FRAME, WINDOW_FRAMES, build_syncnet, contrastive_loss
from avsync.evaluation.score_search import frame_start_sample, window_samples


class SyncNetFrames(nn.Module):
    """uint8 (B, T, H, W, 3) RGB -> float (B, 3, T, 224, 224), BGR 0..255 as the reference feeds OpenCV frames."""

    def forward(self, frames: Tensor) -> Tensor:
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (B, T, H, W, 3) uint8, got {tuple(frames.shape)}")
        x = frames.permute(0, 1, 4, 2, 3).float().flip(2)            # (B, T, 3, H, W), BGR
        if x.shape[-2:] != (FRAME_SIZE, FRAME_SIZE):
            b, t = x.shape[:2]
            # antialiasing only changes a downscale; on an upscale (small toy frames) it gives the same
            # values (within 1e-3 on the 0-255 scale) at twice the cost of the plain bilinear kernel
            shrinking = max(x.shape[-2:]) > FRAME_SIZE
            x = F.interpolate(x.flatten(0, 1), size=(FRAME_SIZE, FRAME_SIZE), mode="bilinear",
                              align_corners=False, antialias=shrinking).unflatten(0, (b, t))
        return x.transpose(1, 2)


class SyncNetModule(PairScoringModule):
    """SyncNet trained with the contrastive loss (``margin`` on the distance of shifted pairs).

    The margin is not given by the paper; 20 (as DiVAS for the same loss on unnormalised
    embeddings) is the default. Other arguments as :class:`~avsync.papers.vocalist.module.VocaLiSTModule`.
    """

    def __init__(self, arch: str = "syncnet", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, clip_frames: int = 50, max_shift: int = 15,
                 tolerance_frames: int = 1, eval_contexts: Sequence[int] = (5, 7, 9, 11, 13, 15),
                 artificial_offsets: bool = False, margin: float = 20.0, lr: float = 1e-4,
                 eval_batch_windows: int = 4, init_from: str | None = None, log_figures: bool = True,
                 eval_windows_ms: Sequence[Sequence[float]] | None = None,
                 eval_whole_clip: bool = False):
        super().__init__(window_frames=WINDOW_FRAMES, clip_frames=clip_frames, max_shift=max_shift,
                         tolerance_frames=tolerance_frames, eval_contexts=eval_contexts,
                         artificial_offsets=artificial_offsets, train_window_frames=None, lr=lr,
                         eval_batch_windows=eval_batch_windows, log_figures=log_figures,
                         eval_windows_ms=eval_windows_ms, eval_whole_clip=eval_whole_clip)
        self.save_hyperparameters()
        self.net = build_syncnet(arch, arch_overrides)
        self.margin = float(margin)
        spec = {"frame_size": FRAME_SIZE, "resize_short_side": None, "crop": "face", **(input_overrides or {})}
        self.input_spec = dataclasses.replace(self.base_spec(), **spec)
        self.frames = SyncNetFrames()
        self.mfcc = MFCC(sample_rate=self.sample_rate)
        if init_from:
            missing = load_matching_weights(self.net, init_from, prefix="net.")
            if missing:
                raise ValueError(f"{init_from} does not fit {arch}: {len(missing)} tensors missing, e.g. {missing[:3]}")

    def forward(self, frames: Tensor, wav: Tensor) -> Tensor:
        """Embedding distances (N,) of uint8 frames (N, 5, H, W, 3) and waveforms (N, S)."""
        mfcc = self.mfcc(wav, num_frames=frames.shape[1] * MFCC_PER_FRAME)
        return self.net(self.frames(frames), mfcc)

    def pair_scores(self, frames: Tensor, wav: Tensor) -> Tensor:
        """−distance; in eval mode each distinct visual window and each distinct audio window is
        embedded once (same values: the search's neighbouring windows share their candidates)."""
        if self.training:
            return -self(frames, wav)
        first, group = runs_of_equal_rows(frames)
        lip = self.net.forward_lip(self.frames(frames[first]))[group]
        audio, inverse = torch.unique(wav, dim=0, return_inverse=True)
        aud = self.net.forward_aud(self.mfcc(audio, num_frames=frames.shape[1] * MFCC_PER_FRAME))[inverse]
        return -F.pairwise_distance(lip, aud)

    def whole_clip_scores(self, frames: Tensor, wav: Tensor) -> Tensor:
        """−distances (L − 4, 2·max_shift+1) of every 5-frame window of a whole clip with SyncNet's own
        edge handling (syncnet_python's ``calc_pdist``; DiVAS §4.1 the same): each window's lip and
        audio embedding once, the audio embeddings zero-padded by max_shift at both ends, so a
        candidate whose audio lies outside the clip scores −|lip embedding| instead of being left out."""
        n = frames.shape[0] - WINDOW_FRAMES + 1
        win_s = window_samples(WINDOW_FRAMES, self.fps, self.sample_rate)
        starts = frame_start_sample(torch.arange(max(n, 0), device=wav.device), self.fps, self.sample_rate)
        n_audio = int((starts + win_s <= wav.shape[0]).sum())
        if n < 1:
            raise ValueError(f"the clip has {frames.shape[0]} frames, fewer than one {WINDOW_FRAMES}-frame window")
        step = max(1, self.eval_batch_windows * len(self.shifts))
        lip = torch.cat([self.net.forward_lip(self.frames(torch.stack([frames[t:t + WINDOW_FRAMES]
                                                                        for t in range(i, min(i + step, n))])))
                         for i in range(0, n, step)])
        idx = torch.arange(win_s, device=wav.device)
        aud = [self.net.forward_aud(self.mfcc(wav[starts[i:min(i + step, n_audio), None] + idx],
                                              num_frames=WINDOW_FRAMES * MFCC_PER_FRAME))
               for i in range(0, n_audio, step)]
        aud = torch.cat(aud + [lip.new_zeros(1, lip.shape[1])])  # row n_audio: SyncNet's zero padding
        shifts = torch.tensor(self.shifts.values, device=wav.device)
        at = torch.arange(n, device=wav.device)[:, None] - shifts[None, :]  # audio window of candidate d: t − d
        at = torch.where((at >= 0) & (at < n_audio), at, torch.full_like(at, n_audio))
        return -F.pairwise_distance(lip[:, None].expand(-1, len(shifts), -1), aud[at])

    def pair_loss(self, frames: Tensor, wav: Tensor, in_sync: Tensor) -> tuple[Tensor, Tensor]:
        distance = self(frames, wav)
        return contrastive_loss(distance, in_sync, self.margin), -distance.detach()

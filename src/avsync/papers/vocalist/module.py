"""VocaLiST as a LightningModule: the official recipe around the plain ``VocaLiST`` network.

Binary cross-entropy on balanced in-sync / shifted pairs, Adam lr 5e-5 (official scripts),
5-frame windows; evaluation by score search with context averaging (see
:mod:`avsync.modules.pair_scoring`). ``window_frames`` > 5 trains and scores a dedicated longer
window (the "Var = Y" rows of Table 2); ``train_window_frames`` draws the training window length
per batch from a list instead (the network takes any length).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from avsync.modules.candidate_pairs import draw_candidates
from avsync.papers.vocalist.encoder_alignment import candidate_alignment_loss, encoder_alignment_loss
from avsync.modules.offset_classification import load_matching_weights
from avsync.training.optim import adam_with_warmup
from avsync.modules.pair_scoring import PairScoringModule, runs_of_equal_rows
from avsync.papers.vocalist.network import build_vocalist
from avsync.papers.vocalist.inputs import MouthFrames, VocaLiSTMel
from avsync.training.epoch_means import log_epoch_mean


class VocaLiSTModule(PairScoringModule):
    """Lip-voice synchronisation with VocaLiST.

    Args:
        arch: registered configuration (``vocalist``, ``vocalist_toy``); ``arch_overrides`` changes fields.
        input_overrides: fields of the :class:`~avsync.inputs.InputSpec` (e.g. ``crop: full`` and a
            small ``frame_size`` on the toy set, whose square frames are resized to 48x96).
        window_frames: visual frames per scored pair (5 in the paper).
        clip_frames: frames per delivered clip; the search needs window + 2·max_shift, each extra
            frame adds one window to average over (contexts up to clip_frames − 2·max_shift).
        tolerance_frames: ±1 (LRS2) or ±5 (Acappella).
        eval_contexts: context lengths (frames) whose accuracies are logged (Table 1: 5 .. 15).
        artificial_offsets: evaluate (and cut training pairs from) clips at random offsets in
            ±max_shift instead of in-sync clips.
        init_from: a checkpoint (e.g. from ``avsync convert --model vocalist``) to start from.
        warmup_steps: linear lr warm-up from lr/100 (0: constant lr, the official scripts).
        align_steps: toy-scale warm start (:mod:`avsync.papers.vocalist.encoder_alignment`): for the first
            ``align_steps`` optimiser steps only the two conv encoders are trained, with SyncNet's
            contrastive loss (``align_margin``) on their time-ordered tokens; then BCE as the paper.
        align_weight: weight of that contrastive loss added to BCE after the alignment steps (0: BCE only).
        negatives_per_window: 0 = one balanced pair per clip (the paper). K > 0: each clip's visual
            window is encoded once and scored against its in-sync audio and K shifted candidates
            (:mod:`avsync.modules.candidate_pairs`; BCE with pos_weight K keeps the balance); the
            alignment steps then use InfoNCE over the candidates (``align_temperature``).
        min_negative_gap: negatives at least this many frames from the true offset (with K > 0).
        eval_windows_ms: also count accuracy within these [lo, hi] ms windows under DiVAS's metric
            names (:mod:`avsync.modules.pair_scoring`; DiVAS Table 1's protocol).
        eval_whole_clip: evaluate whole clips, every window averaged (with a data module's
            ``eval_whole_clips``; DiVAS's full protocol, :mod:`avsync.modules.pair_scoring`).
    """

    def __init__(self, arch: str = "vocalist", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, window_frames: int = 5, clip_frames: int = 50,
                 max_shift: int = 15, tolerance_frames: int = 1, eval_contexts: Sequence[int] = (5, 7, 9, 11, 13, 15),
                 artificial_offsets: bool = False, train_window_frames: Sequence[int] | None = None,
                 lr: float = 5e-5, eval_batch_windows: int = 4, init_from: str | None = None,
                 log_figures: bool = True, warmup_steps: int = 0, align_steps: int = 0,
                 align_weight: float = 0.0, align_margin: float = 1.0, negatives_per_window: int = 0,
                 min_negative_gap: int = 1, align_temperature: float = 0.1,
                 eval_windows_ms: Sequence[Sequence[float]] | None = None,
                 eval_whole_clip: bool = False):
        protocol = dict(window_frames=window_frames, clip_frames=clip_frames, max_shift=max_shift,
                         tolerance_frames=tolerance_frames, eval_contexts=eval_contexts,
                         artificial_offsets=artificial_offsets, train_window_frames=train_window_frames, lr=lr,
                         eval_batch_windows=eval_batch_windows, log_figures=log_figures,
                         eval_windows_ms=eval_windows_ms, eval_whole_clip=eval_whole_clip)
        super().__init__(**protocol)
        self.save_hyperparameters()
        if min(warmup_steps, align_steps) < 0 or align_weight < 0 or align_margin <= 0:
            raise ValueError("warmup_steps, align_steps and align_weight must be >= 0, align_margin > 0")
        self.warmup_steps, self.align_steps = warmup_steps, align_steps
        self.align_weight, self.align_margin = align_weight, align_margin
        if negatives_per_window < 0 or min_negative_gap < 1 or align_temperature <= 0:
            raise ValueError("negatives_per_window must be >= 0, min_negative_gap >= 1, align_temperature > 0")
        self.negatives, self.min_negative_gap, self.align_temperature = (negatives_per_window, min_negative_gap,
                                                                         align_temperature)
        self.net = build_vocalist(arch, arch_overrides)
        spec = {"frame_size": 96, "resize_short_side": None, "crop": "mouth", **(input_overrides or {})}
        self.input_spec = dataclasses.replace(self.base_spec(), **spec)
        self.frames = MouthFrames()
        self.mel = VocaLiSTMel(sample_rate=self.sample_rate)
        if init_from:
            missing = load_matching_weights(self.net, init_from, prefix="net.")
            if missing:
                raise ValueError(f"{init_from} does not fit {arch}: {len(missing)} tensors missing, e.g. {missing[:3]}")

    def forward(self, frames: Tensor, wav: Tensor) -> Tensor:
        """Sync logits (N,) of uint8 frames (N, T, H, W, 3) and waveforms (N, S)."""
        return self.net(self.frames(frames), self.mel(wav))

    def pair_scores(self, frames: Tensor, wav: Tensor) -> Tensor:
        """Sync logits; in eval mode each distinct visual window and each distinct audio window is
        encoded once (same values: batch norm uses running statistics there; the search's
        neighbouring windows share their audio candidates)."""
        if self.training:
            return self(frames, wav)
        first, group = runs_of_equal_rows(frames)
        vis = self.net.encode_visual(self.frames(frames[first]))[group]
        audio, inverse = torch.unique(wav, dim=0, return_inverse=True)
        return self.net.fuse(vis, self.net.encode_audio(self.mel(audio))[inverse])

    def aligning(self) -> bool:
        """True during the encoder-alignment steps (training only)."""
        return self.training and self.global_step < self.align_steps

    def pair_loss(self, frames: Tensor, wav: Tensor, in_sync: Tensor) -> tuple[Tensor, Tensor]:
        vis, aud = self.net.encode_visual(self.frames(frames)), self.net.encode_audio(self.mel(wav))
        if self.aligning():  # the transformers are not run: only the encoders learn
            return encoder_alignment_loss(vis, aud, in_sync, self.align_margin)
        logits = self.net.fuse(vis, aud)
        loss = F.binary_cross_entropy_with_logits(logits, in_sync)
        if self.align_weight:
            loss = loss + self.align_weight * encoder_alignment_loss(vis, aud, in_sync, self.align_margin)[0]
        return loss, logits.detach()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        if not self.negatives:
            return super().training_step(batch, batch_idx)
        frames, wav, _ = draw_candidates(batch["video"], batch["audio"], batch["target"].to(torch.long),
                                         shifts=self.shifts, negatives=self.negatives, window_frames=self.window_frames,
                                         fps=self.fps, sample_rate=self.sample_rate, min_gap=self.min_negative_gap)
        loss, scores = self.candidate_loss(frames, wav)
        log_epoch_mean(self, "train/loss", loss, on_step=True, prog_bar=True, batch_size=len(frames))
        # share of clips whose in-sync candidate scores highest (chance 1 / (1 + K))
        log_epoch_mean(self, "train/candidate_acc", (scores.argmax(1) == 0).float().mean(), on_step=False,
                       batch_size=len(frames))
        return loss

    def candidate_loss(self, frames: Tensor, wav: Tensor) -> tuple[Tensor, Tensor]:
        """(loss, scores (B, C)) of visual windows (B, T, H, W, 3) against audio candidates (B, C, S), C = 1 + K."""
        b, c = wav.shape[:2]
        vis = self.net.encode_visual(self.frames(frames))                       # (B, T, d), once per window
        aud = self.net.encode_audio(self.mel(wav.flatten(0, 1)))                # (B·C, Tm, d)
        if self.aligning():
            return candidate_alignment_loss(vis, aud.unflatten(0, (b, c)), self.align_temperature)
        logits = self.net.fuse(vis.repeat_interleave(c, dim=0), aud).view(b, c)
        in_sync = torch.zeros_like(logits)
        in_sync[:, 0] = 1.0
        pos_weight = torch.tensor(float(c - 1), device=logits.device)
        # mean over the C columns with pos_weight K is K/(K+1)·(pos + mean neg); rescale to the balanced mean
        loss = F.binary_cross_entropy_with_logits(logits, in_sync, pos_weight=pos_weight) * c / (2 * (c - 1))
        if self.align_weight:
            loss = loss + self.align_weight * candidate_alignment_loss(vis, aud.unflatten(0, (b, c)),
                                                                       self.align_temperature)[0]
        return loss, logits.detach()

    def decision_threshold(self, scores: Tensor) -> Tensor | float:
        return scores.median() if self.aligning() else 0.0

    def configure_optimizers(self):
        if not self.warmup_steps:
            return super().configure_optimizers()
        return adam_with_warmup(self.parameters(), self.lr, self.warmup_steps)

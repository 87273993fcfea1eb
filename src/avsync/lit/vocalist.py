"""VocaLiST as a LightningModule: the official recipe around the plain ``VocaLiST`` network.

Binary cross-entropy on balanced in-sync / shifted pairs, Adam lr 5e-5 (official scripts),
5-frame windows; evaluation by score search with context averaging (see
:mod:`avsync.lit.pair_scoring`). ``window_frames`` > 5 trains and scores a dedicated longer
window (the "Var = Y" rows of Table 2); ``train_window_frames`` draws the training window length
per batch from a list instead (the network takes any length).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from avsync.lit.offset_classification import load_matching_weights
from avsync.lit.pair_scoring import PairScoringModule, runs_of_equal_rows
from avsync.models.vocalist import build_vocalist
from avsync.models.vocalist_inputs import MouthFrames, VocaLiSTMel


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
    """

    def __init__(self, arch: str = "vocalist", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, window_frames: int = 5, clip_frames: int = 50,
                 max_shift: int = 15, tolerance_frames: int = 1, eval_contexts: Sequence[int] = (5, 7, 9, 11, 13, 15),
                 artificial_offsets: bool = False, train_window_frames: Sequence[int] | None = None,
                 lr: float = 5e-5, eval_batch_windows: int = 4, init_from: str | None = None,
                 log_figures: bool = True):
        protocol = dict(window_frames=window_frames, clip_frames=clip_frames, max_shift=max_shift,
                         tolerance_frames=tolerance_frames, eval_contexts=eval_contexts,
                         artificial_offsets=artificial_offsets, train_window_frames=train_window_frames, lr=lr,
                         eval_batch_windows=eval_batch_windows, log_figures=log_figures)
        super().__init__(**protocol)
        self.save_hyperparameters()
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
        """Sync logits; in eval mode each distinct visual window is encoded once (same values:
        batch norm uses running statistics there)."""
        if self.training:
            return self(frames, wav)
        first, group = runs_of_equal_rows(frames)
        vis = self.net.encode_visual(self.frames(frames[first]))[group]
        return self.net.fuse(vis, self.net.encode_audio(self.mel(wav)))

    def pair_loss(self, frames: Tensor, wav: Tensor, in_sync: Tensor) -> tuple[Tensor, Tensor]:
        logits = self(frames, wav)
        return F.binary_cross_entropy_with_logits(logits, in_sync), logits.detach()

    def decision_threshold(self, scores: Tensor) -> float:
        return 0.0

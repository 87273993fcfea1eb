"""Synchformer stage II as a LightningModule: offset classification from frozen segment features.

The feature extractors (pre-trained by Segment AVCLIP, stage I) are frozen and kept in eval mode;
only the projections and the synchronisation transformer train. 14 half-overlapping 0.64 s
segments (step 0.32 s, 4.8 s in all) per clip, 21 offset classes, cross-entropy, Adam (lr 2e-6
base, betas 0.9/0.999) with a 1k-iteration warm-up from lr/100 and gradient clipping at 1 (Trainer)
— the official ``configs/sync.yaml``. Everything shared by grid classifiers (loss, metrics,
figures, optimiser) is :class:`~avsync.lit.offset_classification.OffsetClassificationModule`'s.

A batch that carries cached features (``vis_feats`` (B, S, tv, D), ``aud_feats`` (B, S, ta, D); see
``avsync cache-features``) skips the extractors altogether.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from avsync.inputs import InputSpec
from avsync.lit.offset_classification import OffsetClassificationModule, load_matching_weights
from avsync.models.synchformer import SegmentInputs, Synchformer, get_config

log = logging.getLogger(__name__)

EXTRACTORS = ("vfeat_extractor.", "afeat_extractor.")


# the official Segment AVCLIP checkpoint names its extractors v_encoder / a_encoder
_OFFICIAL_STAGE1 = {"v_encoder.": "vfeat_extractor.", "a_encoder.": "afeat_extractor."}
_UNUSED = ("temp_attn_agg.", "global_attn_agg.")


def extractor_state(ckpt_path: str | Path) -> dict[str, torch.Tensor]:
    """The extractor tensors of a stage-I (ours or the official Segment AVCLIP ``.pt``), stage-II or
    converted checkpoint, named as in ``Synchformer``."""
    from avsync.convert import read_state_dict

    state = read_state_dict(ckpt_path)
    out = {}
    for key, value in state.items():
        for official, ours in _OFFICIAL_STAGE1.items():
            if key.startswith(official):
                key = ours + key[len(official):]
        if any(part in key for part in _UNUSED):
            continue
        for prefix in EXTRACTORS:
            at = key.find(prefix)
            if at == 0 or (at > 0 and key[at - 1] == "."):
                out[key[at:]] = value
    if not out:
        raise ValueError(f"{ckpt_path} holds no vfeat_extractor./afeat_extractor. tensors")
    return out


class SynchformerStage2Module(OffsetClassificationModule):
    """Offset classification with Synchformer over frozen extractors.

    Args:
        arch: registered configuration (``synchformer``, ``synchformer_toy``).
        arch_overrides: fields of :class:`~avsync.models.synchformer.SynchformerConfig` to change.
        input_overrides: fields of the :class:`~avsync.inputs.InputSpec` to change (frame size).
        segment_step: stride between segments as a fraction of a segment (0.5: half-overlapping).
        extractors_from: checkpoint of stage I (or any Synchformer checkpoint) whose extractors are used.
        init_from: checkpoint whose matching tensors initialise the whole network (e.g. a converted
            official model).
        freeze_extractors: the paper's setting; False trains end to end (appendix Table 2 rows).
    """

    def __init__(self, arch: str = "synchformer", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, segment_step: float = 0.5, lr: float = 2e-6,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0, warmup_steps: int = 1000,
                 extractors_from: str | None = None, init_from: str | None = None,
                 freeze_extractors: bool = True, log_figures: bool = True):
        self.save_hyperparameters()
        net = Synchformer(get_config(arch, arch_overrides))
        super().__init__(net.cfg.num_classes, lr, betas, weight_decay, warmup_steps, log_figures=log_figures)
        self.net = net
        cfg = net.cfg
        self.segment_step = float(segment_step)
        self.inputs = SegmentInputs(cfg)
        duration = self.inputs.clip_frames(cfg.num_segments, self.segment_step) / cfg.fps
        spec = InputSpec(fps=cfg.fps, duration_sec=duration, frame_size=cfg.motionformer.img_size,
                         sample_rate=cfg.sample_rate, offset_classes=cfg.num_classes)
        self.input_spec = dataclasses.replace(spec, **(input_overrides or {}))
        if init_from:
            missing = load_matching_weights(self.net, init_from, prefix="net.")
            log.info("initialised Synchformer from %s; %d tensors kept their init", init_from, len(missing))
        if extractors_from:
            state = extractor_state(extractors_from)
            own = {k for k in self.net.state_dict() if k.startswith(EXTRACTORS)}
            if own - set(state) or set(state) - own:
                raise ValueError(f"{extractors_from} does not hold this model's extractors: missing "
                                 f"{sorted(own - set(state))[:5]}, unexpected {sorted(set(state) - own)[:5]}")
            self.net.load_state_dict(state, strict=False)
        self.freeze_extractors = freeze_extractors
        if freeze_extractors:
            for extractor in (self.net.vfeat_extractor, self.net.afeat_extractor):
                extractor.requires_grad_(False)

    def train(self, mode: bool = True):
        """Frozen extractors stay in eval mode while the rest trains."""
        super().train(mode)
        if self.freeze_extractors:
            self.net.vfeat_extractor.eval()
            self.net.afeat_extractor.eval()
        return self

    def segment_features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-segment features of a batch: from the cache when it carries them, else from the extractors."""
        if "vis_feats" in batch and "aud_feats" in batch:
            return batch["vis_feats"].float(), batch["aud_feats"].float()
        s = self.net.cfg.num_segments
        video = self.inputs.video(batch["video"], s, self.segment_step)
        audio = self.inputs.audio(batch["audio"], s, self.segment_step)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_extractors):
            return self.net.features(video, audio)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.net.sync(*self.segment_features(batch))

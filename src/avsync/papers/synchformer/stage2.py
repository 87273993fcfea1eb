"""Synchformer stage II as a LightningModule: offset classification from frozen segment features.

The feature extractors (pre-trained by Segment AVCLIP, stage I) are frozen and kept in eval mode;
only the projections and the synchronisation transformer train. 14 half-overlapping 0.64 s
segments (step 0.32 s, 4.8 s in all) per clip, 21 offset classes, cross-entropy, Adam (lr 2e-6
base, betas 0.9/0.999) with a 1k-iteration warm-up from lr/100 and gradient clipping at 1 (Trainer)
— the official ``configs/sync.yaml``. Everything shared by grid classifiers (loss, metrics,
figures, optimiser) is :class:`~avsync.modules.offset_classification.OffsetClassificationModule`'s.

A batch that carries cached features (``vis_feats`` (B, S, tv, D), ``aud_feats`` (B, S, ta, D); see
``avsync cache-features``) skips the extractors altogether.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from avsync.inputs import InputSpec
from avsync.modules.offset_classification import OffsetClassificationModule, load_matching_weights
from avsync.papers.synchformer.network import SegmentInputs, Synchformer, get_config

log = logging.getLogger(__name__)

EXTRACTORS = ("vfeat_extractor.", "afeat_extractor.")


# the official Segment AVCLIP checkpoint names its extractors v_encoder / a_encoder
_OFFICIAL_STAGE1 = {"v_encoder.": "vfeat_extractor.", "a_encoder.": "afeat_extractor."}
_UNUSED = ("temp_attn_agg.", "global_attn_agg.")


def extractor_state(ckpt_path: str | Path | Mapping, name: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The extractor tensors of a stage-I (ours or the official Segment AVCLIP ``.pt``), stage-II or
    converted checkpoint (a path, or one already loaded and then named by ``name`` in errors), named
    as in ``Synchformer``."""
    from avsync.convert import read_state_dict

    state = read_state_dict(ckpt_path)
    ckpt_path = name or ckpt_path
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


def is_stage1_checkpoint(checkpoint: Mapping) -> bool:
    """Whether a loaded checkpoint is :class:`~avsync.papers.synchformer.stage1.SynchformerStage1Module`'s
    (it holds the segment projections of Segment AVCLIP)."""
    return any(key.startswith("segment_vproj.") for key in checkpoint.get("state_dict", checkpoint))


class SynchformerStage2Module(OffsetClassificationModule):
    """Offset classification with Synchformer over frozen extractors.

    Args:
        arch: registered configuration (``synchformer``, ``synchformer_toy``).
        arch_overrides: fields of :class:`~avsync.papers.synchformer.network.SynchformerConfig` to change.
        input_overrides: fields of the :class:`~avsync.inputs.InputSpec` to change (frame size).
        segment_step: stride between segments as a fraction of a segment (0.5: half-overlapping).
        extractors_from: checkpoint of stage I (or any Synchformer checkpoint) whose extractors are used.
        init_from: checkpoint whose matching tensors initialise the whole network (e.g. a converted
            official model, or an earlier stage II); from a stage-I checkpoint only the extractors
            (stage I does not train the sync module).
        freeze_extractors: the paper's setting; False trains end to end (appendix Table 2 rows).
        center_features: subtract each clip's mean over segments from its segment features before the
            sync module (the toy recipe; off = the paper). What a clip shares over time (a face, a
            voice's timbre) dominates narrow features; centred, the sync module sees their dynamics,
            as the centred stage-I loss did.
        projections_from_stage1: initialise ``vproj`` / ``aproj`` from the segment projections of the
            stage-I checkpoint given as ``init_from`` (toy recipe; same shapes), so the sync module
            starts in the space where stage I aligned the two streams.
        lr_per_device: multiply ``lr`` by the number of devices (the authors' rule: 2e-6 per GPU).
        eps: Adam's epsilon (the authors' 1e-7 in half precision).
    """

    def __init__(self, arch: str = "synchformer", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, segment_step: float = 0.5, lr: float = 2e-6,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0, warmup_steps: int = 1000,
                 extractors_from: str | None = None, init_from: str | None = None,
                 freeze_extractors: bool = True, log_figures: bool = True, center_features: bool = False,
                 projections_from_stage1: bool = False, lr_per_device: bool = False, eps: float = 1e-8):
        self.save_hyperparameters()
        net = Synchformer(get_config(arch, arch_overrides))
        super().__init__(net.cfg.num_classes, lr, betas, weight_decay, warmup_steps, log_figures=log_figures,
                         lr_per_device=lr_per_device, eps=eps)
        self.net = net
        cfg = net.cfg
        self.segment_step = float(segment_step)
        self.inputs = SegmentInputs(cfg)
        duration = self.inputs.clip_frames(cfg.num_segments, self.segment_step) / cfg.fps
        spec = InputSpec(fps=cfg.fps, duration_sec=duration, frame_size=cfg.motionformer.img_size,
                         sample_rate=cfg.sample_rate, offset_classes=cfg.num_classes)
        self.input_spec = dataclasses.replace(spec, **(input_overrides or {}))
        if init_from:  # read once: a full-size checkpoint is ~1 GB
            checkpoint = torch.load(init_from, map_location="cpu", weights_only=True)
            if is_stage1_checkpoint(checkpoint):
                # Segment AVCLIP trains only the extractors: the sync module in its checkpoint is an untrained
                # init of stage I's configuration, which would replace this one's (e.g. sync_init="xavier")
                self.net.load_state_dict(extractor_state(checkpoint, name=init_from), strict=False)
                log.info("initialised the extractors from the stage-I checkpoint %s", init_from)
            else:
                missing = load_matching_weights(self.net, checkpoint, prefix="net.")
                log.info("initialised Synchformer from %s; %d tensors kept their init", init_from, len(missing))
            if projections_from_stage1:
                self._projections_from_stage1(checkpoint, init_from)
        self.center_features = bool(center_features)
        if extractors_from:
            state = extractor_state(extractors_from)
            own = {k for k in self.net.state_dict() if k.startswith(EXTRACTORS)}
            if own - set(state) or set(state) - own:
                raise ValueError(f"{extractors_from} does not hold this model's extractors: missing "
                                 f"{sorted(own - set(state))[:5]}, unexpected {sorted(set(state) - own)[:5]}")
            self.net.load_state_dict(state, strict=False)
        self.freeze_extractors = freeze_extractors
        if freeze_extractors:
            self.freeze(self.net.vfeat_extractor, self.net.afeat_extractor)

    def _projections_from_stage1(self, checkpoint: Mapping, ckpt_path: str) -> None:
        """Copy Segment AVCLIP's segment projections (a loaded stage-I ``checkpoint``) into vproj / aproj."""
        state = checkpoint.get("state_dict", checkpoint)
        for ours, theirs in (("vproj", "segment_vproj"), ("aproj", "segment_aproj")):
            layer = getattr(self.net, ours)
            weight, bias = state.get(f"{theirs}.weight"), state.get(f"{theirs}.bias")
            if weight is None or weight.shape != layer.weight.shape:
                raise ValueError(f"{ckpt_path} holds no stage-I {theirs} of shape {tuple(layer.weight.shape)}")
            with torch.no_grad():
                layer.weight.copy_(weight)
                layer.bias.copy_(bias)

    def segment_features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-segment features of a batch: from the cache when it carries them, else from the extractors
        (centred if ``center_features``)."""
        if "vis_feats" in batch and "aud_feats" in batch:
            return self.centred(batch["vis_feats"].float(), batch["aud_feats"].float())
        s = self.net.cfg.num_segments
        video = self.inputs.video(batch["video"], s, self.segment_step)
        audio = self.inputs.audio(batch["audio"], s, self.segment_step)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_extractors):
            return self.centred(*self.net.features(video, audio))

    def centred(self, vis: torch.Tensor, aud: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, t, D) features less each clip's mean over segments and time if ``center_features``."""
        if not self.center_features:
            return vis, aud
        return vis - vis.mean((1, 2), keepdim=True), aud - aud.mean((1, 2), keepdim=True)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.net.sync(*self.segment_features(batch))

"""Synchformer stage I, Segment AVCLIP: segment-level audio-visual contrastive pre-training of the extractors.

Each in-sync clip is cut into adjacent 0.64 s segments (14 at full size, 8.96 s). Per segment,
the extractor tokens (8 visual / 6 audio after the AGG layers) are averaged over time, projected by
a linear layer and L2-normalised. InfoNCE (Eq. 4) runs over all B x S segments of the batch in both
directions (visual->audio and audio->visual, averaged): the positive of a segment is the other
modality's segment from the same time of the same video; the other segments of the same video and
all segments of the other videos are negatives. The temperature is learnable (init 0.07) and clamped
to [0.001, 0.5] before every step, as the official AVCLIP. AdamW (lr 1e-4, betas 0.9/0.999, no weight
decay) with a linear warm-up and a cosine schedule, stepped per iteration.

``center_segments`` (the toy recipe; off by default, i.e. the paper's loss) subtracts each clip's mean
over its segments from the projected embeddings before the cosine similarity, as SparseSync's toy
stage 0 does (:mod:`avsync.papers.sparsesync.selector_pretraining`): what a clip shares over time dominates narrow
features, and only its deviations carry the timing. Measured on the dense toy set (``synchformer_toy``,
8 segments, batch 8, lr 5e-4, seed 1337): centred, validation segment retrieval (64-way, chance 0.016)
0.16 / 0.37 / 0.62 / 0.66 at steps 100-400 (a second run, 300-step schedule: 0.15 / 0.44 / 0.48);
uncentred, 0.016 at step 100 and training retrieval at chance through step 180, when it was stopped.

The extractors live under ``net.`` in a full :class:`~avsync.papers.synchformer.network.Synchformer` (its
sync module is unused here), so stage II reads them from this checkpoint with ``extractors_from``.
"""
from __future__ import annotations

import dataclasses
import math

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from avsync.inputs import InputSpec
from avsync.training.stage_steps import StageSteps
from avsync.papers.synchformer.network import SegmentInputs, Synchformer, get_config, xavier_linears
from avsync.training.epoch_means import log_epoch_mean


def segment_infonce(z_v: torch.Tensor, z_a: torch.Tensor, temperature: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE between L2-normalised segment embeddings (N, D) whose row i are a positive pair.

    Returns the loss (mean of both directions) and the visual->audio retrieval accuracy.
    """
    logits = z_v @ z_a.t() / temperature
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    return loss, (logits.argmax(-1) == target).float().mean()


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR factor: linear warm-up from 0 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class SynchformerStage1Module(StageSteps, L.LightningModule):
    """Segment AVCLIP.

    Args:
        arch, arch_overrides: the Synchformer configuration (``synchformer``, ``synchformer_toy``).
        input_overrides: fields of the :class:`~avsync.inputs.InputSpec` to change (frame size).
        num_segments: adjacent segments per clip (14 = 8.96 s in the paper).
        init_temperature, temperature_range: the learnable temperature's start and clamp.
        motionformer_weights, ast_weights: local files of the unimodal pre-trained extractors in their
            original layouts (Motionformer SSv2 ``.pyth``; HuggingFace AST AudioSet state dict).
        max_steps: length of the cosine schedule (default: the Trainer's estimated stepping batches).
        center_segments: subtract each clip's mean over its segments from the projected segment
            embeddings before the cosine similarity (module docstring). Off by default: the paper's
            formulation; the toy recipe turns it on.
    """

    def __init__(self, arch: str = "synchformer", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, num_segments: int = 14, lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0, warmup_steps: int = 1000,
                 max_steps: int | None = None, init_temperature: float = 0.07,
                 temperature_range: tuple[float, float] = (0.001, 0.5),
                 motionformer_weights: str | None = None, ast_weights: str | None = None,
                 center_segments: bool = False):
        super().__init__()
        self.save_hyperparameters()
        self.net = Synchformer(get_config(arch, arch_overrides))
        cfg = self.net.cfg
        self.num_segments = int(num_segments)
        self.center_segments = bool(center_segments)
        self.inputs = SegmentInputs(cfg)
        duration = self.inputs.clip_frames(self.num_segments, 1.0) / cfg.fps
        # offset_classes=None with max_frame_shift=0: the data modules deliver in-sync crops
        spec = InputSpec(fps=cfg.fps, duration_sec=duration, frame_size=cfg.motionformer.img_size,
                         sample_rate=cfg.sample_rate, offset_classes=None, max_frame_shift=0)
        self.input_spec = dataclasses.replace(spec, **(input_overrides or {}))
        if self.input_spec.offset_classes is not None or self.input_spec.max_frame_shift != 0:
            raise ValueError("Segment AVCLIP trains on in-sync clips: offset_classes must stay None and "
                             "max_frame_shift 0")
        self.segment_vproj = nn.Linear(cfg.motionformer.dim, cfg.motionformer.dim)
        self.segment_aproj = nn.Linear(cfg.ast.dim, cfg.ast.dim)
        if cfg.init == "xavier":
            self.segment_vproj.apply(xavier_linears)
            self.segment_aproj.apply(xavier_linears)
        if cfg.motionformer.dim != cfg.ast.dim:
            raise ValueError("the two extractors must share a width for the segment similarity")
        self.temperature = nn.Parameter(torch.tensor(float(init_temperature)))
        self.temperature_range = tuple(float(t) for t in temperature_range)
        if motionformer_weights:
            self.net.vfeat_extractor.load_motionformer_weights(motionformer_weights)
        if ast_weights:
            self.net.afeat_extractor.load_ast_weights(ast_weights)
        self.net.vproj.requires_grad_(False)  # the sync module is stage II's
        self.net.aproj.requires_grad_(False)
        self.net.transformer.requires_grad_(False)

    def embeddings(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised segment embeddings (B*S, D) of both streams."""
        video = self.inputs.video(batch["video"], self.num_segments, 1.0)
        audio = self.inputs.audio(batch["audio"], self.num_segments, 1.0)
        vis, aud = self.net.features(video, audio)                 # (B, S, t, D)
        e_v, e_a = self.segment_vproj(vis.mean(2)), self.segment_aproj(aud.mean(2))  # (B, S, D)
        if self.center_segments:
            e_v, e_a = e_v - e_v.mean(1, keepdim=True), e_a - e_a.mean(1, keepdim=True)
        return F.normalize(e_v.flatten(0, 1), dim=-1), F.normalize(e_a.flatten(0, 1), dim=-1)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        with torch.no_grad():
            self.temperature.clamp_(*self.temperature_range)
        loss, acc = segment_infonce(*self.embeddings(batch), self.temperature)
        opts = dict(on_step=stage == "train", batch_size=batch["video"].shape[0])
        log_epoch_mean(self, f"{stage}/loss", loss, prog_bar=True, **opts)
        log_epoch_mean(self, f"{stage}/segment_acc", acc, prog_bar=True, **opts)
        if stage == "train":
            self.log("train/temperature", self.temperature.detach(), on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay)
        total = hp.max_steps or int(self.trainer.estimated_stepping_batches)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: warmup_cosine(it, hp.warmup_steps, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

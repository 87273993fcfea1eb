"""Audio-visual contrastive pre-training of SparseSync's extractors and selectors (the toy recipe's stage 0).

Why: offset classifiers sit on a long plateau at chance before they find the alignment
(ARCHITECTURE.md; SparseSync's own Table 3 shows how much pre-trained extractors matter). On the
toy set we measured the cause: at initialisation each selector attends almost uniformly over
time, so the selector summaries carry no timing for the synchronisation transformer to compare,
and no gradient reaches the selectors to make them time-specific. Pre-training with a segment-level
InfoNCE (the Segment AVCLIP idea of Synchformer, same authors) applied to the selector outputs
gives every selector a direct signal: on in-sync clips, visual selector k and audio selector k of
the same clip are the positive pair; the other selectors of the same clip and all selectors of the
other clips are negatives. Selectors thereby become temporally specific and cross-modally aligned,
and the offset classifier initialised from this stage (``SparseSyncModule(init_from=...)``)
learns within a few hundred steps instead of thousands. The architecture is unchanged.

One detail decides whether this stage itself leaves its own plateau in time: the segment tokens
are centred over time within each clip before the cosine similarity. A clip's tokens are dominated
by what does not change (the face, the voice's timbre), so uncentred tokens of one clip are nearly
parallel and the loss sees little of the dynamics that carry the synchronisation; centred, only
the deviations from the clip's mean are compared. Measured on the toy dense set (batch 16, lr 1e-3;
"escape" = training segment accuracy leaving ~3 % and climbing past 50 % within a few dozen steps):
uncentred, two full runs of the same config escaped at step ~130 and not at all in 600 steps, and
200-step probes escaped for 1 of 3 seeds (centring over the batch instead of over time: 0 of 1);
centred over time, every seed tried escaped (steps ~125-175), and 350 steps reached validation
segment / selector retrieval of 1.00 / 0.99 (one batch of 16 clips).

Four switches for the sparse set's 64 px stage (issue 22; all off by default). None of them made
that stage see the object from the start they were tried on (the reproduction README's section 8
has the runs); section 9 found that the stage took off in one chain of four, and that a start from
which the extractor can learn the events is not enough:

* ``segment_negatives``: ``"batch"`` (every time step of every clip, the default) or ``"clip"`` (the
  other time steps of the same clip only). With other clips' segments as negatives a segment can be
  told apart by *which clip* it comes from; on 192 training clips the 64 px stage memorised them
  (training retrieval up, validation loss up). Within a clip every negative shares the scene, the
  sound and the object, so only the timing of what happens can lower the loss.
* ``segment_margin``: time steps left out of the segment loss at each end of the window. The
  extractors' zero padding marks a window's ends in both streams alike: within a clip the first and
  last four of the toy S3D's 16 time steps are retrieved by position alone (0.78-1.00 there,
  0.06-0.22 in between, on stage 0b's checkpoint), and with clip negatives and no margin the stage
  sat at that shortcut (retrieval 0.56 from its first steps). The kept steps are centred over
  themselves.
* ``segment_scale``: ``"token"`` (each token to unit length: cosine similarity, the default) or
  ``"clip"`` (each clip's tokens divided by their root-mean-square length). Unit length makes every
  noise-only step weigh as much as the rare step with an impact; scaled per clip, quiet steps give
  small logits.
* ``onset_weight``: a linear head on each visual time step regresses the audio's onset strength in
  that step (:func:`audio_onset_strength`), a teacher from the in-sync audio only (no label, no
  generator metadata), for when the learnt audio tokens do not single out the impacts.

``detach_selector_inputs`` keeps the selector loss out of the extractors. It also escapes reliably
when combined with centring, but the selectors then read extractors that were not shaped for them:
the 3-class stage initialised from such a run reached 69.8 % acc@1 (80 steps, 320 training clips)
where runs without it reached 86.5-87.5 % (100 steps, 192 clips), so it is off by default.
"""
from __future__ import annotations

import dataclasses

import lightning as L
import torch
import torch.nn.functional as F

from avsync.inputs import FrameNormalize, InputSpec, LogSpectrogram
from avsync.training.optim import adam_with_warmup
from avsync.papers.sparsesync.module import build_sparsesync
from avsync.training.stage_steps import StageSteps
from avsync.training.epoch_means import log_epoch_mean


def audio_onset_strength(audio: torch.Tensor, sample_rate: int, steps: int) -> torch.Tensor:
    """(B, S) waveforms -> (B, steps) onset strength: the largest rise of the log-RMS (20 ms frames,
    10 ms hop) within each of ``steps`` equal parts of the window, standardised over the window.

    The same signal as :func:`avsync.toy.sparse_oracle.audio_onsets` (the oracle's: one clip in NumPy,
    one value per video frame), here batched in torch on the training device and pooled to the
    extractor's time steps."""
    hop, win = sample_rate // 100, sample_rate // 50
    frames = audio.float().unfold(-1, win, hop)                       # (B, n, win)
    log_rms = frames.square().mean(-1).add(1e-8).sqrt().add(1e-4).log()
    rise = F.relu(log_rms.diff(dim=-1))                                # (B, n - 1)
    per_step = F.adaptive_max_pool1d(rise[:, None], steps)[:, 0]       # (B, steps)
    return (per_step - per_step.mean(-1, keepdim=True)) / per_step.std(-1, keepdim=True).add(1e-6)


def rms_scaled_per_clip(tokens: torch.Tensor) -> torch.Tensor:
    """(B, t, d) tokens divided by each clip's root-mean-square token length (``segment_scale="clip"``).

    Scale-free: the squared length is clamped, not offset by an epsilon, which would swamp the tokens
    of an untrained extractor (~1e-6 long)."""
    mean_sq = tokens.square().sum(-1).mean(1, keepdim=True).clamp_min(torch.finfo(tokens.dtype).tiny)
    return tokens / mean_sq.sqrt()[..., None]


class SelectorContrastivePretraining(StageSteps, L.LightningModule):
    """InfoNCE between matching visual/audio selector outputs of in-sync clips.

    Args:
        arch, arch_overrides, input_overrides: as for :class:`~avsync.papers.sparsesync.module.SparseSyncModule`
            (the checkpoint initialises that module, so the architecture must be the same).
        temperature: softmax temperature of the InfoNCE logits (cosine similarities / temperature).
        center_segments: subtract each clip's temporal mean from its segment tokens (module docstring).
        detach_selector_inputs: keep the selector loss's gradient out of the extractors (module docstring).
        init_from: checkpoint whose matching tensors initialise the network: pre-training continued
            on another set (the toy recipe's sparse stage 0b starts from the dense stage 0).
        segment_negatives: ``"batch"`` or ``"clip"``: the segment InfoNCE's negatives (module docstring).
        segment_margin: time steps at each end of the window left out of the segment loss (module docstring).
        segment_scale: ``"token"`` (cosine) or ``"clip"`` (per-clip RMS length) scaling of segment tokens (module docstring).
        onset_weight: weight of the audio-onset regression of the visual time steps (0: off; module docstring).
    """

    def __init__(self, arch: str = "sparsesync", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, lr: float = 1e-3, warmup_steps: int = 100,
                 temperature: float = 0.1, center_segments: bool = True, detach_selector_inputs: bool = False,
                 init_from: str | None = None, segment_negatives: str = "batch",
                 segment_margin: int = 0, segment_scale: str = "token", onset_weight: float = 0.0):
        super().__init__()
        if segment_negatives not in ("batch", "clip"):
            raise ValueError(f"segment_negatives must be 'batch' or 'clip', not {segment_negatives!r}")
        if segment_scale not in ("token", "clip"):
            raise ValueError(f"segment_scale must be 'token' or 'clip', not {segment_scale!r}")
        self.save_hyperparameters()
        self.net = build_sparsesync(arch, arch_overrides)
        if init_from:
            from avsync.modules.offset_classification import load_matching_weights

            missing = load_matching_weights(self.net, init_from, prefix="net.")
            if missing:
                raise ValueError(f"{init_from}: {len(missing)} tensors of the network missing ({missing[:3]})")
        # offset_classes=None with max_frame_shift=0: the data modules deliver in-sync crops
        spec = dataclasses.replace(InputSpec(), **(input_overrides or {}))
        self.input_spec = dataclasses.replace(spec, offset_classes=None, max_frame_shift=0)
        self.frames = FrameNormalize()
        self.spectrogram = LogSpectrogram(n_fft=512, hop_length=128)
        self.lr, self.warmup_steps, self.temperature = lr, warmup_steps, temperature
        self.center_segments, self.detach_selector_inputs = center_segments, detach_selector_inputs
        self.segment_negatives, self.segment_margin = segment_negatives, int(segment_margin)
        self.segment_scale, self.onset_weight = segment_scale, float(onset_weight)
        # outside ``net``: the sync stages load ``net.*`` only, so the head stays in this stage
        self.onset_head = torch.nn.Linear(self.net.cfg.dim, 1) if self.onset_weight > 0 else None

    def embeddings(self, batch: dict) -> dict[str, torch.Tensor]:
        """Per-time-step extractor tokens (B, t, d) of both streams (without ``segment_margin`` steps at
        each end, centred over time if ``center_segments``), the selector outputs (B, k, d), and
        ``raw_v``: the visual tokens before both (the onset head's input)."""
        vis, aud = self.net.features(self.frames(batch["video"]), self.spectrogram(batch["audio"]))
        tr = self.net.transformer
        tok_v = vis.mean((2, 3))                                   # (B, t_v, d): pooled over space
        tok_a = F.interpolate(aud.mean(1).transpose(1, 2), size=tok_v.shape[1], mode="linear",
                              align_corners=False).transpose(1, 2)  # (B, t_v, d): over frequency, resampled
        raw_v = tok_v
        if self.segment_margin:
            keep = slice(self.segment_margin, tok_v.shape[1] - self.segment_margin)
            tok_v, tok_a = tok_v[:, keep], tok_a[:, keep]
        if self.center_segments:
            tok_v, tok_a = tok_v - tok_v.mean(1, keepdim=True), tok_a - tok_a.mean(1, keepdim=True)
        if self.detach_selector_inputs:
            vis, aud = vis.detach(), aud.detach()
        q_v = tr.v_selector(tr.vis_pos_emb(tr.pre_lnorm_vis(vis)))
        q_a = tr.a_selector(tr.aud_pos_emb(tr.pre_lnorm_aud(aud)))
        return {"tok_v": tok_v, "tok_a": tok_a, "sel_v": q_v, "sel_a": q_a, "raw_v": raw_v}

    def _nce(self, z_v: torch.Tensor, z_a: torch.Tensor, unit: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Symmetric InfoNCE over the last-but-one axis (positives on the diagonal), and its accuracy;
        ``unit``: cosine similarities (else dot products of the tokens as given)."""
        if unit:
            z_v, z_a = F.normalize(z_v, dim=-1), F.normalize(z_a, dim=-1)
        logits = z_v @ z_a.transpose(-1, -2) / self.temperature
        target = torch.arange(logits.shape[-1], device=logits.device).expand(logits.shape[:-1])
        loss = (F.cross_entropy(logits.flatten(0, -2), target.flatten())
                + F.cross_entropy(logits.transpose(-1, -2).flatten(0, -2), target.flatten())) / 2
        return loss, (logits.argmax(-1) == target).float().mean()

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """The stage's loss and its two retrieval accuracies for one batch (and the onset loss, if weighted)."""
        emb = self.embeddings(batch)
        # segments: every time step against the other time steps of the batch or of its clip (the
        # extractors learn time); (B, t, d) keeps one InfoNCE per clip, flattened one over the batch
        tok_v, tok_a = emb["tok_v"], emb["tok_a"]
        if self.segment_scale == "clip":
            tok_v, tok_a = rms_scaled_per_clip(tok_v), rms_scaled_per_clip(tok_a)
        if self.segment_negatives == "batch":
            tok_v, tok_a = tok_v.flatten(0, 1), tok_a.flatten(0, 1)
        seg_loss, seg_acc = self._nce(tok_v, tok_a, unit=self.segment_scale == "token")
        # selectors: visual selector k of a clip against every audio selector of every clip
        sel_loss, sel_acc = self._nce(emb["sel_v"].flatten(0, 1), emb["sel_a"].flatten(0, 1))
        out = {"loss": seg_loss + sel_loss, "segment_acc": seg_acc, "selector_acc": sel_acc}
        if self.onset_head is not None:
            target = audio_onset_strength(batch["audio"], self.input_spec.sample_rate, emb["raw_v"].shape[1])
            onset_loss = F.mse_loss(self.onset_head(emb["raw_v"])[..., 0], target)
            out["loss"] = out["loss"] + self.onset_weight * onset_loss
            out["onset_loss"] = onset_loss
        return out

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        out = self.losses(batch)
        log = dict(prog_bar=True, on_step=stage == "train", batch_size=batch["video"].shape[0])
        for name, value in out.items():
            log_epoch_mean(self, f"{stage}/{name}", value, **log)
        return out["loss"]

    def configure_optimizers(self):
        return adam_with_warmup(self.parameters(), self.lr, self.warmup_steps)

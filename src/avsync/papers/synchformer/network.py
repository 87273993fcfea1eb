"""Synchformer (Iashin et al., ICASSP 2024): segment-level features, then a light synchronisation module.

    14 RGB segments (16 x 224 x 224) --Motionformer + spatial AGG-->  14 x 8 visual tokens ┐
    14 log-mel segments (66 x 128)   --AST + frequency AGG------->   14 x 6 audio tokens  ├ vproj / aproj (768->768)
                                                                                           ┘
    [OFF; 112 visual; MOD; 84 audio] + learned PE (198) -> 3-layer transformer (8 heads, 768) -> ln_f
      -> linear head on OFF -> 21 offset classes

Module names mirror the official code (``vfeat_extractor``, ``afeat_extractor``, ``vproj``, ``aproj``,
``transformer.{OFF_tok, MOD_tok, vis_in_lnorm, aud_in_lnorm, pos_emb_cfg.pos_emb, blocks, ln_f,
off_head}``) so its checkpoints load with a key map of identity (``avsync.papers.synchformer.convert``).
Parameter counts of the full configuration equal the official ones: visual extractor 122,440,704,
audio 92,400,384, projections 2 x 590,592, sync transformer 21,437,973.

Segments: 0.64 s (16 frames at 25 fps, 10,240 samples at 16 kHz); stage I takes 14 adjacent
segments (8.96 s), stage II 14 half-overlapping ones (step 0.32 s, 4.8 s in all). The model-side
transforms (:class:`SegmentInputs`) cut the segments from the decoded clip, scale RGB to [0, 1] and
normalise it with mean = std = 0.5 in float16 (the official pipeline's half-precision frames) and compute the per-segment log-mel spectrogram exactly as the official
data pipeline (mel 128, window 400, hop 160, n_fft 1024, log(x + 1e-6), padded to 66 frames,
(x + 4.2677393) / (2 x 4.5689974)).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import torch
import torchaudio
from torch import nn

from avsync.papers.synchformer.ast import AST, ASTConfig
from avsync.papers.synchformer.motionformer import Motionformer, MotionformerConfig
from avsync.nn.transformer_blocks import Block, init_gpt_weights

AST_MEAN, AST_STD = -4.2677393, 4.5689974


@dataclass(frozen=True)
class SynchformerConfig:
    """Every size the architecture depends on; ``SYNCHFORMER_CONFIGS`` names the paper's and the toy one."""

    motionformer: MotionformerConfig = field(default_factory=MotionformerConfig)
    ast: ASTConfig = field(default_factory=ASTConfig)
    num_segments: int = 14          # stage II segments -> positional table of 2 + S * (tv + ta)
    dim: int = 768                  # sync transformer width
    depth: int = 3
    heads: int = 8
    num_classes: int = 21
    dropout: float = 0.1            # embd / resid / attn dropout of the official config
    fps: float = 25.0
    sample_rate: int = 16000
    # "reference": the official initialisation (trunc-normal 0.02 in the extractors and AGG layers,
    # N(0, 0.02) in the sync module, PyTorch defaults for the projections). "xavier": Xavier-uniform
    # linears with zero bias in the extractors and projections, for narrow models trained from
    # scratch: at width 64 the reference init leaves the AGG outputs small (no norm after the
    # pre-norm layer) next to the projection biases (~0.1), so segments look alike at the start.
    # Measured on random 32 px clips: visual features vary by 0.034 (std across segments) around a
    # mean magnitude of 0.037 with "reference", by 0.40 around 0.59 with "xavier". Same parameters
    # and computation.
    init: str = "reference"
    # Initialisation of the sync transformer (``transformer.*``): "reference" = the official N(0, 0.02)
    # linears; "xavier" = Xavier-uniform linears with zero bias (the toy recipe of stage II, as
    # SparseSync's toy config). At width 64, N(0, 0.02) queries and keys leave every attention map
    # uniform, and the toy stage II predicted one class in every run (reproductions/synchformer).
    sync_init: str = "reference"
    # Tokens per segment that enter the sync module: "all" = the paper's 8 visual + 6 audio tokens of
    # each segment (features before the within-segment aggregation); "mean" = one token per segment and
    # modality, their time average (what Segment AVCLIP compares), 2 + 2 S positions in all. A toy-scale
    # departure from the paper (reproductions/synchformer/README.md), off by default.
    segment_tokens: str = "all"

    @property
    def segment_frames(self) -> int:
        return self.motionformer.frames

    @property
    def num_positions(self) -> int:
        if self.segment_tokens == "mean":
            return 2 + 2 * self.num_segments
        return 2 + self.num_segments * (self.motionformer.time_tokens + self.ast.time_tokens)


SYNCHFORMER_CONFIGS: dict[str, SynchformerConfig] = {
    "synchformer": SynchformerConfig(),
    # toy scale: same topology, narrow (64-d, 2 layers), 32 px frames with 8 px patches, 64 mel bins;
    # still 16-frame / 0.64 s segments so the timing of the paper is unchanged; the tubelet stem starts
    # random, not zero (nothing to inflate it from)
    "synchformer_toy": SynchformerConfig(
        motionformer=MotionformerConfig(dim=64, depth=2, heads=4, img_size=32, patch_size=8, agg_heads=4,
                                        zero_init_tubelet=False),
        ast=ASTConfig(dim=64, depth=2, heads=4, mel_bins=64, agg_heads=4),
        dim=64, depth=2, heads=4, dropout=0.0, init="xavier"),
}
# toy stage II (issue 6): the same extractors, and a sync module that reads one token per segment and
# modality and starts from Xavier-initialised linears; the toy stage II left chance only with both
# (reproductions/synchformer/README.md). Not the paper's layout (198 positions), so named apart.
SYNCHFORMER_CONFIGS["synchformer_toy_mean_tokens"] = dataclasses.replace(
    SYNCHFORMER_CONFIGS["synchformer_toy"], sync_init="xavier", segment_tokens="mean")


def get_config(arch: str, overrides: dict | None = None) -> SynchformerConfig:
    """A registered configuration with single fields changed; ``motionformer`` / ``ast`` take dicts of
    their own fields (as a YAML config writes them)."""
    if arch not in SYNCHFORMER_CONFIGS:
        raise ValueError(f"unknown Synchformer arch {arch!r}; registered: {sorted(SYNCHFORMER_CONFIGS)}")
    base = SYNCHFORMER_CONFIGS[arch]
    fields = dict(overrides or {})
    for name in ("motionformer", "ast"):
        if isinstance(fields.get(name), dict):
            fields[name] = dataclasses.replace(getattr(base, name), **fields[name])
    return dataclasses.replace(base, **fields)


class SegmentInputs(nn.Module):
    """Decoded clip -> extractor inputs: uint8 frames (B, T, H, W, 3) and waveform (B, N) become
    RGB segments (B, S, 3, 16, H, W) and log-mel segments (B, S, 66, mel) (time, frequency).

    ``step`` is the segment stride as a fraction of a segment (1.0 adjacent, 0.5 half-overlapping).
    """

    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        self.frames_per_segment = cfg.segment_frames
        self.samples_per_segment = int(round(cfg.segment_frames / cfg.fps * cfg.sample_rate))
        self.spec_frames = cfg.ast.spec_frames
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate=cfg.sample_rate, n_fft=1024, win_length=400,
                                                        hop_length=160, n_mels=cfg.ast.mel_bins)
        for module in self.mel.modules():  # derived constants, not weights: keep them out of checkpoints
            for name, buf in list(module._buffers.items()):
                module.register_buffer(name, buf, persistent=False)

    def clip_frames(self, num_segments: int, step: float) -> int:
        return (num_segments - 1) * int(step * self.frames_per_segment) + self.frames_per_segment

    def video(self, frames: torch.Tensor, num_segments: int, step: float, half_precision: bool = True) -> torch.Tensor:
        """``half_precision``: the frames are normalised in float16 as the Synchformer authors' own
        pipeline does (below); False: in float32, as av-benchmark's DeSync reader does."""
        if frames.dim() != 5 or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames (B, T, H, W, 3), got {tuple(frames.shape)}")
        stride, need = int(step * self.frames_per_segment), self.clip_frames(num_segments, step)
        if frames.shape[1] < need:
            raise ValueError(f"{num_segments} segments with step {step} need {need} frames, got {frames.shape[1]}")
        # in half precision, as the authors' RGBToHalfToZeroOne + RGBNormalize (their sync and
        # synchronizability models are trained and tested on these float16 values); float32 after
        x = frames.half() if half_precision else frames.float()
        x = x.div(255.0).sub(0.5).div(0.5).float().permute(0, 4, 1, 2, 3)  # (B, 3, T, H, W)
        segs = x.unfold(2, self.frames_per_segment, stride)[:, :, :num_segments]  # (B, 3, S, H, W, 16)
        return segs.permute(0, 2, 1, 5, 3, 4).contiguous()                     # (B, S, 3, 16, H, W)

    def audio(self, wav: torch.Tensor, num_segments: int, step: float) -> torch.Tensor:
        if wav.dim() != 2:
            raise ValueError(f"expected waveforms (B, N), got {tuple(wav.shape)}")
        size = self.samples_per_segment
        stride = int(step * size)
        need = (num_segments - 1) * stride + size
        if wav.shape[1] < need:
            raise ValueError(f"{num_segments} segments with step {step} need {need} samples, got {wav.shape[1]}")
        segs = wav.float().unfold(1, size, stride)[:, :num_segments]            # (B, S, size)
        spec = torch.log(self.mel(segs) + 1e-6)                                  # (B, S, mel, t)
        t = spec.shape[-1]
        if t < self.spec_frames:
            spec = nn.functional.pad(spec, (0, self.spec_frames - t), value=0.0)
        spec = spec[..., : self.spec_frames]
        spec = (spec - AST_MEAN) / (2 * AST_STD)
        return spec.transpose(-1, -2).contiguous()                               # (B, S, 66, mel)


class PositionalEncoding(nn.Module):
    """Learned table added to the whole [OFF; v; MOD; a] sequence (official ``RandInitPositionalEncoding``)."""

    def __init__(self, length: int, dim: int):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.randn(1, length, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pos_emb.shape[1]:
            raise ValueError(f"sequence of {x.shape[1]} tokens is longer than the positional table "
                             f"({self.pos_emb.shape[1]}): more segments than the model was built for")
        return x + self.pos_emb[:, : x.shape[1]]


class SyncTransformer(nn.Module):
    """[OFF; LN(v); MOD; LN(a)] + PE -> dropout -> blocks -> ln_f -> off_head(OFF)."""

    def __init__(self, cfg: SynchformerConfig):
        super().__init__()
        d = cfg.dim
        self.vis_in_lnorm = nn.LayerNorm(d)
        self.aud_in_lnorm = nn.LayerNorm(d)
        self.OFF_tok = nn.Parameter(torch.randn(1, 1, d))
        self.MOD_tok = nn.Parameter(torch.randn(1, 1, d))
        self.pos_emb_cfg = PositionalEncoding(cfg.num_positions, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.Sequential(*[Block(d, cfg.heads, cfg.dropout, cfg.dropout) for _ in range(cfg.depth)])
        self.ln_f = nn.LayerNorm(d)
        self.off_head = nn.Linear(d, cfg.num_classes)
        self.apply(init_gpt_weights)

    def off_token(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The final state of the OFF token (B, D): what the offset head (and the synchronizability
        head) read."""
        b = v.shape[0]
        x = torch.cat([self.OFF_tok.expand(b, -1, -1), self.vis_in_lnorm(v),
                       self.MOD_tok.expand(b, -1, -1), self.aud_in_lnorm(a)], dim=1)
        x = self.ln_f(self.blocks(self.drop(self.pos_emb_cfg(x))))
        return x[:, 0]

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.off_head(self.off_token(v, a))


def segment_tokens(cfg: SynchformerConfig, vis: torch.Tensor, aud: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-segment features (B, S, t, D) as the sync module takes them: all t tokens (the paper) or
    their mean over time (``cfg.segment_tokens == "mean"``, t becomes 1)."""
    if vis.dim() != 4 or aud.dim() != 4:
        raise ValueError(f"expected segment features (B, S, t, D), got {tuple(vis.shape)} and {tuple(aud.shape)}")
    if cfg.segment_tokens == "mean":
        return vis.mean(2, keepdim=True), aud.mean(2, keepdim=True)
    return vis, aud


def xavier_linears(module: nn.Module) -> None:
    """Xavier-uniform weights and zero bias for a linear layer (``SynchformerConfig.init = "xavier"``)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class Synchformer(nn.Module):
    """Feature extractors + synchronisation module; ``features`` and ``sync`` are usable on their own
    (stage I trains the former, stage II the latter, possibly from cached features)."""

    def __init__(self, cfg: SynchformerConfig | None = None):
        super().__init__()
        cfg = cfg or SynchformerConfig()
        self.cfg = cfg
        self.vfeat_extractor = Motionformer(cfg.motionformer)
        self.afeat_extractor = AST(cfg.ast)
        self.vproj = nn.Linear(cfg.motionformer.dim, cfg.dim)
        self.aproj = nn.Linear(cfg.ast.dim, cfg.dim)
        self.transformer = SyncTransformer(cfg)
        if cfg.init not in ("reference", "xavier"):
            raise ValueError(f"init must be 'reference' or 'xavier', got {cfg.init!r}")
        if cfg.init == "xavier":
            for module in (self.vfeat_extractor, self.afeat_extractor, self.vproj, self.aproj):
                module.apply(xavier_linears)
        if cfg.sync_init not in ("reference", "xavier"):
            raise ValueError(f"sync_init must be 'reference' or 'xavier', got {cfg.sync_init!r}")
        if cfg.segment_tokens not in ("all", "mean"):
            raise ValueError(f"segment_tokens must be 'all' or 'mean', got {cfg.segment_tokens!r}")
        if cfg.sync_init == "xavier":  # after everything else: the reference path draws the same numbers
            self.transformer.apply(xavier_linears)

    def features(self, video_segments: torch.Tensor, audio_segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB (B, S, 3, 16, H, W), log-mel (B, S, 66, F) -> visual (B, S, tv, Dv), audio (B, S, ta, Da)."""
        if video_segments.shape[:2] != audio_segments.shape[:2]:
            raise ValueError(f"audio and visual segment counts differ: {tuple(video_segments.shape[:2])} vs "
                             f"{tuple(audio_segments.shape[:2])}")
        return self.vfeat_extractor(video_segments), self.afeat_extractor(audio_segments)

    def sync_token(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        """Per-segment features (B, S, tv, D), (B, S, ta, D) -> final OFF-token state (B, dim)."""
        vis, aud = segment_tokens(self.cfg, vis, aud)
        vis, aud = self.vproj(vis), self.aproj(aud)
        return self.transformer.off_token(vis.flatten(1, 2), aud.flatten(1, 2))

    def sync(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        """Per-segment features (B, S, tv, D), (B, S, ta, D) -> offset logits (B, num_classes)."""
        return self.transformer.off_head(self.sync_token(vis, aud))

    def forward(self, video_segments: torch.Tensor, audio_segments: torch.Tensor) -> torch.Tensor:
        return self.sync(*self.features(video_segments, audio_segments))


class SynchronizabilityHead(nn.Module):
    """Synchformer §4.2: one more linear head on the OFF token, a logit of "these streams can be
    synchronised at all" (trained with BCE; sigmoid = synchronizability score). Kept apart from
    :class:`Synchformer` so stage-II checkpoints (and the official ones) load unchanged."""

    def __init__(self, dim: int):
        super().__init__()
        self.sync_head = nn.Linear(dim, 1)

    def forward(self, off_token: torch.Tensor) -> torch.Tensor:
        return self.sync_head(off_token).squeeze(-1)


class OffsetReference(nn.Module):
    """A frozen copy of a stage-II model's offset path (projections + sync transformer + offset head).

    Fine-tuning the sync module for synchronizability changes what its offset head sees; Fig. 4
    (right) filters the *synchronisation* model's predictions by the synchronizability score, so
    the offset predictions come from this snapshot of the stage-II weights."""

    def __init__(self, net: Synchformer):
        super().__init__()
        self.cfg = net.cfg
        self.vproj = copy.deepcopy(net.vproj)
        self.aproj = copy.deepcopy(net.aproj)
        self.transformer = copy.deepcopy(net.transformer)
        self.requires_grad_(False)

    def forward(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        vis, aud = segment_tokens(self.cfg, vis, aud)
        return self.transformer(self.vproj(vis).flatten(1, 2), self.aproj(aud).flatten(1, 2))

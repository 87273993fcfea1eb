"""Audio Spectrogram Transformer (AST): Synchformer's audio feature extractor.

    log-mel segment (66 frames x 128 bins) --16x16 patches, stride 10--> 12 (freq) x 6 (time) tokens
      + CLS + distillation token -> 12 ViT-B layers -> LayerNorm
      -> frequency AGG layer per time step -> (6, 768) per segment

Parameter names follow HuggingFace's ``ASTModel`` (``embeddings.*``, ``encoder.layer.N.attention.
attention.{query,key,value}`` ...) under ``ast.``, as the official Synchformer code wraps it, so the
AudioSet-fine-tuned AST (``audio_spectrogram_transformer.*``) and Synchformer checkpoints load by
key. The input is (time, frequency) per segment, transposed to (frequency, time) before patching
exactly as HuggingFace does, so the 12x6 token grid is frequency-major.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avsync.papers.synchformer.segment_aggregation import AggregationLayer


@dataclass(frozen=True)
class ASTConfig:
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    mel_bins: int = 128
    spec_frames: int = 66     # log-mel frames per segment (0.64 s at hop 10 ms, padded)
    patch_size: int = 16
    stride: int = 10
    eps: float = 1e-12        # HuggingFace ViT/AST layer-norm epsilon
    agg_heads: int = 12

    @property
    def freq_tokens(self) -> int:
        return (self.mel_bins - self.patch_size) // self.stride + 1

    @property
    def time_tokens(self) -> int:
        return (self.spec_frames - self.patch_size) // self.stride + 1


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (lin(x).view(b, n, self.heads, -1).transpose(1, 2) for lin in (self.query, self.key, self.value))
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)


class _Dense(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.dense = nn.Linear(dim_in, dim_out)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attention = _SelfAttention(dim, heads)
        self.output = _Dense(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output.dense(self.attention(x))


class ASTLayer(nn.Module):
    """Pre-norm ViT layer with HuggingFace names."""

    def __init__(self, dim: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.attention = _Attention(dim, heads)
        self.intermediate = _Dense(dim, hidden)
        self.output = _Dense(hidden, dim)
        self.layernorm_before = nn.LayerNorm(dim, eps=eps)
        self.layernorm_after = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output.dense(F.gelu(self.intermediate.dense(self.layernorm_after(x))))


class _PatchEmbeddings(nn.Module):
    def __init__(self, cfg: ASTConfig):
        super().__init__()
        self.projection = nn.Conv2d(1, cfg.dim, cfg.patch_size, cfg.stride)


class ASTEmbeddings(nn.Module):
    def __init__(self, cfg: ASTConfig):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.position_embeddings = nn.Parameter(torch.zeros(1, cfg.freq_tokens * cfg.time_tokens + 2, cfg.dim))
        self.patch_embeddings = _PatchEmbeddings(cfg)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:  # (N, time, freq)
        x = self.patch_embeddings.projection(spec.unsqueeze(1).transpose(2, 3)).flatten(2).transpose(1, 2)
        n = x.shape[0]
        x = torch.cat([self.cls_token.expand(n, -1, -1), self.distillation_token.expand(n, -1, -1), x], dim=1)
        return x + self.position_embeddings


class _Encoder(nn.Module):
    def __init__(self, cfg: ASTConfig):
        super().__init__()
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.layer = nn.ModuleList(ASTLayer(cfg.dim, cfg.heads, hidden, cfg.eps) for _ in range(cfg.depth))


class ASTBackbone(nn.Module):
    """HuggingFace ``ASTModel`` without pooling: (N, time, freq) -> last hidden state (N, 2 + f*t, dim)."""

    def __init__(self, cfg: ASTConfig):
        super().__init__()
        self.embeddings = ASTEmbeddings(cfg)
        self.encoder = _Encoder(cfg)
        self.layernorm = nn.LayerNorm(cfg.dim, eps=cfg.eps)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(spec)
        for layer in self.encoder.layer:
            x = layer(x)
        return self.layernorm(x)


class AST(nn.Module):
    """Segments (B, S, time, freq) log-mel -> per-segment tokens (B, S, time_tokens, dim)."""

    def __init__(self, cfg: ASTConfig | None = None):
        super().__init__()
        cfg = cfg or ASTConfig()
        self.cfg = cfg
        self.ast = ASTBackbone(cfg)
        self.freq_attn_agg = AggregationLayer(cfg.dim, cfg.agg_heads, cfg.mlp_ratio)
        for m in self.ast.modules():  # HuggingFace ViT init: N(0, 0.02) linears / conv, zero bias
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        for p in (self.ast.embeddings.cls_token, self.ast.embeddings.distillation_token,
                  self.ast.embeddings.position_embeddings):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if spec.dim() != 4 or spec.shape[2:] != (cfg.spec_frames, cfg.mel_bins):
            raise ValueError(f"AST expects segments (B, S, {cfg.spec_frames}, {cfg.mel_bins}) as (time, mel), "
                             f"got {tuple(spec.shape)}")
        b, s = spec.shape[:2]
        x = self.ast(spec.flatten(0, 1))[:, 2:]                    # (BS, f*t, D), frequency-major
        f, t, d = cfg.freq_tokens, cfg.time_tokens, cfg.dim
        x = x.view(b * s, f, t, d).transpose(1, 2).reshape(b * s * t, f, d)
        return self.freq_attn_agg(x).view(b, s, t, d)

    def load_ast_weights(self, path: str | Path) -> None:
        """Initialise the backbone from an original AST checkpoint: HuggingFace ``ASTForAudioClassification``
        (``audio_spectrogram_transformer.*``; e.g. ``MIT/ast-finetuned-audioset-10-10-0.4593``) or a bare
        ``ASTModel`` state dict. Its classifier is dropped; the position table, pre-trained for 1024 frames
        (1214 positions), keeps its first 2 + f*t rows as the official code does; the AGG layer keeps its init."""
        from avsync.convert import read_state_dict

        state = read_state_dict(path)
        prefix = "audio_spectrogram_transformer."
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        own = self.ast.state_dict()
        pos = "embeddings.position_embeddings"
        if pos in state and state[pos].shape[1] > own[pos].shape[1]:
            state[pos] = state[pos][:, : own[pos].shape[1]].clone()
        self.ast.load_state_dict(state, strict=True)

"""Motionformer with divided space-time attention: Synchformer's visual feature extractor.

    RGB segment (3, 16, 224, 224) --tubelet 2x16x16--> 8 x 14 x 14 tokens + CLS
      -> 12 divided space-time blocks (time attention, then space attention, then MLP)
      -> LayerNorm -> spatial AGG layer per time step -> (8, 768) per segment

The layout follows the official Synchformer / Motionformer code (``cls_token``, ``pos_embed``
(1 + 196), ``temp_embed`` (8), ``patch_embed`` (the 2-D stem kept only for weight inflation;
unused and frozen), ``patch_embed_3d``, ``blocks.N.{norm1,attn,timeattn,norm2,mlp,norm3}``,
``norm``, ``spatial_attn_agg``) so that Motionformer (SSv2) and Synchformer checkpoints load by
key. Attention is computed with ``F.scaled_dot_product_attention``; the CLS token attends to all
tokens, every patch token attends along one axis (time or space) plus the CLS token, as in the
reference ``DividedAttention``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avsync.papers.synchformer.segment_aggregation import AggregationLayer


@dataclass(frozen=True)
class MotionformerConfig:
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    img_size: int = 224
    patch_size: int = 16
    frames: int = 16          # frames per segment
    tubelet: int = 2          # temporal patch size
    agg_heads: int = 12
    # the reference zero-initialises the tubelet stem (it is inflated from pre-trained 2-D weights);
    # trained from scratch (toy runs) a zero stem makes every segment look alike at the start
    zero_init_tubelet: bool = True

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def time_tokens(self) -> int:
        return self.frames // self.tubelet


class DividedAttention(nn.Module):
    """Attention along one axis of a (frames x patches) token grid, with a global CLS token."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, axis: str) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q, k, v = (t.view(b, n, h, d // h).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))  # (b,h,n,c)
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)                            # (b,h,1,c)
        p = (n - 1) // frames

        def grid(t: torch.Tensor) -> torch.Tensor:  # (b,h,f*p,c) -> (b,h,groups,len,c)
            t = t[:, :, 1:].reshape(b, h, frames, p, -1)
            return t if axis == "space" else t.transpose(2, 3)
        qg, kg, vg = grid(q), grid(k), grid(v)
        groups = qg.shape[2]
        kg = torch.cat([k[:, :, None, :1].expand(-1, -1, groups, -1, -1), kg], dim=3)
        vg = torch.cat([v[:, :, None, :1].expand(-1, -1, groups, -1, -1), vg], dim=3)
        out = F.scaled_dot_product_attention(qg, kg, vg)                                       # (b,h,g,len,c)
        if axis != "space":
            out = out.transpose(2, 3)
        out = torch.cat([cls_out, out.reshape(b, h, n - 1, -1)], dim=2)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DividedSpaceTimeBlock(nn.Module):
    """x + time-attn(norm3 x); then + space-attn(norm1 .); then + mlp(norm2 .) (TimeSformer order)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = DividedAttention(dim, heads)
        self.timeattn = DividedAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), frames, "time")
        x = x + self.attn(self.norm1(x), frames, "space")
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, conv: nn.Module):
        super().__init__()
        self.proj = conv


class Motionformer(nn.Module):
    """Segments (B, S, 3, T, H, W) normalised RGB -> per-segment tokens (B, S, T / tubelet, dim)."""

    def __init__(self, cfg: MotionformerConfig | None = None):
        super().__init__()
        cfg = cfg or MotionformerConfig()
        self.cfg = cfg
        d, p = cfg.dim, cfg.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid ** 2 + 1, d))
        self.temp_embed = nn.Parameter(torch.zeros(1, cfg.time_tokens, d))
        # the 2-D stem only exists in the reference for inflating image weights; it is never applied
        self.patch_embed = PatchEmbed(nn.Conv2d(3, d, p, p))
        self.patch_embed.requires_grad_(False)
        self.patch_embed_3d = PatchEmbed(nn.Conv3d(3, d, (cfg.tubelet, p, p), (cfg.tubelet, p, p)))
        self.blocks = nn.ModuleList(DividedSpaceTimeBlock(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.spatial_attn_agg = AggregationLayer(d, cfg.agg_heads, cfg.mlp_ratio)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear) and not isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cfg.zero_init_tubelet:
            nn.init.zeros_(self.patch_embed_3d.proj.weight)  # as the reference: inflated from the 2-D stem

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) -> last-layer patch tokens (N, t, h, w, dim), normalised."""
        cfg = self.cfg
        if x.shape[1:] != (3, cfg.frames, cfg.img_size, cfg.img_size):
            raise ValueError(f"Motionformer expects segments of (3, {cfg.frames}, {cfg.img_size}, {cfg.img_size}), "
                             f"got {tuple(x.shape[1:])}")
        n = x.shape[0]
        x = self.patch_embed_3d.proj(x)                           # (N, D, t, h, w)
        t, h, w = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)                         # (N, t*h*w, D), frame-major
        pos = self.pos_embed[:, 1:].repeat(1, t, 1) + self.temp_embed.repeat_interleave(h * w, dim=1)
        x = torch.cat([self.cls_token.expand(n, -1, -1) + self.pos_embed[:, :1], x + pos], dim=1)
        for blk in self.blocks:
            x = blk(x, t)
        return self.norm(x[:, 1:]).view(n, t, h, w, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 6:
            raise ValueError(f"expected segments (B, S, 3, T, H, W), got shape {tuple(x.shape)}")
        b, s = x.shape[:2]
        tok = self.tokens(x.flatten(0, 1))                       # (BS, t, h, w, D)
        bs, t, h, w, d = tok.shape
        agg = self.spatial_attn_agg(tok.reshape(bs * t, h * w, d))  # (BS*t, D)
        return agg.view(b, s, t, d)

    def load_motionformer_weights(self, path: str | Path) -> None:
        """Initialise the backbone from an original Motionformer checkpoint (e.g. ``ssv2_divided_224_16x4.pyth``,
        ``{'model_state': ...}``); its classifier head is dropped, the aggregation layer keeps its init."""
        from avsync.convert import read_state_dict, safe_load

        obj = safe_load(path)
        state = obj.get("model_state", obj) if isinstance(obj, dict) else obj
        state = read_state_dict(state)
        state = {k: v for k, v in state.items() if not k.startswith(("head.", "head0.", "head1.", "pre_logits."))}
        own = {k for k in self.state_dict() if not k.startswith("spatial_attn_agg.")}
        missing, unexpected = own - set(state), set(state) - own
        if missing or unexpected:
            raise ValueError(f"{path} is not a divided space-time Motionformer checkpoint: missing "
                             f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
        self.load_state_dict(state, strict=False)

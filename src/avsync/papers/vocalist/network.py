"""VocaLiST (Kadandale et al., Interspeech 2022): lip-voice synchronisation with cross-modal transformers.

    mouth crops 48x96, T frames --residual 3D CNN (keeps time)--> 512 x T     ┐ A->V (audio queries)  ┐ fusion: A->V
                                                                             ├                       ├ output queries
    80-bin mel, 3.2T frames --residual 2D CNN (keeps time)--> 512 x 3.2T      ┘ V->A (visual queries) ┘ V->A output
                                                    -> max over time -> tanh(FC) -> FC -> 1 logit

Every layer, its order, activation, normalisation and pooling follow the official code
(``vskadandale/vocalist``, ``models/model.py``; its transformer is the Multimodal-Transformer /
fairseq encoder): pre-norm layers, input scaled by sqrt(d), fairseq sinusoidal positions, the
"buffered future mask" on every cross-attention, a final LayerNorm per transformer. Module
names equal the official ones, so an official checkpoint loads after dropping its two
meaningless buffers (``version``, ``embed_positions._float_tensor``; see
:mod:`avsync.papers.vocalist.convert`). Parameters: 80,106,561 (visual 38.6M, audio 3.4M).

Two quirks of the reference are kept on purpose, because checkpoints were trained with them:

* the positional embedding of a token is zero wherever its feature channel 0 is exactly 0
  (fairseq treats that value as padding; after a ReLU this happens often);
* the embedding dropout draws separate masks for the keys and the values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VocaLiSTConfig", "VOCALIST_CONFIGS", "VocaLiST", "build_vocalist"]

MOUTH_HEIGHT, MOUTH_WIDTH = 48, 96


@dataclass
class VocaLiSTConfig:
    """Sizes of the network; ``VOCALIST_CONFIGS`` names the paper's and a toy one."""

    widths: tuple[int, int, int, int, int] = (32, 64, 128, 256, 512)  # conv stages; the last = d_model
    heads: int = 8
    layers: int = 4                      # per cross-modal transformer
    attn_dropout: float = 0.0
    relu_dropout: float = 0.1
    res_dropout: float = 0.1
    embed_dropout: float = 0.25

    @property
    def dim(self) -> int:
        return self.widths[-1]


VOCALIST_CONFIGS: dict[str, VocaLiSTConfig] = {
    "vocalist": VocaLiSTConfig(),
    # toy scale for CPU tests: the same topology (all 17 + 14 conv blocks, three transformers)
    # with narrow channels and two 64-d layers; inputs stay 48x96 mouth crops
    "vocalist_toy": VocaLiSTConfig(widths=(4, 8, 16, 32, 32), heads=4, layers=2),
}


def build_vocalist(arch: str = "vocalist", overrides: dict | None = None) -> "VocaLiST":
    if arch not in VOCALIST_CONFIGS:
        raise ValueError(f"unknown VocaLiST arch {arch!r}; registered: {sorted(VOCALIST_CONFIGS)}")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in (overrides or {}).items()}
    return VocaLiST(VocaLiSTConfig(**{**VOCALIST_CONFIGS[arch].__dict__, **fields}))


# --------------------------------------------------------------------------------------------
# Convolutional encoders
# --------------------------------------------------------------------------------------------
class ConvBlock(nn.Module):
    """conv -> BatchNorm (-> + input when residual) -> ReLU; ``conv_block.{0,1}`` as in the reference."""

    def __init__(self, conv: type[nn.Module], bn: type[nn.Module], cin: int, cout: int, kernel_size, stride,
                 padding, residual: bool = False):
        super().__init__()
        self.conv_block = nn.Sequential(conv(cin, cout, kernel_size, stride, padding), bn(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return F.relu(out)


def _conv3d(cin, cout, k, s, p, residual=False) -> ConvBlock:
    return ConvBlock(nn.Conv3d, nn.BatchNorm3d, cin, cout, k, s, p, residual)


def _conv2d(cin, cout, k, s, p, residual=False) -> ConvBlock:
    return ConvBlock(nn.Conv2d, nn.BatchNorm2d, cin, cout, k, s, p, residual)


def visual_encoder(w: tuple[int, ...]) -> nn.Sequential:
    """(B, 3, 48, 96, T) -> (B, w4, 1, 1, T). Axes are (H, W, T): strides never touch time."""
    return nn.Sequential(
        _conv3d(3, w[0], 7, 1, 3),
        _conv3d(w[0], w[1], 5, (1, 2, 1), (1, 1, 2)),
        _conv3d(w[1], w[1], 3, 1, 1, True),
        _conv3d(w[1], w[1], 3, 1, 1, True),
        _conv3d(w[1], w[2], 3, (2, 2, 1), 1),
        _conv3d(w[2], w[2], 3, 1, 1, True),
        _conv3d(w[2], w[2], 3, 1, 1, True),
        _conv3d(w[2], w[2], 3, 1, 1, True),
        _conv3d(w[2], w[3], 3, (2, 2, 1), 1),
        _conv3d(w[3], w[3], 3, 1, 1, True),
        _conv3d(w[3], w[3], 3, 1, 1, True),
        _conv3d(w[3], w[4], 3, (2, 2, 1), 1),
        _conv3d(w[4], w[4], 3, 1, 1, True),
        _conv3d(w[4], w[4], 3, 1, 1, True),
        _conv3d(w[4], w[4], 3, (2, 2, 1), 1),
        _conv3d(w[4], w[4], 3, 1, (0, 0, 1)),
        _conv3d(w[4], w[4], 1, 1, 0),
    )


def audio_encoder(w: tuple[int, ...]) -> nn.Sequential:
    """(B, 1, 80, Tm) -> (B, w4, 1, Tm). Strides (3, 1) reduce only the mel axis."""
    return nn.Sequential(
        _conv2d(1, w[0], 3, 1, 1),
        _conv2d(w[0], w[0], 3, 1, 1, True),
        _conv2d(w[0], w[0], 3, 1, 1, True),
        _conv2d(w[0], w[1], 3, (3, 1), 1),
        _conv2d(w[1], w[1], 3, 1, 1, True),
        _conv2d(w[1], w[1], 3, 1, 1, True),
        _conv2d(w[1], w[2], 3, (3, 1), 1),
        _conv2d(w[2], w[2], 3, 1, 1, True),
        _conv2d(w[2], w[2], 3, 1, 1, True),
        _conv2d(w[2], w[3], 3, (3, 1), 1),
        _conv2d(w[3], w[3], 3, 1, 1, True),
        _conv2d(w[3], w[3], 3, 1, 1, True),
        _conv2d(w[3], w[4], 3, 1, (0, 1)),
        _conv2d(w[4], w[4], 1, 1, 0),
    )


# --------------------------------------------------------------------------------------------
# Cross-modal transformer (Multimodal-Transformer / fairseq encoder, batch-first here)
# --------------------------------------------------------------------------------------------
def sinusoidal_table(num_positions: int, dim: int) -> torch.Tensor:
    """fairseq/tensor2tensor table: [sin | cos] halves, row 0 (the padding position) all zeros."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    angles = torch.arange(num_positions, dtype=torch.float)[:, None] * freqs[None]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(num_positions, 1)], dim=1)
    table[0] = 0
    return table


def sinusoidal_positions(x: torch.Tensor) -> torch.Tensor:
    """Positions 1..L of tokens x (B, L, d); a token whose channel 0 is exactly 0 gets position 0
    (a zero vector), as fairseq's ``make_positions`` with padding_idx 0 does in the reference."""
    length = x.shape[1]
    table = sinusoidal_table(length + 1, x.shape[-1]).to(device=x.device, dtype=x.dtype)
    steps = torch.arange(1, length + 1, device=x.device).expand(x.shape[0], length)
    positions = torch.where(x[..., 0] != 0, steps, torch.zeros_like(steps))
    return table[positions]


def future_mask(len_q: int, len_k: int, device, dtype) -> torch.Tensor:
    """The reference's ``buffered_future_mask``: query i may not attend key j >= i + 1 + |len_k - len_q|."""
    full = torch.full((len_q, len_k), float("-inf"), device=device, dtype=dtype)
    return torch.triu(full, 1 + abs(len_k - len_q))


class MultiheadAttention(nn.Module):
    """fairseq attention with one packed ``in_proj_weight`` (q | k | v rows), computed with SDPA."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def _project(self, x: torch.Tensor, i: int) -> torch.Tensor:
        d = self.dim
        y = F.linear(x, self.in_proj_weight[i * d:(i + 1) * d], self.in_proj_bias[i * d:(i + 1) * d])
        return y.unflatten(-1, (self.heads, d // self.heads)).transpose(1, 2)  # (B, h, L, d/h)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = F.scaled_dot_product_attention(
            self._project(q, 0), self._project(k, 1), self._project(v, 2), attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).flatten(2))


class CrossModalLayer(nn.Module):
    """Pre-norm layer: x + Attn(LN0 x, LN0 k, LN0 v); then x + FFN(LN1 x) (ReLU, 4x width)."""

    def __init__(self, cfg: VocaLiSTConfig):
        super().__init__()
        d = cfg.dim
        self.self_attn = MultiheadAttention(d, cfg.heads, cfg.attn_dropout)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(2)])
        self.relu_dropout, self.res_dropout = cfg.relu_dropout, cfg.res_dropout

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        norm = self.layer_norms[0]
        mask = future_mask(x.shape[1], k.shape[1], x.device, x.dtype)
        h = self.self_attn(norm(x), norm(k), norm(v), mask)
        x = x + F.dropout(h, self.res_dropout, self.training)
        h = F.dropout(F.relu(self.fc1(self.layer_norms[1](x))), self.relu_dropout, self.training)
        return x + F.dropout(self.fc2(h), self.res_dropout, self.training)


class CrossModalTransformer(nn.Module):
    """Queries from one stream attend to keys/values of another, ``layers`` times; final LayerNorm."""

    def __init__(self, cfg: VocaLiSTConfig):
        super().__init__()
        self.scale = math.sqrt(cfg.dim)
        self.embed_dropout = cfg.embed_dropout
        self.layers = nn.ModuleList([CrossModalLayer(cfg) for _ in range(cfg.layers)])
        self.layer_norm = nn.LayerNorm(cfg.dim)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.scale * x + sinusoidal_positions(x), self.embed_dropout, self.training)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor) -> torch.Tensor:
        """query (B, Lq, d), key_value (B, Lk, d) -> (B, Lq, d)."""
        x, k, v = self._embed(query), self._embed(key_value), self._embed(key_value)
        for layer in self.layers:
            x = layer(x, k, v)
        return self.layer_norm(x)


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------
class VocaLiST(nn.Module):
    """Mouth frames + mel-spectrogram -> one sync logit per pair (higher = in sync).

    ``frames``: float (B, T, 3, 48, 96) in [0, 1], channels in the reference's BGR order — or the
    reference layout (B, 3·T, 48, 96) itself. ``mel``: (B, 1, 80, Tm), Tm = 3.2·T at 25 fps
    (16 mel frames for 5 video frames). Any T >= 1 works.
    """

    def __init__(self, cfg: VocaLiSTConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VocaLiSTConfig()
        self.vid_prenet = visual_encoder(cfg.widths)
        self.aud_prenet = audio_encoder(cfg.widths)
        self.av_transformer = CrossModalTransformer(cfg)   # audio queries, visual keys/values
        self.va_transformer = CrossModalTransformer(cfg)   # visual queries, audio keys/values
        self.mem_transformer = CrossModalTransformer(cfg)  # fusion: A->V output queries V->A output
        self.fc = nn.Linear(cfg.dim, cfg.dim)
        self.classifier = nn.Linear(cfg.dim, 1)

    def encode_visual(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, T, 3, 48, 96) or the reference layout (B, 3T, 48, 96) -> tokens (B, T, d)."""
        if frames.ndim == 4:
            frames = frames.unflatten(1, (-1, 3))
        if frames.ndim != 5 or frames.shape[2:] != (3, MOUTH_HEIGHT, MOUTH_WIDTH):
            raise ValueError(f"VocaLiST takes frames (B, T, 3, {MOUTH_HEIGHT}, {MOUTH_WIDTH}), got "
                             f"{tuple(frames.shape)}")
        return self.vid_prenet(frames.permute(0, 2, 3, 4, 1)).flatten(1, 3).transpose(1, 2)

    def encode_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel-spectrogram (B, 1, 80, Tm) -> tokens (B, Tm, d)."""
        if mel.ndim != 4 or mel.shape[1:3] != (1, 80):
            raise ValueError(f"VocaLiST takes a mel-spectrogram (B, 1, 80, Tm), got {tuple(mel.shape)}")
        return self.aud_prenet(mel).squeeze(2).transpose(1, 2)

    def fuse(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        """Visual (B, T, d) and audio (B, Tm, d) tokens -> sync logits (B,)."""
        av = self.av_transformer(aud, vis)
        va = self.va_transformer(vis, aud)
        fused = self.mem_transformer(av, va)                      # (B, Tm, d)
        pooled = fused.amax(dim=1)                                 # max-pool over time
        return self.classifier(torch.tanh(self.fc(pooled))).squeeze(-1)

    def forward(self, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.encode_visual(frames), self.encode_audio(mel))

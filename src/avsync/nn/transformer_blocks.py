"""Pre-norm transformer blocks with minGPT parameter names (key/query/value/proj, ln1/ln2/ln3, mlp.0/mlp.2).

SparseSync and Synchformer (same authors) build their selectors and synchronisation transformers
from these blocks; keeping the names lets the official checkpoints load with a plain prefix map.
Attention runs through ``F.scaled_dot_product_attention`` (fused kernels where available), which
computes softmax(q k^T / sqrt(d)) v exactly as the reference implementation does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention; ``context=None`` is self-attention, otherwise queries attend to ``context``."""

    def __init__(self, dim: int, heads: int, attn_drop: float = 0.0, resid_drop: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.key = nn.Linear(dim, dim)
        self.query = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.heads = heads
        self.attn_drop = attn_drop
        self.resid_drop = nn.Dropout(resid_drop)
        self.last_attention: torch.Tensor | None = None  # filled when record_attention is set
        self.record_attention = False

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        return x.view(b, t, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q, k, v = self._split(self.query(x)), self._split(self.key(context)), self._split(self.value(context))
        if self.record_attention:
            # the explicit path, only for visualisation (attention maps in TensorBoard)
            att = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
            self.last_attention = att.softmax(-1).detach()
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        y = y.transpose(1, 2).reshape(x.shape)
        return self.resid_drop(self.proj(y))


def _mlp(dim: int, drop: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(drop))


class Block(nn.Module):
    """Encoder block: x + attn(ln1 x); x + mlp(ln2 x)."""

    def __init__(self, dim: int, heads: int, attn_drop: float = 0.0, resid_drop: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, attn_drop, resid_drop)
        self.mlp = _mlp(dim, resid_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CrossBlock(nn.Module):
    """Decoder block: self-attention among queries, cross-attention to the context, MLP."""

    def __init__(self, dim: int, heads: int, attn_drop: float = 0.0, resid_drop: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ln3 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, attn_drop, resid_drop)
        self.xattn = Attention(dim, heads, attn_drop, resid_drop)
        self.mlp = _mlp(dim, resid_drop)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        x = x + self.xattn(self.ln2(x), context)
        return x + self.mlp(self.ln3(x))


def init_gpt_weights(module: nn.Module) -> None:
    """minGPT initialisation used by the reference code: N(0, 0.02) linears/embeddings, zero bias, unit LN."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def init_xavier_weights(module: nn.Module) -> None:
    """Width-aware alternative for narrow models: Xavier-uniform linears, N(0, 1) embeddings (PE tables,
    as strong as the layer-normalised features they are added to)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 1.0)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)

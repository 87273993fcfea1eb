"""Synchformer's aggregation layer: one transformer-encoder layer with a learnable AGG token (Eq. 2).

Each segment's extractor output is a grid (frequency x time for audio, time x space for video);
to keep the synchronisation module's sequence short, one pre-norm encoder layer reads the AGG
token plus the tokens of one time step and the AGG output replaces them. Subclassing
``nn.TransformerEncoderLayer`` keeps the official parameter names (``self_attn.in_proj_weight``,
``linear1``, ``norm1`` ...), so the authors' checkpoints load by a plain key map.
"""
from __future__ import annotations

import torch
from torch import nn


class AggregationLayer(nn.TransformerEncoderLayer):
    """(N, L, D) -> (N, D): AGG token prepended, one pre-norm encoder layer, AGG output returned."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0, eps: float = 1e-6):
        super().__init__(d_model=dim, nhead=heads, dim_feedforward=int(mlp_ratio * dim), dropout=dropout,
                         activation="gelu", layer_norm_eps=eps, batch_first=True, norm_first=True)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():  # the reference initialisation (timm ViT): trunc-normal linears, unit LN
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return super().forward(x)[:, 0]

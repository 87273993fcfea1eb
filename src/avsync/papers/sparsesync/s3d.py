"""S3D (Xie et al. 2018) as SparseSync's visual feature extractor, with a width multiplier.

At ``width=1`` the module tree is exactly torchvision's ``s3d().features`` (same keys, same
shapes), so Kinetics-400 weights from torchvision load directly and the official SparseSync
layout maps onto it by renaming (see ``avsync.convert``). Narrower widths give the toy-scale
configuration the same topology: 3 temporal downsamplings (x8) and 5 spatial ones (x32), so
125 frames at 224x224 become 16x7x7 tokens, as in the paper.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.video.s3d import SepInceptionBlock3D, TemporalSeparableConv
from torchvision.ops.misc import Conv3dNormActivation

# torchvision's S3D inception configuration: (b0_out, b1_mid, b1_out, b2_mid, b2_out, b3_out) per block;
# "pool" entries are max-pools (kernel, stride, padding).
_S3D_LAYOUT = (
    ("pool", (1, 3, 3), (1, 2, 2), (0, 1, 1)),
    ("inception", 64, 96, 128, 16, 32, 32),
    ("inception", 128, 128, 192, 32, 96, 64),
    ("pool", (3, 3, 3), (2, 2, 2), (1, 1, 1)),
    ("inception", 192, 96, 208, 16, 48, 64),
    ("inception", 160, 112, 224, 24, 64, 64),
    ("inception", 128, 128, 256, 24, 64, 64),
    ("inception", 112, 144, 288, 32, 64, 64),
    ("inception", 256, 160, 320, 32, 128, 128),
    ("pool", (2, 2, 2), (2, 2, 2), (0, 0, 0)),
    ("inception", 256, 160, 320, 32, 128, 128),
    ("inception", 384, 192, 384, 48, 128, 128),
)


def _scale(channels: int, width: float) -> int:
    return max(4, int(round(channels * width)))


class S3D(nn.Module):
    """(B, 3, T, H, W) normalised RGB -> (B, C, T/8, H/32, W/32) features (C = 1024 at width 1)."""

    def __init__(self, width: float = 1.0, bn_momentum: float = 0.001):
        super().__init__()
        # torchvision's S3D norm (eps 1e-3, momentum 1e-3: made for fine-tuning Kinetics weights;
        # a network trained from scratch needs a larger momentum for usable running statistics)
        norm = lambda c: nn.BatchNorm3d(c, eps=0.001, momentum=bn_momentum)  # noqa: E731
        c64, c192 = _scale(64, width), _scale(192, width)
        layers: list[nn.Module] = [
            TemporalSeparableConv(3, c64, 7, 2, 3, norm),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            Conv3dNormActivation(c64, c64, kernel_size=1, stride=1, norm_layer=norm),
            TemporalSeparableConv(c64, c192, 3, 1, 1, norm),
        ]
        channels = c192
        for kind, *cfg in _S3D_LAYOUT:
            if kind == "pool":
                layers.append(nn.MaxPool3d(kernel_size=cfg[0], stride=cfg[1], padding=cfg[2]))
                continue
            b0, b1m, b1, b2m, b2, b3 = (_scale(c, width) for c in cfg)
            layers.append(SepInceptionBlock3D(channels, b0, b1m, b1, b2m, b2, b3, norm))
            channels = b0 + b1 + b2 + b3
        self.features = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def load_torchvision_weights(self, path: str | Path) -> None:
        """Load a torchvision ``s3d`` checkpoint (e.g. ``S3D_Weights.KINETICS400_V1`` saved to disk).

        No hub access is assumed: the user downloads the file once; the classifier is dropped.
        """
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if k.startswith("features.")}
        self.load_state_dict(state, strict=True)

"""ResNet18 over a one-channel (log-)spectrogram, without the classification head.

SparseSync's audio feature extractor: a 257x626 log-spectrogram (5 s at 16 kHz, STFT 512 / hop 128)
becomes a 9x20 map of 512-d features (stride 32 in frequency and time). Module names follow
torchvision's ResNet (conv1, bn1, layer1..4) so that official checkpoints load without renaming;
``widths`` narrows the network for toy-scale runs.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock


class ResNetAudio(nn.Module):
    """(B, 1, F, T) spectrogram -> (B, C, F/32, T/32) feature map."""

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512), blocks: Sequence[int] = (2, 2, 2, 2),
                 in_channels: int = 1):
        super().__init__()
        stem = widths[0]
        self.conv1 = nn.Conv2d(in_channels, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = stem
        for i, (width, depth) in enumerate(zip(widths, blocks)):
            layer, inplanes = _make_layer(inplanes, width, depth, stride=1 if i == 0 else 2)
            self.add_module(f"layer{i + 1}", layer)
        self.out_channels = inplanes
        _init_resnet(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _make_layer(inplanes: int, planes: int, depth: int, stride: int) -> tuple[nn.Sequential, int]:
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
    layers = [BasicBlock(inplanes, planes, stride, downsample)]
    layers += [BasicBlock(planes, planes) for _ in range(depth - 1)]
    return nn.Sequential(*layers), planes


def _init_resnet(model: nn.Module) -> None:
    """torchvision's ResNet initialisation (kaiming fan-out for convs, unit BN)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

"""A deterministic random S3FD state dict in the official ``sfd_face.pth`` layout.

Shared by the golden script (run beside the authors' code) and the parity test, so that both
networks get the same tensors without committing 90 MB of weights. Every tensor is drawn from a
generator seeded by its key; constant initialisations (biases, the L2Norm scales 10/8/5) are
randomised too, so a swapped bias or scale cannot hide. Needs only numpy and torch.
"""
from __future__ import annotations

import zlib

import torch

BASE_SEED = 20261206


def random_state_dict(layout: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """``layout`` maps key -> shape (from tests/goldens/s3fd/layout.json)."""
    state = {}
    for key, shape in layout.items():
        gen = torch.Generator().manual_seed(BASE_SEED + zlib.crc32(key.encode()))
        if len(shape) == 4:  # convolution kernel: He-normal keeps activations in range through VGG
            fan_in = shape[1] * shape[2] * shape[3]
            t = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
        elif "L2Norm" in key:  # learnt scales around the authors' constants
            t = 2.0 + 10.0 * torch.rand(shape, generator=gen)
        else:  # biases
            t = 0.1 * torch.randn(shape, generator=gen)
        state[key] = t.float()
    return state

"""Deterministic random state dicts in the authors' layout, for parity tests against their code.

The golden files under ``tests/goldens/`` were made by running the authors' own models with such a
state dict; the parity tests regenerate the same dict from the key -> shape list alone (committed
beside the goldens), convert it with :mod:`avsync.convert` and load it into avsync's model. So the
exact values must not depend on anything but the key name and its shape: every tensor has its own
generator, seeded from a hash of its name (``key_seed``), and nothing depends on dictionary order.

Why not the authors' initialisation: it leaves many tensors constant (zero biases, unit norm
affines, batch-norm running statistics 0 / 1, zero-initialised stems, attention projections set
to 0 or 1). A constant tensor cannot reveal a swapped bias or an ignored running mean, so every
tensor gets random values here, scaled so that activations stay of order one through deep
networks:

* weights of two or more dimensions: N(0, 1) / sqrt(fan_in), fan_in = prod(shape[1:]); tensors
  whose first dimension is 1 (class / offset tokens, positional tables such as ``(1, N, D)``)
  N(0, 0.5) instead, so that they are visible next to normalised features;
* 1-d ``*.weight`` (norm affines): 1 + 0.2 N(0, 1); other 1-d tensors (biases, selectors' biases):
  0.2 N(0, 1);
* batch-norm ``running_mean``: 0.5 N(0, 1); ``running_var``: U(0.5, 1.5) (positive);
  ``num_batches_tracked``: int64 100;
* 0-d floating tensors: N(0, 1).
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch


def key_seed(key: str) -> int:
    """A 63-bit seed from the key's name (SHA-256, so the same on every machine and Python)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def synthetic_tensor(key: str, shape: Sequence[int]) -> torch.Tensor:
    """The tensor for one key (see the module docstring for the distribution of each kind)."""
    shape = tuple(int(s) for s in shape)
    if key.endswith("num_batches_tracked"):
        return torch.tensor(100, dtype=torch.int64)
    g = torch.Generator().manual_seed(key_seed(key))
    if key.endswith("running_var"):
        return torch.rand(shape, generator=g) + 0.5
    x = torch.randn(shape, generator=g)
    if key.endswith("running_mean"):
        return 0.5 * x
    if len(shape) == 0:
        return x
    if len(shape) == 1:
        return 1.0 + 0.2 * x if key.endswith(".weight") else 0.2 * x
    if shape[0] == 1:
        return 0.5 * x
    return x / math.sqrt(math.prod(shape[1:]))


def synthetic_state_dict(shapes: Mapping[str, Sequence[int]]) -> dict[str, torch.Tensor]:
    """``{key: tensor}`` for a ``{key: shape}`` layout, each tensor from :func:`synthetic_tensor`."""
    return {key: synthetic_tensor(key, shape) for key, shape in shapes.items()}


def read_layout(path: str | Path) -> dict[str, list[int]]:
    """A ``{key: shape}`` layout from JSON: a plain mapping, or one under ``"state_dict"`` (the
    manifests of the official state dicts have that form)."""
    data = json.loads(Path(path).read_text())
    return data.get("state_dict", data) if isinstance(data.get("state_dict"), dict) else data


def write_layout(state: Mapping[str, torch.Tensor], path: str | Path, note: str = "") -> None:
    """Write the ``{key: shape}`` layout of a state dict as JSON (one key per line, in its order)."""
    lines = [f"  {json.dumps(k)}: {json.dumps(list(v.shape))}" for k, v in state.items()]
    header = f'{{\n  "note": {json.dumps(note)},\n  "state_dict": {{\n'
    Path(path).write_text(header + ",\n".join("  " + line for line in lines) + "\n  }\n}\n")

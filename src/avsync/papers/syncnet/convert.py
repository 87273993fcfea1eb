"""Official SyncNet checkpoints (joonson/syncnet_python, ``syncnet_v2.model``) -> :class:`avsync.papers.syncnet.network.SyncNet`.

The official file is a plain state dict of ``SyncNetModel.S``; our module keeps its names and
``nn.Sequential`` indices (``netcnnaud``, ``netfcaud``, ``netfclip``, ``netcnnlip``), so the map
is the identity after unwrapping. Widths and the embedding size are read from the tensors.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from avsync.convert import check_fit, read_state_dict
from avsync.papers.vocalist.convert import lightning_checkpoint_of
from avsync.papers.syncnet.network import SYNCNET_CONFIGS, SyncNet, SyncNetConfig

# Sequential indices of the convolutions in each stream of the reference
_AUDIO_CONVS = (0, 4, 8, 11, 14, 18)
_LIP_CONVS = (0, 4, 8, 11, 14, 18)


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module | None = None
                         ) -> dict[str, torch.Tensor]:
    """Official SyncNet state dict -> ``SyncNet`` state dict (identity after unwrapping; idempotent)."""
    out = dict(read_state_dict(state_dict))
    if model is not None:
        check_fit(out, model, "SyncNet")
    return out


def infer_config(state: Mapping[str, torch.Tensor], arch: str = "syncnet") -> SyncNetConfig:
    if arch not in SYNCNET_CONFIGS:
        raise ValueError(f"unknown SyncNet arch {arch!r}; registered: {sorted(SYNCNET_CONFIGS)}")
    try:
        return dataclasses.replace(
            SYNCNET_CONFIGS[arch],
            audio_widths=tuple(int(state[f"netcnnaud.{i}.weight"].shape[0]) for i in _AUDIO_CONVS),
            lip_widths=tuple(int(state[f"netcnnlip.{i}.weight"].shape[0]) for i in _LIP_CONVS),
            embed_dim=int(state["netfcaud.3.weight"].shape[0]),
        )
    except KeyError as err:
        raise ValueError(f"not a SyncNet state dict: {err.args[0]} is missing") from None


def load_official(path_or_state: str | Path | Mapping, arch: str = "syncnet") -> SyncNet:
    """Build a ``SyncNet`` shaped like the official checkpoint and load it with ``strict=True``."""
    state = checkpoint_filter_fn(path_or_state)
    model = SyncNet(infer_config(state, arch))
    check_fit(state, model, "SyncNet")
    model.load_state_dict(state, strict=True)
    return model


def lightning_checkpoint(path_or_state: str | Path | Mapping, arch: str = "syncnet") -> dict:
    """A checkpoint dict for ``SyncNetModule`` (``torch.save`` it; loads with ``weights_only=True``)."""
    model = load_official(path_or_state, arch)
    return lightning_checkpoint_of(model, arch, SYNCNET_CONFIGS[arch], "official SyncNet checkpoint")

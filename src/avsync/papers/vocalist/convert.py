"""Official VocaLiST checkpoints (vskadandale/vocalist) -> :class:`avsync.papers.vocalist.network.VocaLiST`.

Our module names are the official ones (``vid_prenet``, ``aud_prenet``, ``av_transformer``,
``va_transformer``, ``mem_transformer``, ``fc``, ``classifier``), so the map only drops the two
buffers that carry no weights: ``<transformer>.version`` (fairseq's format tag) and
``<transformer>.embed_positions._float_tensor`` (a dtype/device probe; the sinusoidal table is
computed, not stored). The official training script saves ``{'state_dict': ..., 'optimizer': ...}``;
:func:`avsync.convert.read_state_dict` unwraps it.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from avsync.convert import check_fit, read_state_dict
from avsync.papers.vocalist.network import VOCALIST_CONFIGS, VocaLiST, VocaLiSTConfig

_DROPPED = (".version", ".embed_positions._float_tensor")
_TRANSFORMERS = ("av_transformer", "va_transformer", "mem_transformer")
# the first conv of each width stage of the visual encoder (Sequential indices of the reference)
_VISUAL_STAGES = (0, 1, 4, 8, 11)


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module | None = None
                         ) -> dict[str, torch.Tensor]:
    """Official VocaLiST state dict -> ``VocaLiST`` state dict (timm style; idempotent).

    With ``model`` the result is checked against its keys and shapes (``ValueError`` naming them).
    """
    out = {k: v for k, v in read_state_dict(state_dict).items() if not k.endswith(_DROPPED)}
    if model is not None:
        check_fit(out, model, "VocaLiST")
    return out


def infer_config(state: Mapping[str, torch.Tensor], arch: str = "vocalist") -> VocaLiSTConfig:
    """Widths and transformer depth from the tensors; heads and dropouts (invisible) from ``arch``."""
    if arch not in VOCALIST_CONFIGS:
        raise ValueError(f"unknown VocaLiST arch {arch!r}; registered: {sorted(VOCALIST_CONFIGS)}")
    try:
        widths = tuple(int(state[f"vid_prenet.{i}.conv_block.0.weight"].shape[0]) for i in _VISUAL_STAGES)
    except KeyError as err:
        raise ValueError(f"not a VocaLiST state dict: {err.args[0]} is missing") from None
    depths = {t: len({m.group(1) for k in state if (m := re.match(rf"{t}\.layers\.(\d+)\.", k))})
              for t in _TRANSFORMERS}
    if len(set(depths.values())) != 1:
        raise ValueError(f"the three transformers have different depths: {depths}")
    return dataclasses.replace(VOCALIST_CONFIGS[arch], widths=widths, layers=depths["av_transformer"])


def load_official(path_or_state: str | Path | Mapping, arch: str = "vocalist") -> VocaLiST:
    """Build a ``VocaLiST`` shaped like the official checkpoint and load it with ``strict=True``."""
    state = checkpoint_filter_fn(path_or_state)
    model = VocaLiST(infer_config(state, arch))
    check_fit(state, model, "VocaLiST")
    model.load_state_dict(state, strict=True)
    return model


def lightning_checkpoint_of(model: nn.Module, arch: str, base, source: str) -> dict:
    """Lightning-style checkpoint of a converted network: ``net.``-prefixed tensors + the
    ``arch`` / ``arch_overrides`` hyper-parameters that rebuild it (plain lists and numbers)."""
    import lightning

    cfg = model.cfg
    overrides = {f.name: list(v) if isinstance(v := getattr(cfg, f.name), tuple) else v
                 for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(base, f.name)}
    return {
        "state_dict": {f"net.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": {"arch": arch, "arch_overrides": overrides},
        "pytorch-lightning_version": lightning.__version__,
        "converted_from": source,
    }


def lightning_checkpoint(path_or_state: str | Path | Mapping, arch: str = "vocalist") -> dict:
    """A checkpoint dict for ``VocaLiSTModule`` (``torch.save`` it; loads with ``weights_only=True``)."""
    model = load_official(path_or_state, arch)
    return lightning_checkpoint_of(model, arch, VOCALIST_CONFIGS[arch], "official VocaLiST checkpoint")

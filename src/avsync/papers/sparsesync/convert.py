"""Official SparseSync checkpoints (v-iashin/SparseSync) -> :class:`avsync.papers.sparsesync.network.SparseSync`.

Only the visual extractor is named differently. The official code wraps kylemin's S3D
(``vfeat_extractor.base.N``); our :class:`~avsync.papers.sparsesync.s3d.S3D` is torchvision's
``s3d().features`` tree. Everything else (``afeat_extractor`` = torchvision ResNet18 with a 1-channel
stem, ``v_bridge.bridge.0``, ``transformer.*``) already carries the official names.

S3D correspondence (the Sequential indices ``N`` are the same on both sides)::

    official (kylemin)                       ours (torchvision)
    base.N.conv_s / bn_s   SepConv3d         features.N.0.0 / features.N.0.1   (1,k,k) conv + BN (+ReLU)
    base.N.conv_t / bn_t                     features.N.1.0 / features.N.1.1   (k,1,1) conv + BN (+ReLU)
    base.N.conv / bn       BasicConv3d       features.N.0 / features.N.1
    base.N.branch0.0.conv  (a Sequential     features.N.branch0.0              torchvision's branch0 is the
    base.N.branch0.0.bn     of one conv)     features.N.branch0.1              conv block itself
    base.N.branchK.i.conv / bn               features.N.branchK.i.0 / .1       K = 1, 2 (i = 0), 3 (i = 1)
    base.N.branchK.1.conv_s / bn_s / ...     features.N.branchK.1.0.0 / .0.1 / .1.0 / .1.1

The computation is the same on both sides (checked against the official source): every conv is
bias-free and followed by ``BatchNorm3d(eps=1e-3, momentum=1e-3)`` and ReLU; the separable conv is
spatial (1,k,k) first, then temporal (k,1,1); max-pools (1,3,3)/(1,2,2)/(0,1,1) twice,
(3,3,3)/2/1 and (2,2,2)/2/0; branch 3 pools (3,3,3)/1/1 before its 1x1x1 conv; branches are
concatenated in the order 0, 1, 2, 3. torchvision's ReLUs are in place, the official ones not,
which does not change values. So no flag on our S3D is needed.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from avsync.convert import check_fit, read_state_dict
from avsync.papers.sparsesync.network import SPARSESYNC_CONFIGS, SparseSync, SparseSyncConfig

_VIS = "vfeat_extractor."
# submodule names inside kylemin's blocks -> torchvision's Sequential indices
_S3D_PARTS = {"conv_s": "0.0", "bn_s": "0.1", "conv_t": "1.0", "bn_t": "1.1", "conv": "0", "bn": "1"}
_S3D_PART_RE = re.compile(r"(?<=\.)(conv_s|bn_s|conv_t|bn_t|conv|bn)(?=\.)")
# classifier heads that the official feature extractors carry but never use
_UNUSED_HEADS = ("vfeat_extractor.fc.", "afeat_extractor.fc.")


def convert_s3d_key(key: str) -> str:
    """One kylemin/official S3D key (``base.…``, relative to the S3D module) -> torchvision's ``features.…``.

    Keys that are not under ``base.`` are returned unchanged.
    """
    if not key.startswith("base."):
        return key
    key = "features." + key[len("base."):]
    key = re.sub(r"\.branch0\.0\.", ".branch0.", key)  # torchvision's branch0 is not a Sequential
    return _S3D_PART_RE.sub(lambda m: _S3D_PARTS[m.group(1)], key)


def s3d_filter_fn(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A kylemin-layout S3D state dict (e.g. ``S3D_kinetics400_torchified.pt``) -> our ``S3D`` (no ``fc``)."""
    return {convert_s3d_key(k): v for k, v in state_dict.items() if not k.startswith("fc.")}


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: nn.Module | None = None
                         ) -> dict[str, torch.Tensor]:
    """Official SparseSync state dict -> ``SparseSync`` state dict (timm style).

    Accepts the raw state dict or the official checkpoint wrapping (``{'model': ...}``, ``module.``
    prefixes). Keys already in our layout pass through, so the function is idempotent. With
    ``model`` the result is checked against the model's keys and shapes and a mismatch raises a
    ``ValueError`` that names it.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in read_state_dict(state_dict).items():
        if key.startswith(_UNUSED_HEADS):
            continue
        if key.startswith(_VIS):
            key = _VIS + convert_s3d_key(key[len(_VIS):])
        out[key] = value
    if model is not None:
        check_fit(out, model, "SparseSync")
    return out


def _count_blocks(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    found = {int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return max(found) + 1 if found else 0


def infer_config(state: Mapping[str, torch.Tensor], arch: str = "sparsesync") -> SparseSyncConfig:
    """The :class:`SparseSyncConfig` a converted state dict was trained with, starting from ``arch``.

    Depth (selector stacks; the sync transformer must agree), classes and width come from the head,
    selector count and positional tables from their shapes, extractor widths from the first convs.
    The number of heads is not visible in the weights and is taken from ``arch``.
    """
    if arch not in SPARSESYNC_CONFIGS:
        raise ValueError(f"unknown SparseSync arch {arch!r}; registered: {sorted(SPARSESYNC_CONFIGS)}")
    t = "transformer."
    depths = {name: _count_blocks(state, f"{t}{name}.blocks.")
              for name in ("v_selector", "a_selector", "global_transformer")}
    if len(set(depths.values())) != 1 or not depths["v_selector"]:
        raise ValueError(f"selector and sync-transformer depths differ or are missing: {depths}")
    num_classes, dim = state[f"{t}off_head.weight"].shape
    vis_pe, aud_pe = f"{t}vis_pos_emb.", f"{t}aud_pos_emb."
    fields = dict(
        depth=depths["v_selector"], num_classes=int(num_classes), dim=int(dim),
        num_selectors=int(state[f"{t}v_selector.selectors"].shape[0]),
        visual_block=tuple(int(state[f"{vis_pe}{a}_embed.weight"].shape[0]) for a in ("time", "height", "width")),
        audio_block=tuple(int(state[f"{aud_pe}{a}_embed.weight"].shape[0]) for a in ("freq", "time")),
        s3d_width=int(state[f"{_VIS}features.0.0.0.weight"].shape[0]) / 64,
        audio_widths=tuple(int(state[f"afeat_extractor.layer{i}.0.conv1.weight"].shape[0]) for i in range(1, 5)),
    )
    return dataclasses.replace(SPARSESYNC_CONFIGS[arch], **fields)


def load_official(path_or_state: str | Path | Mapping, arch: str = "sparsesync") -> SparseSync:
    """Build a ``SparseSync`` shaped like the official checkpoint and load it with ``strict=True``."""
    state = checkpoint_filter_fn(path_or_state)
    model = SparseSync(infer_config(state, arch))
    check_fit(state, model, "SparseSync")  # a readable error before load_state_dict's long one
    model.load_state_dict(state, strict=True)
    return model


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def lightning_checkpoint(path_or_state: str | Path | Mapping, arch: str = "sparsesync") -> dict:
    """A checkpoint dict for ``SparseSyncModule`` (``torch.save`` it; loads with ``weights_only=True``).

    ``state_dict`` holds the network under the module's ``net.`` prefix; ``hyper_parameters`` holds
    ``arch`` and the ``arch_overrides`` (plain lists/numbers) that rebuild the same network, so both
    ``SparseSyncModule.load_from_checkpoint(path)`` and ``SparseSyncModule(arch=..., init_from=path)``
    read it.
    """
    import lightning

    model = load_official(path_or_state, arch)  # fails here rather than when the checkpoint is used
    cfg, state = model.cfg, model.state_dict()
    base = SPARSESYNC_CONFIGS[arch]
    overrides = {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                 if getattr(cfg, f.name) != getattr(base, f.name)}
    return {
        "state_dict": {f"net.{k}": v for k, v in state.items()},
        "hyper_parameters": {"arch": arch, "arch_overrides": overrides},
        "pytorch-lightning_version": lightning.__version__,
        "converted_from": "official SparseSync checkpoint",
    }

"""Official Synchformer checkpoints (v-iashin/Synchformer) -> :class:`avsync.papers.synchformer.network.Synchformer`.

Our modules carry the official names (``vfeat_extractor`` = Motionformer, ``afeat_extractor`` =
HuggingFace-layout AST, ``vproj``/``aproj``, ``transformer.*``), so the key map is the identity;
what the filter does is unwrap the checkpoint (``{'model': ...}``, ``module.``), drop tensors the
official modules hold but never use in the synchronisation model (classifier heads, the stage-I
global aggregation and projection heads, the temporal aggregation of stage I), and check the result.
The computation is the same (checked against the official source): see the module docstrings of
:mod:`avsync.papers.synchformer.motionformer` and :mod:`avsync.papers.synchformer.ast`.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from avsync.convert import check_fit, read_state_dict
from avsync.papers.synchformer.network import SYNCHFORMER_CONFIGS, Synchformer, SynchformerConfig

# tensors of the official modules that the synchronisation model does not use
_UNUSED = ("vfeat_extractor.head.", "vfeat_extractor.pre_logits.", "afeat_extractor.classifier.",
           "vfeat_extractor.global_attn_agg.", "afeat_extractor.global_attn_agg.",
           "vfeat_extractor.temp_attn_agg.", "afeat_extractor.temp_attn_agg.")


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor] | str | Path, model: nn.Module | None = None
                         ) -> dict[str, torch.Tensor]:
    """Official Synchformer state dict -> ``Synchformer`` state dict (timm style); idempotent.

    With ``model`` the result is checked against its keys and shapes (a ``ValueError`` names a mismatch).
    """
    out = {k: v for k, v in read_state_dict(state_dict).items() if not k.startswith(_UNUSED)}
    if model is not None:
        check_fit(out, model, "Synchformer")
    return out


def infer_config(state: Mapping[str, torch.Tensor], arch: str = "synchformer") -> SynchformerConfig:
    """The configuration of a converted state dict, starting from ``arch``: classes and width from the
    head, depth from the blocks, the number of segments from the positional table. Extractor sizes
    and head counts are not changed (they are those of ``arch``)."""
    if arch not in SYNCHFORMER_CONFIGS:
        raise ValueError(f"unknown Synchformer arch {arch!r}; registered: {sorted(SYNCHFORMER_CONFIGS)}")
    base = SYNCHFORMER_CONFIGS[arch]
    try:
        if "transformer.off_head.weight" in state:
            num_classes, dim = state["transformer.off_head.weight"].shape
        else:  # the synchronizability model has no offset head (see load_official_synchronizability)
            num_classes, dim = base.num_classes, state["transformer.ln_f.weight"].shape[0]
        positions = state["transformer.pos_emb_cfg.pos_emb"].shape[1]
    except KeyError as err:
        raise ValueError(f"not a Synchformer synchronisation checkpoint: {err.args[0]} is missing") from err
    depth = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"transformer\.blocks\.(\d+)\.", k))),
                    default=-1)
    per_segment = base.motionformer.time_tokens + base.ast.time_tokens
    if (positions - 2) % per_segment:
        raise ValueError(f"positional table of {positions} does not fit 2 + S x {per_segment} tokens")
    return dataclasses.replace(base, num_classes=int(num_classes), dim=int(dim), depth=depth,
                               num_segments=(positions - 2) // per_segment)


def load_official(path_or_state: str | Path | Mapping, arch: str = "synchformer") -> Synchformer:
    """Build a ``Synchformer`` shaped like the official checkpoint and load it with ``strict=True``."""
    state = checkpoint_filter_fn(path_or_state)
    with torch.device("meta"):  # no random init of 237M parameters that are overwritten at once
        model = Synchformer(infer_config(state, arch))
    check_fit(state, model, "Synchformer")
    model.load_state_dict(state, strict=True, assign=True)
    return model


_SYNC_HEAD = "transformer.sync_head."
_OFF_HEAD = "transformer.off_head."


def synchronizability_filter_fn(state_dict: Mapping[str, torch.Tensor] | str | Path
                                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The official synchronizability model (``GlobalTransformerWithSyncabilityHead``) -> the state of
    ``Synchformer`` (without ``transformer.off_head``) and of
    :class:`~avsync.papers.synchformer.network.SynchronizabilityHead`.

    The authors' head is ``Linear(D, 2)`` read with a softmax, class 1 = synchronisable; ours is one
    logit read with a sigmoid. softmax(l)[1] = sigmoid(l1 - l0), so the head becomes the difference
    of the two rows (and biases): the same score, and the logit equals l1 - l0.
    """
    state = checkpoint_filter_fn(state_dict)
    try:
        weight, bias = state.pop(_SYNC_HEAD + "weight"), state.pop(_SYNC_HEAD + "bias")
    except KeyError as err:
        raise ValueError(f"not a Synchformer synchronizability checkpoint: {err.args[0]} is missing") from err
    if weight.shape[0] != 2 or any(k.startswith(_OFF_HEAD) for k in state):
        raise ValueError(f"expected the authors' 2-way synchronizability head and no offset head, got "
                         f"sync_head {tuple(weight.shape)}")
    head = {"sync_head.weight": (weight[1] - weight[0])[None], "sync_head.bias": (bias[1] - bias[0])[None]}
    return state, head


def load_official_synchronizability(path_or_state: str | Path | Mapping, arch: str = "synchformer"
                                    ) -> tuple[Synchformer, "SynchronizabilityHead"]:
    """The authors' synchronizability model as a ``Synchformer`` (its offset head, which that model
    does not have, left at its init and unused) and a ``SynchronizabilityHead``; score =
    ``head(net.sync_token(*net.features(video, audio))).sigmoid()``."""
    from avsync.papers.synchformer.network import SynchronizabilityHead

    state, head_state = synchronizability_filter_fn(path_or_state)
    model = Synchformer(infer_config(state, arch))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {k for k in model.state_dict() if k.startswith(_OFF_HEAD)}:
        raise ValueError(f"converted Synchformer synchronizability state dict does not fit the model: missing "
                         f"{[k for k in missing if not k.startswith(_OFF_HEAD)][:5]}, unexpected {unexpected[:5]}")
    head = SynchronizabilityHead(model.cfg.dim)
    head.load_state_dict(head_state, strict=True)
    return model, head


def lightning_checkpoint(path_or_state: str | Path | Mapping, arch: str = "synchformer") -> dict:
    """A checkpoint dict for ``SynchformerStage2Module`` (``torch.save`` it; loads with ``weights_only=True``):
    the network under ``net.`` and the ``arch`` / ``arch_overrides`` that rebuild it."""
    import lightning

    model = load_official(path_or_state, arch)
    base = SYNCHFORMER_CONFIGS[arch]
    overrides = {f.name: getattr(model.cfg, f.name) for f in dataclasses.fields(base)
                 if f.name not in ("motionformer", "ast") and getattr(model.cfg, f.name) != getattr(base, f.name)}
    return {
        "state_dict": {f"net.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": {"arch": arch, "arch_overrides": overrides},
        "pytorch-lightning_version": lightning.__version__,
        "converted_from": "official Synchformer checkpoint",
    }

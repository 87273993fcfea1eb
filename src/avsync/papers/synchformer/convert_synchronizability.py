"""The authors' Synchformer synchronizability checkpoint -> a
:class:`~avsync.papers.synchformer.synchronizability.SynchformerSynchronizabilityModule` checkpoint.

The authors fine-tune the AudioSet synchronisation model into ``GlobalTransformerWithSyncabilityHead``
(``configs/ft_synchability.yaml``: 13 segments, a 2-way ``sync_head``, and no offset head, which
they replace by an identity). :func:`avsync.papers.synchformer.convert.synchronizability_filter_fn` turns
that head into avsync's one-logit :class:`~avsync.papers.synchformer.network.SynchronizabilityHead` (the
logit is l1 − l0, so sigmoid = their softmax[1]). The module is built with ``tune="head"`` (no
frozen reference copy of a stage-II model: there is none in the file).

**Offsets.** The file has no offset head, so the converted module's offset head is all zeros:
every offset gets the same logit (``avsync detect`` then reports a flat curve, confidence 1/21).
The authors read offsets from a separate synchronisation model (``test_syncability.py`` takes
``ckpt_path_off``); here that is e.g. the ``synchformer-audioset`` weights. The synchronizability
score is ``module.synchronizability(batch)``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import torch

from avsync.convert import check_fit, read_state_dict
from avsync.papers.synchformer.convert import infer_config, load_official_synchronizability, synchronizability_filter_fn
from avsync.papers.synchformer.network import SYNCHFORMER_CONFIGS, Synchformer, SynchronizabilityHead

__all__ = ["checkpoint_filter_fn", "load_official", "lightning_checkpoint"]

_MODULE = "avsync.papers.synchformer.synchronizability.SynchformerSynchronizabilityModule"


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor] | str | Path, model=None) -> dict[str, torch.Tensor]:
    """The authors' state dict -> the module's (``net.*`` and ``sync_head.sync_head.*``; the offset
    head zeroed, see the module docstring). With ``model`` (a ``Synchformer`` or the Lightning module)
    the offset head gets its number of classes and the result is checked against its keys and shapes."""
    net_state, head_state = synchronizability_filter_fn(state_dict)
    dim = head_state["sync_head.weight"].shape[1]
    net = getattr(model, "net", model)
    classes = SYNCHFORMER_CONFIGS["synchformer"].num_classes if net is None else net.cfg.num_classes
    out = {f"net.{k}": v for k, v in net_state.items()}
    out["net.transformer.off_head.weight"] = torch.zeros(classes, dim)
    out["net.transformer.off_head.bias"] = torch.zeros(classes)
    out.update({f"sync_head.{k}": v for k, v in head_state.items()})
    if net is not None:
        own = {f"net.{k}": v for k, v in net.state_dict().items()}
        own.update({f"sync_head.{k}": v for k, v in SynchronizabilityHead(net.cfg.dim).state_dict().items()})
        check_fit(out, SimpleNamespace(state_dict=lambda: own), "Synchformer synchronizability")  # reads state_dict()
    return out


def load_official(path_or_state: str | Path | Mapping, arch: str = "synchformer"):
    """The plain networks: (``Synchformer`` without a trained offset head, ``SynchronizabilityHead``)."""
    return load_official_synchronizability(path_or_state, arch)


def lightning_checkpoint(path_or_state: str | Path | Mapping, arch: str = "synchformer") -> dict:
    """A checkpoint dict for ``SynchformerSynchronizabilityModule`` (``torch.save`` it; loads with
    ``weights_only=True``): ``arch`` with the sizes the tensors show (13 segments for the authors'
    file) and ``tune="head"``; checked against the keys and shapes of that configuration (the
    module itself is rebuilt, strictly, where the checkpoint is loaded)."""
    import lightning

    if arch == "synchformer_synchronizability":  # `avsync convert`'s default arch is the converter's name
        arch = "synchformer"
    state = read_state_dict(path_or_state)  # once: the authors' file is ~1 GB
    net_state, _ = synchronizability_filter_fn(state)
    cfg, base = infer_config(net_state, arch), SYNCHFORMER_CONFIGS[arch]
    overrides = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(base)
                 if f.name not in ("motionformer", "ast") and getattr(cfg, f.name) != getattr(base, f.name)}
    hparams = {"arch": arch, "arch_overrides": overrides, "tune": "head", "log_figures": False}
    with torch.device("meta"):  # only the key layout is needed; the tensors come from the file
        net = Synchformer(cfg)
    return {
        "state_dict": checkpoint_filter_fn(state, model=net),
        "hyper_parameters": {**hparams, "_class_path": _MODULE},
        "pytorch-lightning_version": lightning.__version__,
        "converted_from": "official Synchformer synchronizability checkpoint (no offset head: zeros)",
    }

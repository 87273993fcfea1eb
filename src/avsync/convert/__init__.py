"""Converters from the authors' official checkpoints to this suite's modules.

Each model has a converter module with the same three functions (timm style):

* ``checkpoint_filter_fn(state_dict, model=None) -> dict`` — official keys -> our keys;
* ``load_official(path_or_state, arch=...) -> nn.Module`` — the plain network, configuration
  inferred from the tensors, loaded with ``strict=True``;
* ``lightning_checkpoint(path_or_state, arch=...) -> dict`` — a Lightning-style checkpoint
  (``state_dict`` with the module's ``net.`` prefix + plain ``hyper_parameters``) for
  ``torch.save``; ``LightningModule.load_from_checkpoint`` and ``init_from=`` both read it.

Each converter lives in its paper's package (``avsync.papers.<paper>.convert``) and is named by the
paper's registration in :mod:`avsync.registry` (``get_converter(name)``). This package holds what
they share (reading official pickles safely, checking a converted state dict fits) and ``avsync
convert`` (:mod:`avsync.convert.cli`).

Official checkpoints are pickles that often carry more than tensors (the training config as an
OmegaConf object, optimiser state). :func:`read_state_dict` never unpickles arbitrary code: it
loads with ``weights_only=True`` and, when that refuses some globals, replaces exactly those with
inert stand-in classes (so ``omegaconf`` need not even be installed).
"""
from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


def check_fit(state: Mapping[str, torch.Tensor], model: torch.nn.Module, name: str) -> None:
    """Raise a readable ``ValueError`` when ``state`` would not load into ``model`` with strict=True."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"converted {name} state dict does not fit the model: "
                         f"{len(missing)} missing {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}, "
                         f"{len(shapes)} shape mismatches {shapes[:5]}")


# -- reading official checkpoints -------------------------------------------------------------------
class _Inert:
    """Stand-in for a class a checkpoint refers to but that need not (or must not) be imported.

    Accepts any constructor arguments and pickled state and keeps them, so the surrounding
    containers (and the tensors in them) unpickle normally.
    """

    _stands_for = ""

    def __new__(cls, *args: Any, **kwargs: Any):
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any):
        self._args, self._kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self._state = state

    def __repr__(self) -> str:
        return f"<inert {self._stands_for}>"


def _inert_class(qualified_name: str) -> type:
    return type(qualified_name.rsplit(".", 1)[-1], (_Inert,), {"_stands_for": qualified_name})


def safe_load(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``; globals it refuses become inert stand-ins."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        if not names:
            raise
    log.warning("%s refers to %d non-tensor globals (%s); they are read as inert placeholders",
                path, len(names), ", ".join(names[:6]) + (" ..." if len(names) > 6 else ""))
    with torch.serialization.safe_globals([(_inert_class(n), n) for n in names]):
        return torch.load(path, map_location="cpu", weights_only=True)


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_state_dict(path_or_state: str | Path | Mapping) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a checkpoint file or an already loaded object.

    Unwraps ``{'model': ...}`` (the official training scripts) and ``{'state_dict': ...}``
    (Lightning) and drops a ``module.`` prefix left by DistributedDataParallel.
    """
    obj = path_or_state if isinstance(path_or_state, Mapping) else safe_load(path_or_state)
    while not _is_state_dict(obj):
        inner = next((obj[k] for k in ("model", "state_dict") if isinstance(obj, Mapping)
                      and isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            keys = sorted(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
            raise ValueError(f"no state dict found in the checkpoint (top level: {keys})")
        obj = inner
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}

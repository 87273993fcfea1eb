"""Any of the suite's checkpoints -> its LightningModule, in eval mode, and the detector that drives it.

The class comes from the checkpoint's hyper-parameters: LightningCLI stores it as ``_class_path``
(paths from before the per-paper packages still resolve); a checkpoint written without the CLI
(``Trainer.fit`` in a script) is recognised by its ``arch``, looked up in :mod:`avsync.registry`.
How a module is run on a file is the detector's business (:mod:`avsync.detect.detectors`), chosen
by the model's registered detector protocol.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from avsync.registry import entry_for_checkpoint, import_path, list_models

__all__ = ["CheckpointError", "module_class", "load_module", "module_from_checkpoint"]

# constructor arguments that point at other weight files: the checkpoint's own weights replace them
_WEIGHT_FILE_ARGS = ("init_from", "s3d_weights", "audio_weights", "extractors_from")
_INTERNAL_KEYS = ("_class_path", "_instantiator")


class CheckpointError(ValueError):
    """The checkpoint cannot be read or does not say which model it holds."""


def module_class(hparams: dict) -> type[L.LightningModule]:
    """The LightningModule class of a checkpoint's hyper-parameters."""
    if "_class_path" in hparams:
        try:
            return import_path(hparams["_class_path"])
        except (ImportError, AttributeError) as err:
            raise CheckpointError(f"the checkpoint's model {hparams['_class_path']} is not in this install "
                                  f"({err})") from err
    entry = entry_for_checkpoint(hparams)
    if entry is None:
        raise CheckpointError(f"cannot tell the model: no _class_path in the hyper-parameters and arch "
                              f"{hparams.get('arch')!r} is no registered model's ({', '.join(list_models())})")
    return entry.module_class()


def load_module(ckpt: str | Path, device: str = "cpu") -> L.LightningModule:
    """Rebuild the module from the hyper-parameters and load its weights (strict, ``weights_only``)."""
    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
    except Exception as err:  # missing, not a checkpoint, truncated, not weights-only: torch raises many kinds
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{ckpt}: cannot read checkpoint ({type(err).__name__}: {first_line[:200]})") from err
    return module_from_checkpoint(state, device, source=str(ckpt))


def module_from_checkpoint(state: dict, device: str = "cpu", source: str = "checkpoint") -> L.LightningModule:
    """:func:`load_module` on a checkpoint already in memory (e.g. a converter's
    ``lightning_checkpoint`` of an official file); ``source`` names it in errors."""
    ckpt = source
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CheckpointError(f"{ckpt}: not a Lightning checkpoint (no state_dict)")
    hparams = dict(state.get("hyper_parameters") or {})
    cls = module_class(hparams)
    kwargs = {k: v for k, v in hparams.items() if k not in _INTERNAL_KEYS}
    kwargs.update({k: None for k in _WEIGHT_FILE_ARGS if kwargs.get(k)})
    try:
        module = cls(**kwargs)
        module.load_state_dict(state["state_dict"], strict=True)
    except (TypeError, ValueError, RuntimeError) as err:  # arguments or weights that do not fit the class
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{ckpt}: cannot rebuild {cls.__name__}: {first_line[:300]}") from err
    return module.to(device).eval()

"""The training loops of the ``avsync`` / ``lightning`` command: a LightningCLI.

``lightning fit|validate|test|predict --config experiments/....yaml`` is a LightningCLI over every
LightningModule registered in :mod:`avsync.registry` and every LightningDataModule in :mod:`avsync.data_modules`
(``class_path``/``init_args`` injection). This module imports Lightning and every model, so
:mod:`avsync.cli` imports it only when a training loop (or its ``--help``) is asked for.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil

import lightning as L
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.cli import LightningCLI

import avsync.data_modules
from avsync.public_classes import DATA_MODULES, listing, models
from avsync.registry import get_model, list_models
from avsync.training.resume import ExactResume


def _import_all(package) -> None:
    """Import every submodule so LightningCLI's subclass lookup (and --help) knows all of them."""
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)


def import_models() -> None:
    """Import every registered LightningModule so LightningCLI's subclass lookup knows all of them."""
    for name in list_models():
        get_model(name).module_class()


def _subclasses(base: type) -> list[str]:
    seen, stack, out = set(), [base], []
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
                if sub.__module__.startswith("avsync"):
                    out.append(f"{sub.__module__}.{sub.__qualname__}")
    return sorted(out)


class _ListHelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """jsonargparse's formatter, but the description keeps its line breaks (the model lists)."""


class AVSyncCLI(LightningCLI):
    """LightningCLI whose --help names the suite's models and data modules."""

    def init_parser(self, **kwargs):
        from avsync.commands import EXTRA_COMMANDS
        kwargs.setdefault("description", "avsync — audio-visual synchronisation experiments.\n\n"
                          f"Models (--model):\n{listing(models())}\n\nData modules (--data):\n{listing(DATA_MODULES)}\n\n"
                          "Other subcommands: " + ", ".join(sorted(EXTRA_COMMANDS)))
        kwargs.setdefault("formatter_class", _ListHelpFormatter)
        return super().init_parser(**kwargs)


def cli_main(args: list[str] | None = None, run: bool = True) -> AVSyncCLI:
    import_models()
    _import_all(avsync.data_modules)
    return AVSyncCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True,
                     subclass_mode_data=True, save_config_kwargs={"overwrite": True},
                     auto_configure_optimizers=False, args=args, run=run,
                     trainer_defaults={"callbacks": [ExactResume()]})  # exact resume (avsync.training.resume)

"""The ``avsync`` / ``lightning`` command.

``lightning fit|validate|test|predict --config experiments/....yaml`` is a LightningCLI over every
LightningModule in :mod:`avsync.lit` and every LightningDataModule in :mod:`avsync.data_modules`
(``class_path``/``init_args`` injection). Extra subcommands that are not training loops live beside
it and are dispatched by name before LightningCLI sees the arguments.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Callable

import lightning as L
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.cli import LightningCLI

import avsync.data_modules
import avsync.lit
from avsync.resume import ExactResume


def _import_all(package) -> None:
    """Import every submodule so LightningCLI's subclass lookup (and --help) knows all of them."""
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)


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
        models = "\n  ".join(_subclasses(L.LightningModule))
        data = "\n  ".join(_subclasses(L.LightningDataModule))
        kwargs.setdefault("description", "avsync — audio-visual synchronisation experiments.\n\n"
                          f"Models (--model):\n  {models}\n\nData modules (--data):\n  {data}\n\n"
                          "Other subcommands: " + ", ".join(sorted(EXTRA_COMMANDS)))
        kwargs.setdefault("formatter_class", _ListHelpFormatter)
        return super().init_parser(**kwargs)


def cli_main(args: list[str] | None = None, run: bool = True) -> AVSyncCLI:
    _import_all(avsync.lit)
    _import_all(avsync.data_modules)
    return AVSyncCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True,
                     subclass_mode_data=True, save_config_kwargs={"overwrite": True},
                     auto_configure_optimizers=False, args=args, run=run,
                     trainer_defaults={"callbacks": [ExactResume()]})  # exact resume (avsync.resume)


def _reproduce(argv: list[str]) -> int:
    from avsync.reproduce import main as reproduce_main

    return reproduce_main(argv)


def _generate_toy(argv: list[str]) -> int:
    from avsync.toy.generate import main as generate_main

    generate_main(argv)
    return 0


EXTRA_COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "convert": lambda argv: importlib.import_module("avsync.convert.cli").main(argv),
    "reproduce": _reproduce,
    "generate-toy": _generate_toy,
    "prepare": lambda argv: importlib.import_module("avsync.prepare").main(argv),
    "probe-artefacts": lambda argv: importlib.import_module("avsync.artefact_probe").main(argv),
    "title-report": lambda argv: importlib.import_module("avsync.title.report").main(argv),
    "cache-features": lambda argv: importlib.import_module("avsync.feature_cache").main(argv),
    "detect": lambda argv: importlib.import_module("avsync.detect.cli").main(argv),
    "score": lambda argv: importlib.import_module("avsync.score.cli").main(argv),
    "attribute": lambda argv: importlib.import_module("avsync.attribution.cli").main(argv),
    "gate": lambda argv: importlib.import_module("avsync.gate").main(argv),
}


def main(argv: list[str] | None = None) -> int:
    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in EXTRA_COMMANDS:
        return EXTRA_COMMANDS[argv[0]](argv[1:]) or 0
    # from the command line LightningCLI reads sys.argv itself: passing it as args too makes it warn
    cli_main(None if from_command_line else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())

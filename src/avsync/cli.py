"""The ``avsync`` / ``lightning`` command: a light dispatcher.

``fit|validate|test|predict`` go to the LightningCLI in :mod:`avsync.training_cli`; the other
subcommands (``detect``, ``convert``, ``reproduce``, ...) are dispatched by name before Lightning is
imported. Nothing heavy is imported at module level, so ``avsync --help`` and every subcommand's
start stay fast (the help is built from :mod:`avsync.public_classes`).
"""
from __future__ import annotations

import sys

from avsync.commands import EXTRA_COMMANDS
from avsync.public_classes import DATA_MODULES, listing, models


def cli_main(args: list[str] | None = None, run: bool = True):
    """The LightningCLI (``fit/validate/test/predict``) over the suite's models and data modules."""
    from avsync.training_cli import cli_main as training_cli_main

    return training_cli_main(args, run=run)


def help_text() -> str:
    """``avsync --help``: the subcommands, the public models and data modules (no imports)."""
    return (
        "usage: avsync {fit,validate,test,predict} [--config CONFIG ...]\n"
        "       avsync {" + ",".join(sorted(EXTRA_COMMANDS)) + "} ...\n\n"
        "avsync — audio-visual synchronisation experiments.\n\n"
        "Training loops (LightningCLI; `avsync fit --help` for their options):\n"
        "  fit, validate, test, predict   e.g. `lightning fit --config experiments/sparsesync_toy_dense.yaml`\n\n"
        f"Models (--model / model.class_path):\n{listing(models())}\n\n"
        f"Data modules (--data / data.class_path):\n{listing(DATA_MODULES)}\n\n"
        "Other subcommands (`avsync NAME --help`): " + ", ".join(sorted(EXTRA_COMMANDS)) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    from_sys_argv = argv is None
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(help_text(), end="")
        raise SystemExit(0)
    if argv[0] in EXTRA_COMMANDS:
        return EXTRA_COMMANDS[argv[0]](argv[1:]) or 0
    # LightningCLI reads sys.argv itself when args is None (passing both gives its "args" warning)
    cli_main(None if from_sys_argv else argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())

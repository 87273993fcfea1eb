"""LightningCLI override lists for short test runs, written as dicts and rendered in one place.

Tests shrink a config's data, model and trainer with ``--data.init_args.K V`` style arguments;
``cli_overrides`` writes them from ``{K: V}`` so a test states only the values it needs and the
usual tiny sizes below are spelled once."""
from __future__ import annotations

# the usual tiny toy split sizes and a two-step fit with one validation batch
TINY_SPLITS = {"num_train": 4, "num_valid": 2, "num_test": 2}
TWO_STEP_FIT = {"max_steps": 2, "val_check_interval": 2, "limit_val_batches": 1}


def _value(value: object) -> str:
    if isinstance(value, bool):  # jsonargparse reads YAML booleans
        return "true" if value else "false"
    return str(value)


def cli_overrides(data: dict | None = None, model: dict | None = None, trainer: dict | None = None) -> list[str]:
    """``--data.init_args.K V`` for ``data``, ``--model.init_args.K V`` for ``model``, ``--trainer.K V``
    for ``trainer``, in that order and in each dict's order."""
    args: list[str] = []
    for prefix, values in (("--data.init_args.", data), ("--model.init_args.", model), ("--trainer.", trainer)):
        for key, value in (values or {}).items():
            args += [prefix + key, _value(value)]
    return args

"""The subcommands other than the training loops: name -> entry point (module path, imported on use).

One table, read by :mod:`avsync.cli` (dispatch and ``--help``) and by :mod:`avsync.training_cli`
(its ``--help``). Entry points are named by module path, so neither importing this table nor
``avsync --help`` imports any command's code, and no command module imports the CLI back.
"""
from __future__ import annotations

import importlib
from typing import Callable

ENTRY_POINTS: dict[str, str] = {
    "convert": "avsync.convert.cli",
    "reproduce": "avsync.reproduce",
    "generate-toy": "avsync.toy.generate",
    "prepare": "avsync.prepare",
    "probe-artefacts": "avsync.artefact_probe",
    "title-report": "avsync.title.report",
    "cache-features": "avsync.papers.synchformer.feature_cache",
    "detect": "avsync.detect.cli",
    "score": "avsync.score.cli",
    "attribute": "avsync.papers.synchformer.attribution.cli",
    "gate": "avsync.gate",
    "weights": "avsync.weights.cli",
}


def _runner(module: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        code = importlib.import_module(module).main(argv)
        return code if isinstance(code, int) else 0  # some mains return what they wrote (a path)
    return run


EXTRA_COMMANDS: dict[str, Callable[[list[str]], int]] = {name: _runner(m) for name, m in ENTRY_POINTS.items()}

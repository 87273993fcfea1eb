"""avsync's synthetic-weights generator for the golden scripts, which run in the authors'
environment where avsync need not be installed: imported by file path (it needs only torch)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_synthetic_weights():
    """The module :mod:`avsync.convert.synthetic_weights`, loaded from this checkout's source."""
    spec = importlib.util.spec_from_file_location("synthetic_weights", ROOT / "src/avsync/convert/synthetic_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

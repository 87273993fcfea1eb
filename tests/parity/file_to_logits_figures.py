#!/usr/bin/env python
"""The file -> outputs figures of the four golden parity tests, from avsync's own decode of the
fixture clips, as the tests measure them (``rel`` = max |avsync − authors| / max |authors|).

Runs the tests below with ``AVSYNC_PARITY_LOG`` set (``tests/parity/compare.py`` then records
every ``rel`` it computes) and prints one line per comparison::

    python tests/parity/file_to_logits_figures.py            # VocaLiST, SyncNet, SparseSync (~3 min CPU)
    python tests/parity/file_to_logits_figures.py --all      # + Synchformer and the slow whole-clip tests

The results are in the reproductions' READMEs ("Parity with the authors' code").
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAST = ["tests/integration/test_parity_vocalist.py::test_file_to_logits",
        "tests/integration/test_parity_vocalist.py::test_file_to_logits_with_lossless_audio",
        "tests/integration/test_parity_syncnet.py::test_file_to_embeddings",
        "tests/integration/test_parity_syncnet.py::test_file_to_embeddings_with_lossless_audio",
        "tests/integration/test_parity_sparsesync.py::test_logits_equal_the_authors"]
SLOW = ["tests/integration/test_parity_vocalist.py::test_file_to_logits_whole_search",
        "tests/integration/test_parity_vocalist.py::test_detect_uses_the_authors_clip_procedure",
        "tests/integration/test_parity_syncnet.py::test_file_to_lse_whole_clip",
        "tests/integration/test_parity_synchformer.py::test_extractor_features_and_offset_logits_equal_the_authors",
        "tests/integration/test_parity_synchformer.py::test_synchronizability_equals_the_authors"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="also Synchformer and the slow whole-clip tests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "rel.jsonl"
        env = {**os.environ, "AVSYNC_PARITY_LOG": str(log)}
        tests = FAST + (SLOW if args.all else [])
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                              *tests], cwd=ROOT, env=env)
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for r in records:
        print(f"{r['rel']:.2e}  {r['test'].split('::')[-1]}  {r['line']}  {r['code']}")
    return rc


if __name__ == "__main__":
    sys.exit(main())

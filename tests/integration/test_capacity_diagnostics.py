"""The event-supervised capacity tests of the sparse READMEs (SparseSync's S3D, Synchformer's
Motionformer) run end to end: rendered sparse windows, their event labels, a few training steps and
the test ROC AUC line the README tables are read from."""
from __future__ import annotations

import importlib.util

import pytest

from avsync.reproduce import REPRODUCTIONS


def _script(paper: str):
    path = REPRODUCTIONS / paper / "extractor_capacity.py"
    spec = importlib.util.spec_from_file_location(f"{paper}_extractor_capacity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("paper", "extra"), [("sparsesync", []), ("synchformer", []),
                                               ("synchformer", ["--per", "segment"])])
def test_capacity_test_trains_and_reports_the_test_auc(paper, extra, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(REPRODUCTIONS / "sparsesync"))  # the scripts' own folder, as when run from there
    _script(paper).main(["--steps", "2", "--train-clips", "4", "--test-clips", "8", *extra])
    out = capsys.readouterr().out
    assert "step 1 loss" in out
    auc = float(out.strip().splitlines()[-1].rsplit("ROC AUC ", 1)[1])
    assert 0.0 <= auc <= 1.0

"""What every golden parity test shares: the device it runs the networks on and one error measure.

``AVSYNC_TEST_DEVICE=cuda`` runs the networks on a GPU (``benchmarks/gpu_check.py`` sets it, with
TF32 off so the float32 tolerances hold). ``rel`` is the largest absolute difference over the
largest absolute reference value: one outlier element cannot hide in an average.
With ``AVSYNC_PARITY_LOG=FILE`` every ``rel`` taken is appended to FILE as a JSON line (test, line,
value): ``tests/parity/file_to_logits_figures.py`` collects the measured figures that way.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

DEVICE = torch.device(os.environ.get("AVSYNC_TEST_DEVICE", "cpu"))


def rel(ours, theirs, keep=None) -> float:
    """max |ours − theirs| / max |theirs| (over the elements where ``keep`` is True, if given)."""
    ours = torch.as_tensor(np.asarray(ours.detach().cpu() if torch.is_tensor(ours) else ours)).double()
    theirs = torch.as_tensor(np.asarray(theirs.detach().cpu() if torch.is_tensor(theirs) else theirs)).double()
    assert ours.shape == theirs.shape, (tuple(ours.shape), tuple(theirs.shape))
    if keep is not None:
        ours, theirs = ours[keep], theirs[keep]
    value = float((ours - theirs).abs().max() / theirs.abs().max())
    if os.environ.get("AVSYNC_PARITY_LOG"):
        _log(value)
    return value


def _log(value: float) -> None:
    """Append ``value`` with the test and the test file's line that asked for it."""
    stack = inspect.stack()[2:]
    caller = next((f for f in stack if f.function.startswith("test_")), None) or next(
        (f for f in stack if Path(f.filename).name.startswith("test_")), None)
    record = {"test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0], "rel": value,
              "line": f"{Path(caller.filename).name}:{caller.lineno}" if caller else "",
              "code": caller.code_context[0].strip() if caller and caller.code_context else ""}
    with open(os.environ["AVSYNC_PARITY_LOG"], "a") as f:
        f.write(json.dumps(record) + "\n")


def load_golden(folder: Path, stem: str) -> dict:
    """``<stem>.json`` (what was run, scalars) and the arrays of ``<stem>.npz``, in one dict."""
    info = json.loads((folder / f"{stem}.json").read_text())
    with np.load(folder / f"{stem}.npz") as npz:
        return {**info, **{k: npz[k] for k in npz.files}}


def golden_test_batch(datamodule, golden: dict) -> dict:
    """The data module's first test batch (batch size 1), checked to be the clip, fixed offset,
    crop start and class the goldens were made at."""
    datamodule.setup("test")
    batch = next(iter(datamodule.test_dataloader()))
    assert batch["key"] == [golden["key"]]
    assert batch["offset_sec"].item() == pytest.approx(golden["offset_sec"])
    assert batch["video_start_sec"].item() == pytest.approx(golden["vstart_sec"])
    assert batch["target"].item() == golden["offset_target"]
    return batch

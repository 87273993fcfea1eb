"""Every loader path resumes exactly: a run hard-killed at a random step and resumed from its last
checkpoint ends with the weights and epoch metrics of the run that never stopped.

The paths: toy (shuffled batches), curriculum (same-clip batches cut to a drawn length), multi-rate
(one loader per rate, combined), wrapped (a module over a clip module), real (the LRS3 layout of
the shared fixtures) and feature bank (cached frozen features). The run is
:mod:`tests.resume_harness`; the kill happens in a subprocess (``os._exit``), the uninterrupted and
the resumed runs in this process. ``AVSYNC_KILL_STEP`` replays one step; the step is named in every
failure message.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from resume_harness import fit  # noqa: E402

HARNESS = Path(__file__).parent / "resume_harness.py"
STEPS = {"toy": 5, "curriculum": 5, "multirate": 4, "wrapped": 5, "real": 3, "feature_bank": 5}


def _check_resumes_exactly(path: str, root: str, tmp_path: Path) -> None:
    steps = STEPS[path]
    first = fit(path, root, tmp_path / "uninterrupted", steps)
    kill_step = int(os.environ.get("AVSYNC_KILL_STEP") or random.SystemRandom().randint(1, steps - 1))
    run_dir = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # float sums depend on it
    proc = subprocess.run([sys.executable, str(HARNESS), path, root, str(run_dir), str(steps), str(kill_step)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 137, f"{path}: the run should die at step {kill_step}:\n{proc.stderr[-3000:]}"
    saved = torch.load(run_dir / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == kill_step

    resumed = fit(path, root, run_dir, steps, resume=True)
    what = f"{path}: run killed at step {kill_step} and resumed"
    assert first[0] == resumed[0], f"{what}: metrics differ\n{first[0]}\n{resumed[0]}"
    diff = [k for k in first[1] if not torch.equal(first[1][k], resumed[1][k])]
    assert not diff, f"{what}: {len(diff)} tensors differ, e.g. {diff[:3]}"
    # the epoch of the kill (the resumed run's first) aggregates the batches before the kill too
    assert resumed[2] and resumed[2] == first[2][-len(resumed[2]):], \
        f"{what}: epoch aggregates differ\n{first[2]}\n{resumed[2]}"


# each takes 7-10 s on one core; the three paths whose batch order this branch kept are in `make test`,
# the others in `make test-all`
@pytest.mark.parametrize("path", ["toy", "curriculum", "multirate"])
def test_killed_run_resumes_exactly(path, toy_root, tmp_path):
    _check_resumes_exactly(path, toy_root, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["wrapped", "feature_bank"])
def test_killed_run_resumes_exactly_slow(path, toy_root, tmp_path):
    _check_resumes_exactly(path, toy_root, tmp_path)


@pytest.mark.slow
def test_killed_run_on_the_real_layout_resumes_exactly(real_fixtures, tmp_path):
    _check_resumes_exactly("real", str(real_fixtures / "lrs3"), tmp_path)

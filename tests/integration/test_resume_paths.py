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

from support.resume_harness import fit

HARNESS = Path(__file__).parents[1] / "support" / "resume_harness.py"
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


# each takes 4-10 s on one core
@pytest.mark.parametrize("path", ["toy", "curriculum", "multirate", "wrapped", "feature_bank"])
def test_killed_run_resumes_exactly(path, toy_root, tmp_path):
    _check_resumes_exactly(path, toy_root, tmp_path)


def test_killed_run_on_the_real_layout_resumes_exactly(real_fixtures, tmp_path):
    _check_resumes_exactly("real", str(real_fixtures / "lrs3"), tmp_path)


class _RandomDraws(torch.utils.data.Dataset):
    """Item i: (i, a draw from torch's global RNG, a draw from NumPy's), like a training crop plan."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int):
        import numpy as np

        return torch.tensor([float(index), float(torch.rand(())), float(np.random.rand())])


def test_batches_and_their_draws_do_not_depend_on_workers_and_resume_mid_epoch():
    from avsync.data_modules.batching import SameClipBatches
    from avsync.training.resume import ResumableTrainLoader

    def epoch(num_workers, consumed=None, batching=None):
        loader = ResumableTrainLoader(_RandomDraws(), batch_size=3, seed=5, num_workers=num_workers,
                                      batching=batching)
        loader.batches.sampler.set_epoch(1)
        if consumed is not None:
            loader.load_state_dict({"epoch": 1, "consumed": consumed, "seed": 5})
        return [b.tolist() for b in loader]

    alone = epoch(0)
    assert len(alone) == 3 and len({row[1] for b in alone for row in b}) == 9  # fresh draws, whole batches
    assert epoch(2) == alone                  # two workers: the same items with the same draws
    assert epoch(2, consumed=1) == alone[1:]  # resumed after one batch, in workers
    assert epoch(0, consumed=2) == alone[2:]
    same_clip = epoch(0, batching=SameClipBatches(2))
    assert epoch(2, batching=SameClipBatches(2)) == same_clip and len(same_clip) == 10


def test_a_shorter_loader_of_a_combination_resumes_inside_its_current_pass(tmp_path):
    """max_size_cycle restarts a shorter loader when it runs out: a resume must continue it where it
    was in that pass (the multi-rate buckets need not hold the same number of batches)."""
    import lightning as L
    from lightning.pytorch.utilities import CombinedLoader

    from avsync.training.resume import ExactResume, ResumableTrainLoader

    class Stop(Exception):
        pass

    class Recorder(L.LightningModule):
        def __init__(self, stop_at=None):
            super().__init__()
            self.lin, self.seen, self.stop_at = torch.nn.Linear(1, 1), [], stop_at

        def train_dataloader(self):
            long = ResumableTrainLoader(list(range(10)), batch_size=2, seed=3)   # 5 batches
            short = ResumableTrainLoader(list(range(100, 104)), batch_size=2, seed=4)  # 2 batches, cycled
            return CombinedLoader({"long": long, "short": short}, mode="max_size_cycle")

        def training_step(self, batch, batch_idx):
            if self.global_step == self.stop_at:
                raise Stop
            self.seen.append((batch["long"].tolist(), batch["short"].tolist()))
            return self.lin(batch["long"].float()[:, None]).sum() * 0

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    def run(folder, stop_at=None, resume=False):
        model = Recorder(stop_at)
        checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=folder, save_last=True, every_n_train_steps=1)
        trainer = L.Trainer(max_steps=8, logger=False, enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[checkpoint, ExactResume()], default_root_dir=folder)
        try:
            trainer.fit(model, ckpt_path=str(folder / "last.ckpt") if resume else None)
        except Stop:
            pass
        return model.seen

    whole = run(tmp_path / "a")
    assert len(whole) == 8
    for stop in (1, 3, 6):  # inside the short loader's 1st / 2nd pass, and inside the 2nd epoch
        folder = tmp_path / f"stop{stop}"
        before = run(folder, stop_at=stop)
        assert before + run(folder, resume=True) == whole, f"stopped at step {stop}"

"""A DataLoader worker that dies natively (abort, kill) does not end training (avsync.training.worker_deaths).

Each death is found by the loader's worker status check (every 0.5 s).
"""
from __future__ import annotations

import faulthandler
import os
import signal
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch.utils.data import Dataset

from avsync.data_modules.base import BadMediaReport
from avsync.training.resume import ExactResume, ResumableTrainLoader
from avsync.training.worker_deaths import SurvivingDataLoader


class DiesOnItems(Dataset):
    """Item i is ``tensor(i)``; loading an item of ``deadly`` in a worker process kills that process."""

    def __init__(self, n: int, deadly: dict[int, str], report: BadMediaReport):
        self.n, self.deadly, self.report, self.stage = n, deadly, report, "train"

    def __len__(self) -> int:
        return self.n

    def record_of(self, index: int):
        return SimpleNamespace(key=f"clip{index}", path=f"/data/clip{index}.mp4")

    def __getitem__(self, index: int):
        how = self.deadly.get(index)
        if how is not None and torch.utils.data.get_worker_info() is not None:
            if how == "abort":
                faulthandler.disable()  # pytest's traceback dump would only add noise
                os.abort()  # what a decoder's failed assertion does
            os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does
        return torch.tensor(index)


def _epoch(loader) -> list[list[int]]:
    return [batch.tolist() for batch in loader]


def test_training_goes_on_when_a_worker_aborts_and_the_file_is_reported(tmp_path):
    report = BadMediaReport(tmp_path / "bad_media.tsv")
    data = DiesOnItems(12, {5: "abort"}, report)
    loader = ResumableTrainLoader(data, batch_size=3, seed=7, num_workers=2, persistent_workers=True)

    first = _epoch(loader)
    assert len(first) == len(loader) == 4  # every batch position is delivered, full
    items = [i for batch in first for i in batch]
    assert 5 not in items and len(items) == 12
    entries = report.read()
    assert [(e.key, e.path) for e in entries] == [("clip5", "/data/clip5.mp4")]
    assert entries[0].reason.startswith("worker_died") and "SIGABRT" in entries[0].reason
    assert loader.worker_deaths == ["/data/clip5.mp4: killed by signal SIGABRT"]

    # the order is the crash-free order with item 5 replaced by the same stand-in
    clean = _epoch(ResumableTrainLoader(DiesOnItems(12, {}, BadMediaReport()), batch_size=3, seed=7))
    stand_in = loader.dataset.stand_in(5)
    assert stand_in != 5
    assert first == [[stand_in if i == 5 else i for i in batch] for batch in clean]

    # the next epoch (same persistent workers, restarted) replaces item 5 without dying again
    loader.batches.sampler.set_epoch(1)
    second = _epoch(loader)
    assert len(second) == 4 and 5 not in [i for b in second for i in b]
    assert len(loader.worker_deaths) == 1

    # the checkpointed state carries the item, so a resumed run replaces it without a crash
    state = loader.state_dict()
    assert state["crashed"] == [5]
    resumed = ResumableTrainLoader(DiesOnItems(12, {5: "abort"}, BadMediaReport()), batch_size=3, seed=0)
    resumed.load_state_dict({**state, "epoch": 0, "consumed": 1})
    assert _epoch(resumed) == first[1:]


def test_too_many_worker_deaths_stop_with_an_error_naming_the_files(tmp_path):
    data = DiesOnItems(8, {2: "kill"}, BadMediaReport(tmp_path / "bad_media.tsv"))
    loader = ResumableTrainLoader(data, batch_size=2, seed=1, num_workers=1, max_worker_deaths=0)
    with pytest.raises(RuntimeError, match=r"(?s)max_worker_deaths=0.*/data/clip2\.mp4: killed by signal SIGKILL"):
        _epoch(loader)


def test_any_training_loader_hands_out_the_lost_batches_again_after_a_worker_dies(tmp_path):
    """SurvivingDataLoader (DDP training, evaluation): its own sampler, batches not delivered
    when the worker died are handed out again, so the epoch keeps its count (each DDP rank too)."""
    report = BadMediaReport(tmp_path / "bad_media.tsv")
    torch.manual_seed(3)
    loader = SurvivingDataLoader(DiesOnItems(20, {9: "kill"}, report), batch_size=4, shuffle=True, drop_last=True,
                                 num_workers=2)
    batches = _epoch(loader)
    items = sorted(i for b in batches for i in b)
    stand_in = loader.dataset.stand_in(9)
    assert len(batches) == len(loader) == 5 and 9 not in items
    assert items == sorted(stand_in if i == 9 else i for i in range(20))  # every other item exactly once
    assert [e.path for e in report.read()] == ["/data/clip9.mp4"] and "SIGKILL" in report.read()[0].reason
    assert len(_epoch(loader)) == 5  # the next epoch, its own order, item 9 replaced without a death
    assert len(loader.worker_deaths) == 1


def test_an_evaluation_loader_keeps_its_order_and_count_when_a_worker_dies(tmp_path):
    """Validation and test loaders (in order): the item that killed a worker is replaced and
    reported, as a clip that fails to decode is; every other item arrives once, in its place."""
    report = BadMediaReport(tmp_path / "bad_media.tsv")
    loader = SurvivingDataLoader(DiesOnItems(10, {4: "abort"}, report), batch_size=3, shuffle=False, num_workers=2)
    batches = _epoch(loader)
    stand_in = loader.dataset.stand_in(4)
    assert batches == [[0, 1, 2], [3, stand_in, 5], [6, 7, 8], [9]]
    assert [e.path for e in report.read()] == ["/data/clip4.mp4"] and "SIGABRT" in report.read()[0].reason


class _Mean(L.LightningModule):
    """The smallest model: learns the mean item; records the items of every training batch."""

    def __init__(self, loader):
        super().__init__()
        self.weight, self.loader, self.seen = torch.nn.Parameter(torch.zeros(())), loader, []

    def train_dataloader(self):
        return self.loader

    def training_step(self, batch, batch_idx):
        self.seen += batch.tolist()
        return ((batch.float() - self.weight) ** 2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_lightning_fit_goes_on_when_a_worker_is_killed(tmp_path):
    report = BadMediaReport(tmp_path / "bad_media.tsv")
    loader = ResumableTrainLoader(DiesOnItems(16, {6: "kill"}, report), batch_size=4, seed=5, num_workers=2)
    model = _Mean(loader)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[ExactResume()])
    trainer.fit(model)
    assert trainer.global_step == 8 and len(model.seen) == 32 and 6 not in model.seen
    assert [e.path for e in report.read()] == ["/data/clip6.mp4"] and len(loader.worker_deaths) == 1
    assert loader.state_dict()["crashed"] == [6]

"""Exact resume: a run killed at any step and restarted with ``--ckpt_path last`` ends like one that never stopped.

Three things made a resumed run drift away from the uninterrupted one:

* the training loader shuffled with a ``RandomSampler`` that draws its permutation from the global
  torch RNG, and restarted the interrupted epoch from its first batch (Lightning warned "your
  dataloader is not resumable"), so the resumed run saw other clips in another order;
* every random draw of a training step (offset and crop plans of the items, the pairs that
  VocaLiST / SyncNet / DiVAS cut, dropout) came from the global RNGs, whose state Lightning does
  not checkpoint, so after a resume they restarted from ``seed_everything``'s state;
* the epoch's running aggregates (training accuracy states, the sums behind ``on_epoch`` logged
  losses) restarted from zero, so the interrupted epoch's metrics covered only its last batches.

:class:`ResumableTrainLoader` fixes the first: its batch order is a pure function of (seed, epoch),
it is ``state_dict``/``load_state_dict``-able (Lightning stores that in the checkpoint) and skips
the batches already trained on. Each batch is drawn (decoded, cropped) right after the global RNGs
are re-seeded from (seed, epoch, batch). :class:`ExactResume` fixes the second: before every
training step it re-seeds torch, NumPy and ``random`` from (seed, global step), so a step's draws
do not depend on what ran before it (validation, loader restarts, a resume); it also carries
the third in the checkpoint.

Limits: with ``num_workers > 0`` the items are drawn in the workers from their own RNGs, so the
batch *order* resumes exactly but the items' random crops/offsets of a resumed epoch may differ;
the loader is not meant for DDP (Lightning's distributed sampler would replace it).

A worker process that dies (a native decoder crash: segfault, abort, or a kill) does not end the
run: :class:`ResumableTrainLoader` notes which item each worker is loading, and when a worker dies
it names that item's file in a warning and the data set's failure report, replaces the item from
then on by a fixed other one (the same batch positions, so Lightning's batch count and ``consumed``
are unchanged), and restarts the workers at the batch that was lost (:mod:`avsync.training.worker_deaths`).
"""
from __future__ import annotations

import random
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from avsync.offsets import stable_hash
from avsync.training.worker_deaths import CrashTracedDataset, SurvivingWorkersIter

__all__ = ["derived_seed", "seed_all", "EpochOrder", "ResumableBatches", "ResumableTrainLoader", "ExactResume"]


def derived_seed(*parts: int | str) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (independent of PYTHONHASHSEED)."""
    return stable_hash("/".join(str(p) for p in parts)) & (2**63 - 1)


def seed_all(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's legacy global RNG and ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class EpochOrder(Sampler[int]):
    """A permutation of ``range(n)`` drawn from (seed, epoch) only; Lightning calls ``set_epoch``."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(derived_seed("order", self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


class ResumableBatches(Sampler[list[int]]):
    """Batches of :class:`EpochOrder`; skips the first ``skip`` batches of the next pass, and re-seeds
    the global RNGs from (seed, epoch, batch) before handing each batch to the loader."""

    def __init__(self, order: EpochOrder, batch_size: int, drop_last: bool):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sampler, self.batch_size, self.drop_last = order, int(batch_size), bool(drop_last)
        self.skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        indices, skip, self.skip = list(self.sampler), self.skip, 0
        for b in range(skip, len(self)):
            seed_all(derived_seed("batch", self.sampler.seed, self.sampler.epoch, b))
            yield indices[b * self.batch_size:(b + 1) * self.batch_size]

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class ResumableTrainLoader(DataLoader):
    """A shuffled training ``DataLoader`` that Lightning can checkpoint and resume mid-epoch.

    ``seed`` defaults to ``torch.initial_seed()``, i.e. the config's ``seed_everything``.
    :class:`ExactResume` reports the batches trained on (``consumed``); that count, not the
    batches fetched (Lightning pre-fetches one), goes into the checkpoint.

    ``max_worker_deaths``: how many worker processes may die (each loses one item, which is
    replaced from then on) before the run stops with an error naming the files; the items that
    crashed a worker are kept in the checkpoint, so a resumed run replaces them without crashing.
    """

    def __init__(self, dataset: Dataset, batch_size: int, drop_last: bool = True, seed: int | None = None,
                 max_worker_deaths: int = 8, **kwargs: Any):
        if isinstance(dataset, CrashTracedDataset):  # re-instantiated from its own attributes
            dataset = dataset.dataset
        self.seed = int(torch.initial_seed() if seed is None else seed)
        self.batches = ResumableBatches(EpochOrder(len(dataset), self.seed), batch_size, drop_last)
        self.consumed = 0
        self.max_worker_deaths = int(max_worker_deaths)
        self.worker_deaths: list[str] = []  # one line per death: the file (or item) and how it died
        traced = CrashTracedDataset(dataset, int(kwargs.get("num_workers", 0)), self.seed)
        kwargs.setdefault("generator", torch.Generator().manual_seed(self.seed))
        super().__init__(traced, batch_sampler=self.batches, **kwargs)

    def __iter__(self):
        start = self.batches.skip  # the first batch position of this pass (ResumableBatches resets it)
        inner = super().__iter__()
        if self.num_workers == 0:  # a native crash here is a crash of this process: nothing to survive
            return inner
        return SurvivingWorkersIter(self, inner, start)

    def restart_at(self, position: int):
        """A fresh worker pool whose first batch is ``position`` of the current epoch (after a death)."""
        self.batches.skip = int(position)
        return super().__iter__()

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.batches.sampler.epoch, "consumed": self.consumed, "seed": self.seed,
                "crashed": sorted(self.dataset.crashed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, consumed = int(state["epoch"]), int(state["consumed"])
        if consumed >= len(self.batches):  # saved on the last batch: the next pass is a new epoch
            epoch, consumed = epoch + 1, 0
        self.seed = self.batches.sampler.seed = int(state.get("seed", self.seed))
        self.batches.sampler.set_epoch(epoch)
        self.batches.skip = self.consumed = consumed
        self.dataset.crashed.update(int(i) for i in state.get("crashed", ()))


class ExactResume(L.Callback):
    """What a resumed run needs to continue exactly (LightningCLI adds it to every trainer).

    * Re-seeds the global RNGs from (seed, global step) before each training step. The seed is
      ``torch.initial_seed()`` when fitting starts (``seed_everything``'s value), kept in the checkpoint.
    * Tells a :class:`ResumableTrainLoader` how many batches of the epoch were trained on.
    * Keeps the running epoch aggregates of a checkpoint taken mid-epoch: the states of the
      module's torchmetrics (e.g. the training ``OffsetAccuracy``) and the sums behind values
      logged with ``on_epoch=True`` (Lightning restarts both from zero), so the epoch's metrics
      cover the batches before the kill too.
    """

    def __init__(self):
        self.seed: int | None = None
        self._pending_logged: dict[str, dict] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.seed is None:
            self.seed = int(torch.initial_seed())

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        seed_all(derived_seed("step", self.seed, trainer.global_step))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loader = trainer.train_dataloader
        if isinstance(loader, ResumableTrainLoader):  # batch_idx counts on across a resume
            loader.consumed = batch_idx + 1
        if self._pending_logged:  # the first step after a resume has created its logged entries
            _add_logged_sums(trainer.fit_loop.epoch_loop._results, self._pending_logged)
            self._pending_logged = {}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if trainer.training and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            checkpoint["avsync_epoch_running"] = {
                "metrics": _metric_states(pl_module),
                "logged": _logged_sums(trainer.fit_loop.epoch_loop._results),
            }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        running = checkpoint.get("avsync_epoch_running")
        if running:
            _load_metric_states(pl_module, running["metrics"])
            self._pending_logged = running["logged"]

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seed = state_dict.get("seed", self.seed)


def _torchmetrics(module: torch.nn.Module) -> dict[str, Any]:
    from torchmetrics import Metric

    return {name: m for name, m in module.named_modules() if isinstance(m, Metric)}


def _metric_states(module: torch.nn.Module) -> dict[str, dict]:
    out = {}
    for name, metric in _torchmetrics(module).items():
        states = {k: getattr(metric, k) for k in metric._defaults}
        states = {k: [t.detach().cpu().clone() for t in v] if isinstance(v, list) else v.detach().cpu().clone()
                  for k, v in states.items()}
        out[name] = {"states": states, "update_count": int(metric._update_count)}
    return out


def _load_metric_states(module: torch.nn.Module, saved: dict[str, dict]) -> None:
    metrics = _torchmetrics(module)
    for name, entry in saved.items():
        metric = metrics.get(name)
        if metric is None:
            continue
        device = metric.device
        for key, value in entry["states"].items():
            setattr(metric, key, [t.to(device) for t in value] if isinstance(value, list) else value.to(device))
        metric._update_count = entry["update_count"]
        metric._computed = None


def _logged_sums(results) -> dict[str, dict]:
    """Accumulators of the epoch-level values logged in training steps (not in epoch hooks)."""
    out = {}
    for key, metric in results.items():
        if metric.is_tensor and metric.meta.on_epoch and "epoch" not in metric.meta.fx:
            entry = {"value": metric.value.detach().cpu().clone()}
            if metric.meta.is_mean_reduction:
                entry["cumulated_batch_size"] = metric.cumulated_batch_size.detach().cpu().clone()
            out[key] = entry
    return out


def _add_logged_sums(results, saved: dict[str, dict]) -> None:
    for key, entry in saved.items():
        metric = results.get(key)
        if metric is None or not metric.is_tensor:
            continue
        value = entry["value"].to(metric.value.device, metric.value.dtype)
        if metric.meta.is_max_reduction or metric.meta.is_min_reduction:
            metric.value = metric.meta.reduce_fx(value, metric.value)
        else:  # mean (batch-size weighted sum) and sum
            metric.value = value + metric.value
        if metric.meta.is_mean_reduction and "cumulated_batch_size" in entry:
            metric.cumulated_batch_size = entry["cumulated_batch_size"].to(metric.cumulated_batch_size.device) \
                + metric.cumulated_batch_size

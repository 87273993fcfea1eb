"""Exact resume: a run killed at any step and restarted with ``--ckpt_path last`` ends like one that never stopped.

Three things made a resumed run drift away from the uninterrupted one:

* the training loader shuffled with a ``RandomSampler`` that draws its permutation from the global
  torch RNG, and restarted the interrupted epoch from its first batch (Lightning warned "your
  dataloader is not resumable"), so the resumed run saw other clips in another order;
* every random draw of a training step (offset and crop plans of the items, the pairs that
  VocaLiST / SyncNet / DiVAS cut, dropout) came from the global RNGs, whose state Lightning does
  not checkpoint, so after a resume they restarted from ``seed_everything``'s state;
* the epoch's running aggregates (training accuracy states, the epoch means of logged losses)
  restarted from zero, so the interrupted epoch's metrics covered only its last batches.

:class:`ResumableTrainLoader` fixes the first for every training loader of the data layer (they
are all built by :func:`avsync.data_modules.loaders.build_loader`): its batches are a pure
function of (seed, epoch) under a batching policy (:class:`ShuffledBatches`, or the curriculum's
same-clip batches), it skips the batches already trained on, and it keeps that count in its
public ``state_dict`` / ``load_state_dict``, which Lightning saves in the checkpoint and restores
for every training loader that has them (one loader, or each loader of a ``CombinedLoader``).
Each batch is drawn (decoded, cropped, collated) right after the loading process re-seeds the
global RNGs from (seed, epoch, batch) (:mod:`avsync.training.seeding`), so the batches are the
same with 0 or N workers. :class:`ExactResume` fixes the second: before every training step it
re-seeds torch, NumPy and ``random`` from (seed, global step), so a step's draws do not depend on
what ran before it (validation, loader restarts, a resume). It also carries the third in the
checkpoint, through the torchmetrics' public state (``Metric.metric_state``): epoch means of
logged values are ``MeanMetric`` objects (:mod:`avsync.training.epoch_means`), so no Lightning or
torchmetrics private attribute is read or written.

Why not torchdata's ``StatefulDataLoader``: with Lightning 2.6 it resumes the batch *order*
exactly too (Lightning does not pre-fetch from a loader with a length, so the batches it has
yielded are the batches trained on), but it does not re-seed the items' random draws per batch
(the first batch after a resume would draw from another RNG state), and it replaces the
DataLoader iterator that worker-death survival works with. The ``consumed`` count reported by
:class:`ExactResume` stays right should Lightning pre-fetch again.

Limit: under DDP the training loader is Lightning's distributed one (shuffled batches) and does not
resume mid-epoch exactly.

A worker process that dies (a native decoder crash: segfault, abort, or a kill) does not end the
run: :class:`ResumableTrainLoader` notes which item each worker is loading, and when a worker dies
it names that item's file in a warning and the data set's failure report, replaces the item from
then on by a fixed other one (the same batch positions, so Lightning's batch count and ``consumed``
are unchanged), and restarts the workers at the batch that was lost (:mod:`avsync.training.worker_deaths`).
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from avsync.training.seeding import SeededIndex, derived_seed, seed_all
from avsync.training.worker_deaths import CrashTracedDataset, SurvivingWorkersIter

__all__ = ["derived_seed", "seed_all", "EpochOrder", "BatchingPolicy", "ShuffledBatches", "ResumableBatches",
           "ResumableTrainLoader", "ExactResume", "training_loaders"]


class EpochOrder(Sampler[int]):
    """A permutation of ``range(n)`` drawn from (seed, epoch) only; Lightning calls ``set_epoch``.

    It is also the epoch clock of :class:`ResumableBatches` (``batches.sampler``), which is where
    Lightning finds ``set_epoch`` on a loader that has a batch sampler."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(derived_seed("order", self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


class BatchingPolicy(Protocol):
    """How one epoch's items are grouped into batches: a pure function of (items, seed, epoch), so
    that a resumed run can rebuild the epoch and skip what was trained on."""

    def batches(self, order: EpochOrder) -> list[list[int]]: ...

    def num_batches(self, num_items: int) -> int: ...


class ShuffledBatches:
    """The usual training batches: the epoch's permutation (:class:`EpochOrder`) cut into
    ``batch_size`` chunks (the last, short one dropped with ``drop_last``)."""

    def __init__(self, batch_size: int, drop_last: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.drop_last = int(batch_size), bool(drop_last)

    def batches(self, order: EpochOrder) -> list[list[int]]:
        indices, size = list(order), self.batch_size
        return [indices[b * size:(b + 1) * size] for b in range(self.num_batches(len(indices)))]

    def num_batches(self, num_items: int) -> int:
        return num_items // self.batch_size if self.drop_last else -(-num_items // self.batch_size)


class ResumableBatches(Sampler[list[int]]):
    """The batches of ``policy`` for the current epoch of ``sampler`` (an :class:`EpochOrder`); skips
    the first ``skip`` batches of the next pass. Each batch's first index is a
    :class:`~avsync.training.seeding.SeededIndex` of (seed, epoch, batch): the process that loads
    the batch re-seeds the global RNGs from it first, so the items' random draws and the collate's
    depend on the batch position only (not on the worker count, a worker restart or a resume)."""

    def __init__(self, order: EpochOrder, policy: BatchingPolicy):
        self.sampler, self.policy = order, policy
        self.skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        batches, skip, self.skip = self.policy.batches(self.sampler), self.skip, 0
        for b in range(skip, len(batches)):
            batch = list(batches[b])
            if batch:  # the loading process re-seeds from it (avsync.training.seeding)
                batch[0] = SeededIndex(batch[0], derived_seed("batch", self.sampler.seed, self.sampler.epoch, b))
            yield batch

    def __len__(self) -> int:
        return self.policy.num_batches(len(self.sampler))


class ResumableTrainLoader(DataLoader):
    """A training ``DataLoader`` that Lightning can checkpoint and resume mid-epoch.

    ``batching`` groups the epoch's items (default :class:`ShuffledBatches` of ``batch_size``,
    ``drop_last``); the AVST curriculum passes same-clip batches. ``seed`` defaults to
    ``torch.initial_seed()``, i.e. the config's ``seed_everything``. :class:`ExactResume` reports
    the batches trained on (``consumed``); that count, not the batches fetched (Lightning pre-fetches
    one), goes into the checkpoint through this loader's public ``state_dict`` (Lightning saves the
    ``state_dict`` of every training loader that has one, also inside a ``CombinedLoader``).

    ``max_worker_deaths``: how many worker processes may die (each loses one item, which is
    replaced from then on) before the run stops with an error naming the files; the items that
    crashed a worker are kept in the checkpoint, so a resumed run replaces them without crashing.
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = None, drop_last: bool = True,
                 seed: int | None = None, max_worker_deaths: int = 8, batching: BatchingPolicy | None = None,
                 **kwargs: Any):
        if isinstance(dataset, CrashTracedDataset):  # re-instantiated from its own attributes
            dataset = dataset.dataset
        if batching is None:
            if batch_size is None:
                raise ValueError("ResumableTrainLoader needs batch_size or a batching policy")
            batching = ShuffledBatches(batch_size, drop_last)
        self.seed = int(torch.initial_seed() if seed is None else seed)
        self.batching = batching
        self.batches = ResumableBatches(EpochOrder(len(dataset), self.seed), batching)
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

    def trained_on(self, batches_of_epoch: int) -> None:
        """Called after each training step with the epoch's trained-batch count (``batch_idx + 1``).
        A loader shorter than the epoch (a ``max_size_cycle`` combination restarts it when it runs
        out) counts within its current pass."""
        n = len(self.batches)
        self.consumed = batches_of_epoch if batches_of_epoch <= n or n == 0 else (batches_of_epoch - 1) % n + 1

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


def training_loaders(trainer: L.Trainer) -> list:
    """Every loader of the fit's training data: one loader, or the values of a dict / list of them
    (``trainer.train_dataloader`` gives what the data module returned, a CombinedLoader's iterables)."""
    loaders = trainer.train_dataloader
    if loaders is None:
        return []
    if isinstance(loaders, dict):
        return list(loaders.values())
    if isinstance(loaders, (list, tuple)):
        return list(loaders)
    return [loaders]


class ExactResume(L.Callback):
    """What a resumed run needs to continue exactly (LightningCLI adds it to every trainer).

    * Re-seeds the global RNGs from (seed, global step) before each training step. The seed is
      ``torch.initial_seed()`` when fitting starts (``seed_everything``'s value), kept in the checkpoint.
    * Tells every :class:`ResumableTrainLoader` of the training data (one, or each loader of a
      combination such as the multi-rate buckets) how many batches of the epoch were trained on.
    * Keeps the running epoch aggregates of a checkpoint taken mid-epoch: the states of the
      module's torchmetrics (training accuracies, and the epoch means of logged losses, which the
      modules log as ``MeanMetric`` objects, :func:`avsync.training.epoch_means.log_epoch_mean`),
      read and written through their public state (``Metric.metric_state`` and the state
      attributes it names), so the epoch's metrics cover the batches before the kill too.
      Values logged as plain tensors with ``on_epoch=True`` restart their epoch aggregate at a
      resume (Lightning keeps those in private loop state, which this callback does not touch).
    """

    def __init__(self):
        self.seed: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.seed is None:
            self.seed = int(torch.initial_seed())

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        seed_all(derived_seed("step", self.seed, trainer.global_step))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        for loader in training_loaders(trainer):  # batch_idx counts on across a resume
            if isinstance(loader, ResumableTrainLoader):
                loader.trained_on(batch_idx + 1)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if trainer.training and not trainer.is_last_batch:
            checkpoint["avsync_epoch_running"] = {"metrics": _metric_states(pl_module)}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        running = checkpoint.get("avsync_epoch_running")
        if running:
            _load_metric_states(pl_module, running["metrics"])

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seed = state_dict.get("seed", self.seed)


def _torchmetrics(module: torch.nn.Module) -> dict[str, Any]:
    from torchmetrics import Metric

    return {name: m for name, m in module.named_modules() if isinstance(m, Metric)}


def _metric_states(module: torch.nn.Module) -> dict[str, dict]:
    """Every torchmetrics state of ``module``, by metric name (``Metric.metric_state``), on the CPU."""
    out = {}
    for name, metric in _torchmetrics(module).items():
        states = metric.metric_state
        out[name] = {k: [t.detach().cpu().clone() for t in v] if isinstance(v, list) else v.detach().cpu().clone()
                     for k, v in states.items()}
    return out


def _load_metric_states(module: torch.nn.Module, saved: dict[str, dict]) -> None:
    """Set the saved states on the module's metrics of the same name (the epoch means of logged
    losses are created first: they exist only once a loss was logged)."""
    from avsync.training.epoch_means import ensure_epoch_means

    ensure_epoch_means(module, saved)
    metrics = _torchmetrics(module)
    for name, states in saved.items():
        metric = metrics.get(name)
        if metric is None:
            continue
        if "states" in states and "update_count" in states:  # a checkpoint written before this layout
            states = states["states"]
        device = metric.device
        for key, value in states.items():
            if key in metric.metric_state:
                setattr(metric, key, [t.to(device) for t in value] if isinstance(value, list) else value.to(device))

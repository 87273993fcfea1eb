"""The one place every DataLoader of the data layer is built (:func:`build_loader`).

* Training in one process: a :class:`~avsync.training.resume.ResumableTrainLoader` over an
  injected batching policy (shuffled batches, or the curriculum's same-clip batches) — its order is
  a pure function of (seed, epoch), it re-seeds the RNGs per batch and Lightning checkpoints its
  ``state_dict``, so a run killed at any step resumes exactly; a worker that dies is survived.
* Training under DDP: a :class:`~avsync.training.worker_deaths.SurvivingDataLoader` that Lightning
  gives its DistributedSampler (shuffled batches), or over the policy's batches.
* Evaluation: in order; under DDP every rank gets a disjoint share with no padding
  (``UnrepeatedDistributedSampler``), so each item is scored exactly once per epoch — Lightning's
  default sampler would repeat items to even out the ranks. A worker that dies is survived.

:class:`SplitLoaders` gives a data module its train / val / test loaders from one
``split_loader(split, train)``; :class:`WrappedLoaders` is that for modules that wrap a clip module
(feature caches, synchronizability) and read with its batch size and worker settings.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from avsync.training.resume import BatchingPolicy, EpochOrder, ResumableBatches, ResumableTrainLoader, ShuffledBatches
from avsync.training.worker_deaths import SurvivingDataLoader

__all__ = ["build_loader", "SplitLoaders", "WrappedLoaders"]


def build_loader(dataset: Dataset, *, train: bool, batch_size: int, num_workers: int = 0,
                 batching: BatchingPolicy | None = None, collate: Callable[[list], Any] | None = None,
                 pin_memory: bool | None = False, persistent_workers: bool = False, trainer=None,
                 seed: int | None = None) -> DataLoader:
    """The loader of one split (see the module docstring).

    ``batching``: the training batches (default: shuffled ``batch_size`` batches, the last short one
    dropped). ``pin_memory`` None pins when CUDA is available. ``trainer`` tells the world size and
    rank (None: one process). ``seed`` of the training order: default ``torch.initial_seed()`` (the
    config's ``seed_everything``)."""
    world = int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1
    common = dict(num_workers=int(num_workers),
                  pin_memory=torch.cuda.is_available() if pin_memory is None else bool(pin_memory),
                  persistent_workers=bool(persistent_workers) and int(num_workers) > 0, collate_fn=collate)
    if train:
        batching = batching if batching is not None else ShuffledBatches(batch_size, drop_last=True)
        if world == 1:
            return ResumableTrainLoader(dataset, batching=batching, seed=seed, **common)
        if isinstance(batching, ShuffledBatches):  # Lightning gives it its DistributedSampler
            order = dict(batch_size=batching.batch_size, shuffle=True, drop_last=batching.drop_last)
        else:
            epochs = EpochOrder(len(dataset), int(torch.initial_seed() if seed is None else seed))
            order = dict(batch_sampler=ResumableBatches(epochs, batching))
    else:
        sampler = None
        if world > 1:
            sampler = UnrepeatedDistributedSampler(dataset, num_replicas=world, rank=trainer.global_rank,
                                                   shuffle=False)
        order = dict(batch_size=batch_size, shuffle=False, sampler=sampler, drop_last=False)
    return SurvivingDataLoader(dataset, **order, **common)


class SplitLoaders:
    """train / val / test loaders from one ``split_loader(split, train)``. Put it before
    ``LightningDataModule`` in the bases."""

    def split_loader(self, split: str, train: bool) -> DataLoader:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self.split_loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self.split_loader("valid", False)

    def test_dataloader(self) -> DataLoader:
        return self.split_loader("test", False)


class WrappedLoaders(SplitLoaders):
    """The loaders of a data module that wraps another (feature caches, synchronizability): its own
    ``self.datasets`` per split, read with the wrapped clip module's batch size and worker settings
    (``loader_settings()``). Put it before ``LightningDataModule`` in the bases."""

    datasets: dict

    def loader_settings(self):
        raise NotImplementedError

    def split_loader(self, split: str, train: bool) -> DataLoader:
        src = self.loader_settings()
        return build_loader(self.datasets[split], train=train, batch_size=src.batch_size,
                            num_workers=src.num_workers, persistent_workers=src.persistent_workers,
                            trainer=self.trainer)

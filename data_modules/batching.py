"""Batching policies and collates that a data module injects into its training loader.

A batching policy groups one epoch's items into batches as a pure function of (items, seed,
epoch) (:class:`avsync.training.resume.BatchingPolicy`), so the one loader path
(:func:`.loaders.build_loader`) can resume it mid-epoch: :class:`~avsync.training.resume.ShuffledBatches`
(the default) and :class:`SameClipBatches` (AVST's stage-2 curriculum). A collate turns a list of
items into a batch: :class:`RandomDurationCollate` (variable-length training) and, for whole-clip
evaluation, :func:`.whole_clip.whole_clip_collate`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from avsync.training.resume import EpochOrder, ShuffledBatches, derived_seed

__all__ = ["SameClipBatches", "ShuffledBatches", "RandomDurationCollate"]


class SameClipBatches:
    """Stage-2 curriculum batches: ``batch_size`` copies of one clip index, clips in a fresh random
    order per epoch drawn from (seed, epoch); ``num_batches`` (default: one per clip) batches an epoch.

    A training :class:`~avsync.data_modules.clip_dataset.AVClipDataset` draws a new crop plan on
    every fetch, so the copies become ``batch_size`` windows of the same video at independent random
    times. Two draws may land on the same start; the loss must then not count that pair as a
    negative (:func:`avsync.papers.avst.module.info_nce` masks pairs with equal key and start).
    """

    def __init__(self, batch_size: int, num_batches: int | None = None):
        if batch_size < 2:
            raise ValueError(f"InfoNCE needs at least 2 pairs per batch, got batch_size={batch_size}")
        self.batch_size = int(batch_size)
        self.fixed_count = None if num_batches is None else int(num_batches)

    def num_batches(self, num_items: int) -> int:
        return self.fixed_count if self.fixed_count is not None else int(num_items)

    def batches(self, order: EpochOrder) -> list[list[int]]:
        n = len(order)
        if n < 1:
            raise ValueError("same-clip batches need at least one clip")
        generator = torch.Generator().manual_seed(derived_seed("same_clip", order.seed, order.epoch))
        out: list[list[int]] = []
        while len(out) < self.num_batches(n):
            for clip in torch.randperm(n, generator=generator).tolist():
                if len(out) == self.num_batches(n):
                    break
                out.append([clip] * self.batch_size)
        return out


class RandomDurationCollate:
    """Cuts a whole training batch to one randomly drawn length (variable-length training).

    Items are decoded at the spec's (maximal) length; both streams are cut from the window
    starts, so the offset between them — and the label — is unchanged. The draw uses torch's
    RNG, which the resumable loader re-seeds per batch (workers: Lightning seeds them), so runs
    are reproducible and resume exactly.
    """

    def __init__(self, durations: Sequence[float], fps: float, sample_rate: int):
        self.durations = tuple(float(d) for d in durations)
        self.fps, self.sample_rate = fps, sample_rate

    def __call__(self, items: list[dict]) -> dict:
        batch = torch.utils.data.default_collate(items)
        seconds = self.durations[int(torch.randint(len(self.durations), ()))]
        batch["video"] = batch["video"][:, : int(round(seconds * self.fps))]
        batch["audio"] = batch["audio"][:, : int(round(seconds * self.sample_rate))]
        return batch

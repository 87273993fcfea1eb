"""Synchronizability examples (Synchformer §4.2): half of them with streams that do not overlap.

Wraps any data module (``data``: a decoding one, or a
:class:`~avsync.data_modules.synchformer_features.SynchformerFeatureDataModule` to read the feature
cache as stage II does). Each item is, with probability ``prob_unsynchronisable`` (the paper's 0.5),
an example whose offset equals the input length L — audio window [v + L, v + 2L) or [v − L, v) next
to the video window [v, v + L): the streams share no moment, they cannot be synchronised — and
otherwise the wrapped module's own example at a grid offset. The item gets ``sync_target`` (1.0
synchronisable, 0.0 not); a non-overlapping one has ``target`` = -100 (no offset class).

The non-overlapping plans come from a :class:`~avsync.offsets.WindowSampler` with the two
candidate offsets ±L over the whole clip (a clip shorter than 2L only yields synchronisable
examples), so the offset arithmetic stays in :mod:`avsync.offsets`. Training draws are new every
fetch; evaluation is fixed: exactly round(prob x items) of them, chosen once from the seed, are
non-overlapping, with plans that depend on (seed, key) only.
"""
from __future__ import annotations

import logging

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from avsync.offsets import FixedOffsets, WindowSampler, stable_hash

from .base import AVSyncDataModule
from .clip_dataset import AVClipDataset
from .loaders import WrappedLoaders
from .synchformer_features import CachedFeatureDataset, SynchformerFeatureDataModule

__all__ = ["NO_OFFSET_CLASS", "NonOverlappingClipDataset", "SynchronizabilityDataset", "SynchronizabilityDataModule",
           "non_overlapping_sampler"]

log = logging.getLogger(__name__)

NO_OFFSET_CLASS = -100  # cross_entropy's ignore_index: a non-overlapping pair has no offset class


def non_overlapping_sampler(duration_sec: float, fps: float) -> WindowSampler:
    """Plans whose offset is ± the input length: the audio window starts where the video one ends
    (or ends where it starts). Whole clip usable, video starts on frames, no jitter."""
    return WindowSampler((duration_sec, -duration_sec), (None, None), duration_sec, None, 0.0, 1.0 / fps)


class NonOverlappingClipDataset(AVClipDataset):
    """An :class:`AVClipDataset` whose plans are non-overlapping ones (no offset class)."""

    def target_of(self, plan) -> int:
        return NO_OFFSET_CLASS

    @classmethod
    def like(cls, dataset: AVClipDataset, sampler: WindowSampler, seed: int) -> "NonOverlappingClipDataset | None":
        """The same clips and options as ``dataset`` (only those long enough for a 2L source; None if
        none is), drawing from ``sampler``; evaluation plans fixed by (seed, key)."""
        records = [r for r in dataset.records if sampler.feasible(r.duration_sec)]
        if not records:
            return None
        fixed = None
        if not dataset.train:
            fixed = FixedOffsets.from_seed({r.key: r.duration_sec for r in records}, sampler, seed)
        return cls(records, dataset.spec, dataset.train, sampler, fixed=fixed, plans_per_clip=dataset.plans_per_clip,
                   report=dataset.report, max_replacements=dataset.max_replacements,
                   stage=f"{dataset.stage}:non_overlapping", reject_silent=dataset.reject_silent,
                   cache_decoded=dataset.cache_decoded, reject_still=dataset.reject_still,
                   face_box_scale=dataset.face_box_scale)


class SynchronizabilityDataset(Dataset):
    """Item i: ``synced[i]`` with ``sync_target`` 1, or a non-overlapping example of the same clip
    with ``sync_target`` 0 (probability ``prob``; only for clips that ``unsynced`` holds)."""

    def __init__(self, synced: Dataset, unsynced: Dataset | None, clips: AVClipDataset,
                 unsynced_clips: AVClipDataset | None, prob: float, seed: int, train: bool):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob_unsynchronisable must be in [0, 1], got {prob}")
        self.synced, self.unsynced, self.prob, self.seed, self.train = synced, unsynced, float(prob), int(seed), train
        # data set item -> item of the non-overlapping data set (same clip, same plan number), or -1
        where = {r.key: i for i, r in enumerate(unsynced_clips.records)} if unsynced_clips is not None else {}
        per_clip = clips.plans_per_clip
        self.partner = [where.get(clips.record_of(i).key, -1) * per_clip + i % per_clip
                        if clips.record_of(i).key in where else -1 for i in range(len(clips))]
        # evaluation: exactly round(prob * eligible) items, chosen once by (seed): a fixed, balanced set
        eligible = np.flatnonzero(np.asarray(self.partner) >= 0)
        order = np.random.default_rng([self.seed, stable_hash("synchronizability")]).permutation(eligible)
        self.fixed_unsynchronisable = frozenset(order[: int(round(self.prob * len(eligible)))].tolist())

    def __len__(self) -> int:
        return len(self.synced)

    def is_unsynchronisable(self, index: int) -> bool:
        """The coin of item ``index``: fresh per fetch in training; in evaluation a fixed choice of
        round(prob x eligible items) made once from ``seed``."""
        if self.partner[index] < 0:
            return False
        if self.train:
            return bool(torch.rand(()) < self.prob)
        return index in self.fixed_unsynchronisable

    def __getitem__(self, index: int) -> dict:
        if self.is_unsynchronisable(index):
            item = dict(self.unsynced[self.partner[index]])
            item["sync_target"] = torch.tensor(0.0)
        else:
            item = dict(self.synced[index])
            item["sync_target"] = torch.tensor(1.0)
        return item


class SynchronizabilityDataModule(WrappedLoaders, L.LightningDataModule):
    """Synchronizability examples over the clips, samplers and fixed plans of ``data``.

    Args:
        data: a data module (decoding) or a ``SynchformerFeatureDataModule`` (feature cache).
        prob_unsynchronisable: share of non-overlapping examples (the paper's 0.5).
    """

    def __init__(self, data: AVSyncDataModule | SynchformerFeatureDataModule, prob_unsynchronisable: float = 0.5):
        super().__init__()
        self.data = data
        self.prob = float(prob_unsynchronisable)
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"prob_unsynchronisable must be in [0, 1], got {self.prob}")
        self.datasets: dict[str, SynchronizabilityDataset] = {}

    @property
    def clips_module(self) -> AVSyncDataModule:
        return self.data.data if isinstance(self.data, SynchformerFeatureDataModule) else self.data

    def prepare_data(self) -> None:
        self.clips_module.prepare_data()
        self.data.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        self.data.trainer = self.trainer
        self.clips_module.trainer = self.trainer
        self.data.setup(stage)
        clips = self.clips_module
        sampler = non_overlapping_sampler(clips.spec.duration_sec, clips.spec.fps)
        for split, synced in self.data.datasets.items():
            if split in self.datasets:
                continue
            base = synced.base if isinstance(synced, CachedFeatureDataset) else synced
            unsynced_clips = NonOverlappingClipDataset.like(base, sampler, clips.seed)
            usable = len(unsynced_clips.records) if unsynced_clips is not None else 0
            if usable < len(base.records):
                log.warning("%s: %d of %d clips are shorter than %.2f s (twice the input): only synchronisable "
                            "examples from them", split, len(base.records) - usable, len(base.records),
                            2 * clips.spec.duration_sec)
            unsynced = unsynced_clips
            if unsynced_clips is not None and isinstance(synced, CachedFeatureDataset):
                unsynced = CachedFeatureDataset(unsynced_clips, synced.store, synced.split, synced.num_segments,
                                                synced.step_sec)
            self.datasets[split] = SynchronizabilityDataset(synced, unsynced, base, unsynced_clips, self.prob,
                                                            clips.seed, base.train)

    def loader_settings(self) -> AVSyncDataModule:
        return self.clips_module

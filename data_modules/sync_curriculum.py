"""AVST's two-stage training curriculum as a data option (AVST §4.3), for contrastive pair scorers.

InfoNCE over a k x k score matrix needs a batch of k **in-sync** pairs (v_i, a_i): the diagonal are
the positives, every (v_i, a_j) with j != i a negative. Where the negatives come from is the
curriculum:

* stage 1 — the k clips come from k different videos: easy (correspondence) negatives;
* stage 2 — all k clips come from **one** video at different times, so a_j is v_i's own
  soundtrack at another offset: hard (synchronisation) negatives. :class:`SameVideoBatchSampler`
  builds these batches; every item of a batch is a fresh in-sync draw from the same clip.

Evaluation keeps the score-search protocol's long clips with fixed plans: ``eval_offsets``
chooses in-sync clips (as the paper evaluates), random artificial offsets in ±max_frame_shift
(DiVAS' protocol), or ``both`` — every clip once at offset 0 and once at its seeded random
offset, so one run reports both (the model splits them by true offset).

:class:`SyncCurriculum` is a mixin over :class:`~avsync.data_modules.base.AVSyncDataModule`;
:class:`ToySyncCurriculumDataModule` puts it on the embedded toy set, the LRS3 and VGGSound
variants on the real data sets (LRS2/LRS3 speech, VGG-Sound Sync general sounds).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Sampler, default_collate

from avsync.offsets import FixedOffsets, RandomFrameShiftSampler
from avsync.training.worker_deaths import SurvivingDataLoader

from .base import AVClipDataset, ClipRecord, RandomDurationCollate
from .lrs2 import LRS2DataModule
from .lrs3 import LRS3DataModule
from .toy import ToyAVDataModule
from .vggsound import VGGSoundDataModule, VGGSoundSyncDataModule

__all__ = ["SameVideoBatchSampler", "SyncCurriculum", "ToySyncCurriculumDataModule",
           "LRS3SyncCurriculumDataModule", "LRS2SyncCurriculumDataModule", "VGGSoundSyncCurriculumDataModule",
           "VGGSoundSyncClassesCurriculumDataModule"]

EVAL_OFFSETS = ("in_sync", "random", "both")


class SameVideoBatchSampler(Sampler[list[int]]):
    """Stage-2 batches: ``batch_size`` copies of one clip index, clips in a fresh random order per epoch.

    A training :class:`~avsync.data_modules.base.AVClipDataset` draws a new crop plan on every
    fetch, so the copies become ``batch_size`` windows of the same video at independent random
    times. Two draws may land on the same start; the loss must then not count that pair as a
    negative (:func:`avsync.papers.avst.module.info_nce` masks pairs with equal key and start). The order
    comes from one ``torch.randint`` draw, which Lightning seeds, so runs are reproducible.
    """

    def __init__(self, num_clips: int, batch_size: int, num_batches: int | None = None):
        if num_clips < 1:
            raise ValueError("a same-video batch sampler needs at least one clip")
        if batch_size < 2:
            raise ValueError(f"InfoNCE needs at least 2 pairs per batch, got batch_size={batch_size}")
        self.num_clips, self.batch_size = int(num_clips), int(batch_size)
        self.num_batches = int(num_batches) if num_batches is not None else self.num_clips

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ()).item()))
        emitted = 0
        while emitted < self.num_batches:
            for clip in torch.randperm(self.num_clips, generator=g).tolist():
                if emitted == self.num_batches:
                    return
                yield [clip] * self.batch_size
                emitted += 1


class SyncCurriculum:
    """Mixin for an :class:`AVSyncDataModule`: in-sync training pairs, curriculum stage, eval offsets.

    The concrete class calls :meth:`init_curriculum` after the data module's own ``__init__``.
    """

    curriculum_stage: int
    eval_offsets: str

    def init_curriculum(self, curriculum_stage: int, eval_offsets: str) -> None:
        if curriculum_stage not in (1, 2):
            raise ValueError(f"curriculum_stage is 1 (pairs from different videos) or 2 (one video per batch), "
                             f"got {curriculum_stage}")
        if eval_offsets not in EVAL_OFFSETS:
            raise ValueError(f"eval_offsets must be one of {EVAL_OFFSETS}, got {eval_offsets!r}")
        if eval_offsets == "both" and self.eval_plans_per_clip != 1:
            raise ValueError("eval_offsets='both' evaluates each clip at two plans (in sync, random offset); "
                             f"it cannot be combined with eval_plans_per_clip={self.eval_plans_per_clip}")
        self.curriculum_stage, self.eval_offsets = int(curriculum_stage), eval_offsets
        if eval_offsets == "both":
            self.eval_plans_per_clip = 2

    def whole_clip_mode(self) -> str:
        """Whole-clip evaluation follows ``eval_offsets`` (in sync, a random offset, or both)."""
        return self.eval_offsets

    def in_sync_sampler(self) -> RandomFrameShiftSampler:
        """Draws of offset 0 only: the in-sync pairs contrastive training and in-sync evaluation need."""
        return RandomFrameShiftSampler(max_shift=0, fps=self.spec.fps, window_frames=self.spec.num_frames,
                                       max_source_sec=self.max_source_sec)

    def build_dataset(self, split: str) -> AVClipDataset:
        if split != "train":
            return super().build_dataset(split)
        records = self.filter_records(split, self.list_records(split))
        if not records:
            raise RuntimeError(f"{type(self).__name__}: no usable training clips")
        return AVClipDataset(records, self.spec, True, self.in_sync_sampler(), report=self.report,
                             stage=split, cache_decoded=self.cache_decoded)

    def fixed_offsets(self, split: str, records: Sequence[ClipRecord]) -> FixedOffsets:
        if self.eval_offsets == "random":
            return super().fixed_offsets(split, records)
        durations = {r.key: r.duration_sec for r in records}
        in_sync = FixedOffsets.from_seed(durations, self.in_sync_sampler(), self.seed)
        if self.eval_offsets == "in_sync":
            return in_sync
        shifted = super().fixed_offsets(split, records)
        plans = {k: (in_sync[k], shifted.plans_for(k)[0]) for k in durations if k in shifted}
        return FixedOffsets(plans, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        if self.curriculum_stage == 1:
            return super().train_dataloader()
        dataset = self.datasets.get("train")
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: split 'train' is not set up; call setup() first")
        collate = default_collate
        if self.spec.train_durations:
            collate = RandomDurationCollate(self.spec.train_durations, self.spec.fps, self.spec.sample_rate)
        return SurvivingDataLoader(  # training survives a worker that dies
            dataset, batch_sampler=SameVideoBatchSampler(len(dataset), self.batch_size),
            num_workers=self.num_workers, pin_memory=self.pin_memory, collate_fn=collate,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )


class ToySyncCurriculumDataModule(SyncCurriculum, ToyAVDataModule):
    """The embedded toy set with AVST's curriculum.

    Args:
        curriculum_stage: 1 = in-sync pairs from different clips; 2 = every batch from one clip.
        eval_offsets: ``in_sync``, ``random`` (±max_frame_shift) or ``both`` (each clip twice).
        **kwargs: :class:`~avsync.data_modules.toy.ToyAVDataModule`'s arguments.
    """

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_curriculum(curriculum_stage, eval_offsets)


class LRS3SyncCurriculumDataModule(SyncCurriculum, LRS3DataModule):
    """LRS3 with AVST's curriculum (``curriculum_stage``, ``eval_offsets`` as the toy variant)."""

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_curriculum(curriculum_stage, eval_offsets)


class VGGSoundSyncCurriculumDataModule(SyncCurriculum, VGGSoundDataModule):
    """VGGSound with AVST's curriculum (``curriculum_stage``, ``eval_offsets`` as the toy variant)."""

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_curriculum(curriculum_stage, eval_offsets)


class LRS2SyncCurriculumDataModule(SyncCurriculum, LRS2DataModule):
    """LRS2 (AVST Tables 2-4) with AVST's curriculum (``curriculum_stage``, ``eval_offsets`` as the toy variant)."""

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_curriculum(curriculum_stage, eval_offsets)


class VGGSoundSyncClassesCurriculumDataModule(SyncCurriculum, VGGSoundSyncDataModule):
    """VGG-Sound Sync (AVST's 160 classes, Table 5) with AVST's curriculum (arguments as the toy variant)."""

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_curriculum(curriculum_stage, eval_offsets)

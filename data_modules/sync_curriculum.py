"""AVST's two-stage training curriculum as a data option (AVST §4.3), for contrastive pair scorers.

InfoNCE over a k x k score matrix needs a batch of k **in-sync** pairs (v_i, a_i): the diagonal are
the positives, every (v_i, a_j) with j != i a negative. Where the negatives come from is the
curriculum:

* stage 1 — the k clips come from k different videos: easy (correspondence) negatives;
* stage 2 — all k clips come from **one** video at different times, so a_j is v_i's own
  soundtrack at another offset: hard (synchronisation) negatives. :class:`~.batching.SameClipBatches`
  builds these batches; every item of a batch is a fresh in-sync draw from the same clip.

Evaluation keeps the score-search protocol's long clips with fixed plans: ``eval_offsets``
chooses in-sync clips (as the paper evaluates), random artificial offsets in ±max_frame_shift
(DiVAS' protocol), or ``both`` — every clip once at offset 0 and once at its seeded random
offset, so one run reports both (the model splits them by true offset).

:class:`SyncCurriculum` is a part a :class:`~avsync.data_modules.base.AVSyncDataModule` takes
(``curriculum``): it supplies the in-sync training sampler, the batching policy and the evaluation
plans. :class:`ToySyncCurriculumDataModule` puts it on the embedded toy set, the LRS2, LRS3 and
VGGSound variants on the real data sets (LRS2/LRS3 speech, VGG-Sound Sync general sounds): each
is the data set's module with the part attached, nothing overridden.
"""
from __future__ import annotations

from typing import Sequence

from avsync.offsets import FixedOffsets, RandomFrameShiftSampler
from avsync.training.resume import BatchingPolicy, ShuffledBatches

from .batching import SameClipBatches
from .clip_dataset import AVClipDataset
from .lrs2 import LRS2DataModule
from .lrs3 import LRS3DataModule
from .records import ClipRecord
from .toy import ToyAVDataModule
from .vggsound import VGGSoundDataModule, VGGSoundSyncDataModule

__all__ = ["SyncCurriculum", "attach_curriculum", "ToySyncCurriculumDataModule", "LRS3SyncCurriculumDataModule",
           "LRS2SyncCurriculumDataModule", "VGGSoundSyncCurriculumDataModule",
           "VGGSoundSyncClassesCurriculumDataModule"]

EVAL_OFFSETS = ("in_sync", "random", "both")


class SyncCurriculum:
    """AVST's curriculum as a part of a data module: in-sync training pairs, same-clip batches in
    stage 2, and the evaluation offsets (``in_sync``, ``random`` or ``both``).

    ``eval_plans_per_clip`` is the data module's; ``both`` needs it to be 1 and makes it 2."""

    def __init__(self, curriculum_stage: int, eval_offsets: str, eval_plans_per_clip: int = 1):
        if curriculum_stage not in (1, 2):
            raise ValueError(f"curriculum_stage is 1 (pairs from different videos) or 2 (one video per batch), "
                             f"got {curriculum_stage}")
        if eval_offsets not in EVAL_OFFSETS:
            raise ValueError(f"eval_offsets must be one of {EVAL_OFFSETS}, got {eval_offsets!r}")
        if eval_offsets == "both" and eval_plans_per_clip != 1:
            raise ValueError("eval_offsets='both' evaluates each clip at two plans (in sync, random offset); "
                             f"it cannot be combined with eval_plans_per_clip={eval_plans_per_clip}")
        self.stage, self.eval_offsets = int(curriculum_stage), eval_offsets

    @property
    def plans_per_clip(self) -> int | None:
        """Evaluation plans per clip the curriculum needs (``both``: 2), None: the module's own."""
        return 2 if self.eval_offsets == "both" else None

    @staticmethod
    def in_sync_sampler(dm) -> RandomFrameShiftSampler:
        """Draws of offset 0 only: the in-sync pairs contrastive training and in-sync evaluation need."""
        return RandomFrameShiftSampler(max_shift=0, fps=dm.spec.fps, window_frames=dm.spec.num_frames,
                                       max_source_sec=dm.max_source_sec)

    def batching(self, batch_size: int) -> BatchingPolicy:
        """Stage 1: shuffled batches (pairs from different videos); stage 2: one clip per batch."""
        return ShuffledBatches(batch_size, drop_last=True) if self.stage == 1 else SameClipBatches(batch_size)

    def train_dataset(self, dm, records: Sequence[ClipRecord]) -> AVClipDataset:
        """In-sync draws of the training clips (crop and flip as the spec says; no recipe
        augmentations or silence checks, as AVST's training pairs have always been drawn here)."""
        return AVClipDataset(records, dm.spec, True, self.in_sync_sampler(dm), report=dm.report, stage="train",
                             cache_decoded=dm.cache_decoded)

    def fixed_offsets(self, dm, split: str, records: Sequence[ClipRecord]) -> FixedOffsets:
        """Evaluation plans: the module's random offsets, in-sync plans, or both per clip."""
        if self.eval_offsets == "random":
            return dm.offset_plans(split, records)
        durations = {r.key: r.duration_sec for r in records}
        in_sync = FixedOffsets.from_seed(durations, self.in_sync_sampler(dm), dm.seed)
        if self.eval_offsets == "in_sync":
            return in_sync
        shifted = dm.offset_plans(split, records)
        plans = {k: (in_sync[k], shifted.plans_for(k)[0]) for k in durations if k in shifted}
        return FixedOffsets(plans, seed=dm.seed)


def attach_curriculum(dm, curriculum_stage: int, eval_offsets: str) -> None:
    """Give data module ``dm`` a :class:`SyncCurriculum` (and its ``curriculum_stage`` /
    ``eval_offsets`` as attributes, as the config names them)."""
    dm.curriculum = SyncCurriculum(curriculum_stage, eval_offsets, dm.eval_plans_per_clip)
    dm.curriculum_stage, dm.eval_offsets = dm.curriculum.stage, dm.curriculum.eval_offsets
    if dm.curriculum.plans_per_clip is not None:
        dm.eval_plans_per_clip = dm.curriculum.plans_per_clip


class ToySyncCurriculumDataModule(ToyAVDataModule):
    """The embedded toy set with AVST's curriculum.

    Args:
        curriculum_stage: 1 = in-sync pairs from different clips; 2 = every batch from one clip.
        eval_offsets: ``in_sync``, ``random`` (±max_frame_shift) or ``both`` (each clip twice).
        **kwargs: :class:`~avsync.data_modules.toy.ToyAVDataModule`'s arguments.
    """

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        attach_curriculum(self, curriculum_stage, eval_offsets)


class LRS3SyncCurriculumDataModule(LRS3DataModule):
    """LRS3 with AVST's curriculum (``curriculum_stage``, ``eval_offsets`` as the toy variant)."""

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        attach_curriculum(self, curriculum_stage, eval_offsets)


class VGGSoundSyncCurriculumDataModule(VGGSoundDataModule):
    """VGGSound with AVST's curriculum (``curriculum_stage``, ``eval_offsets`` as the toy variant)."""

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        attach_curriculum(self, curriculum_stage, eval_offsets)


class LRS2SyncCurriculumDataModule(LRS2DataModule):
    """LRS2 (AVST Tables 2-4) with AVST's curriculum (``curriculum_stage``, ``eval_offsets`` as the toy variant)."""

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        attach_curriculum(self, curriculum_stage, eval_offsets)


class VGGSoundSyncClassesCurriculumDataModule(VGGSoundSyncDataModule):
    """VGG-Sound Sync (AVST's 160 classes, Table 5) with AVST's curriculum (arguments as the toy variant)."""

    def __init__(self, curriculum_stage: int = 1, eval_offsets: str = "both", **kwargs) -> None:
        super().__init__(**kwargs)
        attach_curriculum(self, curriculum_stage, eval_offsets)

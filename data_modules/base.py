"""The base data module (:class:`AVSyncDataModule`): lists a dataset's clips and serves its splits.

Models declare what they consume (:class:`avsync.inputs.InputSpec`); a data module delivers
exactly that from real files (:class:`~.clip_dataset.AVClipDataset`, whose example layout is
documented there), with the offset label in the one convention of docs/conventions.md.

A subclass (one per dataset) only lists its clips (:meth:`AVSyncDataModule.list_records`) and, if
it needs to, prepares them (:meth:`~lightning.LightningDataModule.prepare_data`). The rest is
shared and composed from parts with one purpose each:

* :mod:`.records` — clip records and skip lists;
* :mod:`.bad_media` — the bad-media report;
* :mod:`.clip_dataset` — decoding, cropping and labelling one example;
* :mod:`.batching` / :mod:`.loaders` — batching policies, collates and the one loader builder.

What varies between data modules is injected, not subclassed: the training clip sampler
(:meth:`AVSyncDataModule.training_sampler`), a curriculum (``curriculum``: AVST's in-sync pairs,
same-clip batches and evaluation offsets, :class:`~.sync_curriculum.SyncCurriculum`), the splits
a rate bucket serves (``served_splits``, set by :class:`~.multirate.MultiRateDataModule`) and the
collate (:meth:`AVSyncDataModule.collate_for`).
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import lightning as L
from torch.utils.data import DataLoader

from avsync.inputs import InputSpec
from avsync.media import MediaError, probe
from avsync.offsets import (
    FixedOffsets,
    PairShiftSampler,
    RandomFrameShiftSampler,
    RandomOffsetSampler,
    WindowSampler,
    get_grid,
)
from avsync.training.resume import BatchingPolicy, ShuffledBatches

from .augment import Augmentations
from .bad_media import REPORT_NAME, BadMediaEntry, BadMediaReport
from .batching import RandomDurationCollate
from .clip_dataset import AVClipDataset
from .listing import SPLITS, MissingLog, ProbeCache, stage_of
from .loaders import SplitLoaders, WrappedLoaders, build_loader
from .records import ClipRecord, is_skipped, read_skip_list

# ClipRecord ... WrappedLoaders: their homes are the modules above; named here too because
# configs, tests and older code import them from ``avsync.data_modules.base``
__all__ = ["AVSyncDataModule", "ClipRecord", "AVClipDataset", "BadMediaEntry", "BadMediaReport",
           "RandomDurationCollate", "SplitLoaders", "WrappedLoaders", "read_skip_list"]

log = logging.getLogger(__name__)

_STAGE_SPLITS = {
    "fit": ("train", "valid"),
    "validate": ("valid",),
    "test": ("test",),
    "predict": ("test",),
    None: SPLITS,
}


class AVSyncDataModule(SplitLoaders, L.LightningDataModule):
    """Base of every dataset's data module: splits ``train`` / ``valid`` / ``test``.

    The input spec comes from ``input_spec`` or, when None, from the model of the attached
    trainer (``trainer.lightning_module.input_spec``): the model declares what it consumes.
    Training draws a new crop plan per fetch (SparseSync: a ``duration_sec`` crop inside the
    first ``max_source_sec`` seconds, audio jitter U[−``audio_jitter_sec``, +]); validation and
    test use fixed plans, from ``fixed_offsets_csv[split]`` (the official
    ``path,offset_sec,vstart_sec`` files) or drawn once from ``seed``.
    ``eval_plans_per_clip`` > 1 evaluates each clip at that many fixed plans (Synchformer: 2 per
    LRS3 test clip, 25 per VGGSound-Sparse clip).

    Bad media: ``skip_list`` (one file or several, e.g. the authors' ``filtered_examples_*``)
    leaves clips out; ``reject_silent`` / ``reject_still`` also treat silent or constant audio and
    still video as bad; every skipped clip is listed in ``<report_dir or log dir>/bad_media.tsv``.
    ``face_box_scale`` sizes the face crops cut from LRS3 boxes (1 = LRS3's own strict crop).
    ``augment`` (:class:`~avsync.data_modules.augment.Augmentations`) adds the recipe's training
    augmentations (SparseSync's VGGSound-Sparse set, Synchformer's stage I); None: crop and flip only.
    ``in_sync_jitter_sec``: audio jitter U[−j, +j] s for models trained on in-sync clips only
    (``max_frame_shift`` 0: Synchformer's stage I jitters by 0.05 s); frame-shift targets never jitter.
    ``probe_cache_dir`` / ``probe_workers``: where and how durations are probed once and cached.
    ``pin_memory`` None pins batches when CUDA is available.
    ``eval_whole_clips``: validation and test deliver every clip entire (:mod:`.whole_clip`: the
    clip's whole length at a seeded offset in ±max_frame_shift, ``video`` / ``audio`` batched as
    lists) for score-search models that score every window of a clip; clips shorter than
    ``whole_clip_min_sec`` (one window) plus the largest offset are left out and reported.
    ``train_pair_negatives``: training items are single-window pairs drawn anywhere in the clip,
    out of sync with this probability at any shift the clip allows (DiVAS §3.1,
    :class:`~avsync.offsets.PairShiftSampler`); None: the usual crops of ``spec.duration_sec``.

    Subclasses implement :meth:`list_records` (usually through :meth:`records_under`, which
    counts the clips a partial copy lacks and probes durations through the cache); the default
    ``prepare_data`` lists the splits of the running stage once, filling that cache.
    """

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 8,
        num_workers: int = 2,
        seed: int = 1337,
        max_source_sec: float | None = 9.0,
        audio_jitter_sec: float = 0.05,
        fixed_offsets_csv: dict[str, str] | None = None,
        eval_plans_per_clip: int = 1,
        input_spec: InputSpec | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        skip_list: str | list[str] | None = None,
        report_dir: str | None = None,
        cache_decoded: bool = False,
        probe_cache_dir: str | None = None,
        probe_workers: int = 4,
        reject_silent: bool = False,
        reject_still: bool = False,
        face_box_scale: float = 1.0,
        augment: Augmentations | None = None,
        in_sync_jitter_sec: float = 0.0,
        eval_whole_clips: bool = False,
        whole_clip_min_sec: float = 0.2,
        train_pair_negatives: float | None = None,
    ) -> None:
        super().__init__()
        self.root = root
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.max_source_sec = max_source_sec
        self.audio_jitter_sec = float(audio_jitter_sec)
        unknown = set(fixed_offsets_csv or {}) - set(SPLITS)
        if unknown:
            raise ValueError(f"fixed_offsets_csv has unknown split(s) {sorted(unknown)}; use {SPLITS}")
        self.fixed_offsets_csv = dict(fixed_offsets_csv or {})
        self.eval_plans_per_clip = int(eval_plans_per_clip)
        self.input_spec = input_spec
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.skip_list = skip_list
        self.report_dir = report_dir
        self.cache_decoded = cache_decoded
        self.probe_cache_dir = probe_cache_dir
        self.probe_workers = int(probe_workers)
        self.reject_silent = bool(reject_silent)
        self.reject_still = bool(reject_still)
        self.face_box_scale = float(face_box_scale)
        self.augment = augment
        self.in_sync_jitter_sec = float(in_sync_jitter_sec)
        self.eval_whole_clips = bool(eval_whole_clips)
        self.whole_clip_min_sec = float(whole_clip_min_sec)
        self.train_pair_negatives = None if train_pair_negatives is None else float(train_pair_negatives)
        self._missing = MissingLog()
        self._probe_caches: dict[Path, ProbeCache] = {}

        self.spec: InputSpec | None = None
        self.sampler: WindowSampler | None = None
        self.report: BadMediaReport | None = None
        self.datasets: dict[str, AVClipDataset] = {}
        # injected parts (see the module docstring): AVST's curriculum, the splits a rate bucket serves
        self.curriculum = None
        self.served_splits: frozenset[str] = frozenset(SPLITS)
        self.fixed: dict[str, FixedOffsets] = {}
        self.dropped: dict[str, dict[str, int]] = {}

    # -- to implement -----------------------------------------------------------------------
    def list_records(self, split: str) -> list[ClipRecord]:
        """All clips of ``split`` ("train", "valid" or "test"); filtering happens in setup."""
        raise NotImplementedError(f"{type(self).__name__} must implement list_records(split)")

    # -- listing helpers shared by the real datasets ----------------------------------------
    @property
    def missing(self) -> dict[str, int]:
        """Per split: clips its list names that are not on disk (a partial copy; not fatal)."""
        return self._missing.counts

    def probe_cache(self, folder: str | os.PathLike) -> ProbeCache:
        """The duration cache of one dataset folder (one per folder, made on first use)."""
        folder = Path(folder)
        if folder not in self._probe_caches:
            self._probe_caches[folder] = ProbeCache(folder, self.probe_cache_dir, self.probe_workers)
        return self._probe_caches[folder]

    def records_under(
        self,
        split: str,
        folder: str | os.PathLike,
        rels: Sequence[str],
        missing: Sequence[str] = (),
        source: str = "the split",
        describe: Callable[[str], dict] | None = None,
        durations: Mapping[str, float | None] | None = None,
    ) -> list[ClipRecord]:
        """Records of the clips ``rels`` (paths relative to ``folder``) of ``split``.

        ``missing`` (listed clips absent on disk) is counted in :attr:`missing` and logged once
        per split and ``source``. Durations come from the probe cache unless ``durations`` gives
        them; a clip that vanished since it was listed is left out. ``describe(rel)`` returns
        extra :class:`ClipRecord` fields (``label``, ``extra``).
        """
        folder = Path(folder)
        self._missing.note(split, str(source), list(missing), len(rels) + len(missing), folder)
        if durations is None:
            durations = self.probe_cache(folder).durations(rels)
        records = []
        for rel in rels:
            if rel not in durations:
                continue
            fields = describe(rel) if describe is not None else {}
            records.append(ClipRecord(key=rel, path=folder / rel, duration_sec=durations[rel], split=split,
                                      **fields))
        return records

    def split_records(self, split: str) -> list[ClipRecord]:
        """:meth:`list_records` of a split this module serves (a rate bucket serves only some)."""
        return self.list_records(split) if split in self.served_splits else []

    def prepare_data(self) -> None:
        """List (and so probe and cache the durations of) the splits the running stage needs;
        Lightning runs this once per node, before the DDP ranks set up."""
        for split in _STAGE_SPLITS.get(stage_of(self.trainer), SPLITS):
            self.split_records(split)

    # -- setup ------------------------------------------------------------------------------
    def resolve_spec(self) -> InputSpec:
        if self.input_spec is not None:
            return self.input_spec
        model = getattr(self.trainer, "lightning_module", None) if self.trainer is not None else None
        spec = getattr(model, "input_spec", None)
        if isinstance(spec, InputSpec):
            return spec
        if model is None:
            where = "no trainer is attached"
        else:
            where = f"the model {type(model).__name__} declares no `input_spec` (an InputSpec)"
        raise RuntimeError(
            f"{type(self).__name__} does not know what to deliver: {where}. Pass "
            "input_spec=InputSpec(...) to the data module, or train a model that sets "
            "`self.input_spec`."
        )

    def build_sampler(self, spec: InputSpec) -> WindowSampler:
        """Training sampler for ``spec``; video starts fall on frame boundaries (1 / fps)."""
        if spec.offset_classes:
            return RandomOffsetSampler(
                get_grid(spec.offset_classes), crop_sec=spec.duration_sec,
                max_source_sec=self.max_source_sec, jitter_sec=self.audio_jitter_sec,
                start_step_sec=1.0 / spec.fps,
            )
        # integer frame-shift targets: no audio jitter, it would move the audio off the frame grid;
        # in-sync-only training (max_frame_shift 0, Synchformer's stage I) may ask for it
        jitter = self.in_sync_jitter_sec if spec.max_frame_shift == 0 else 0.0
        return RandomFrameShiftSampler(
            max_shift=spec.max_frame_shift, fps=spec.fps, window_frames=spec.num_frames,
            max_source_sec=self.max_source_sec, jitter_sec=jitter,
        )

    def training_sampler(self) -> WindowSampler:
        """The training draws: :meth:`build_sampler`'s, or single-window pairs (``train_pair_negatives``)."""
        if self.train_pair_negatives is None:
            return self.sampler
        return PairShiftSampler(self.spec.fps, self.spec.num_frames, self.train_pair_negatives, self.max_source_sec)

    def setup(self, stage: str | None = None) -> None:
        spec = self.resolve_spec()
        if spec != self.spec:  # a new spec (another model): rebuild everything
            self.spec, self.sampler = spec, self.build_sampler(spec)
            self.datasets, self.fixed, self.dropped = {}, {}, {}
        if self.report is None:
            self.report = BadMediaReport(self.report_path())
        for split in _STAGE_SPLITS.get(stage, SPLITS):
            if split not in self.datasets:
                self.datasets[split] = self.build_dataset(split)

    def build_dataset(self, split: str) -> AVClipDataset | None:
        """The split's data set (None for a split this module does not serve)."""
        if split not in self.served_splits:
            return None
        records = self.filter_records(split, self.list_records(split))
        if split == "train":
            if not records:
                raise RuntimeError(f"{type(self).__name__}: no usable training clips")
            if self.curriculum is not None:
                return self.curriculum.train_dataset(self, records)
            return AVClipDataset(records, self.spec, True, self.training_sampler(), report=self.report, stage=split,
                                 **self._dataset_options())
        if self.eval_whole_clips:
            return self._whole_clip_dataset(split, records)
        fixed = self.fixed_offsets(split, records)
        records = self._drop(split, records, lambda r: r.key not in fixed, "not_in_fixed_offsets")
        self.fixed[split] = fixed
        return AVClipDataset(records, self.spec, False, self.sampler, fixed, self.eval_plans_per_clip,
                             self.report, stage=split, **self._dataset_options())

    # -- whole-clip evaluation (score-search models: every window of every test clip) ------------
    def whole_clip_mode(self) -> str:
        """Offsets of whole-clip evaluation: ``random`` (one seeded artificial offset per clip), or
        the curriculum's ``eval_offsets``."""
        return "random" if self.curriculum is None else self.curriculum.eval_offsets

    def _whole_clip_need(self) -> int:
        """Frames a clip needs for whole-clip evaluation: one window, plus the largest offset when
        clips are shifted (every clip gets the whole ±max_frame_shift range)."""
        window = max(1, int(round(self.whole_clip_min_sec * self.spec.fps)))
        return window + (0 if self.whole_clip_mode() == "in_sync" else int(self.spec.max_frame_shift))

    def _whole_clip_dataset(self, split: str, records: list[ClipRecord]) -> AVClipDataset:
        from .whole_clip import WholeClipDataset, whole_clip_plans

        durations = {r.key: r.duration_sec for r in records}
        fixed, short = whole_clip_plans(durations, self.spec.fps, self.spec.max_frame_shift, self.whole_clip_mode(),
                                        self.seed, max(1, int(round(self.whole_clip_min_sec * self.spec.fps))))
        records = self._drop(split, records, lambda r: r.key not in fixed, "too_short")
        self.fixed[split] = fixed
        plans = 2 if self.whole_clip_mode() == "both" else 1
        return WholeClipDataset(records, self.spec, False, self.sampler, fixed, plans, self.report, stage=split,
                                **self._dataset_options())

    def _dataset_options(self) -> dict:
        return dict(cache_decoded=self.cache_decoded, reject_silent=self.reject_silent,
                    reject_still=self.reject_still, face_box_scale=self.face_box_scale, augment=self.augment)

    def filter_records(self, split: str, records: Iterable[ClipRecord]) -> list[ClipRecord]:
        """Drop skip-listed clips, unreadable ones (duration unknown and probe fails), and clips
        too short for any offset; counted in ``self.dropped[split]`` and logged once."""
        records = list(records)
        self.dropped[split] = {}
        lists = [self.skip_list] if isinstance(self.skip_list, (str, os.PathLike)) else (self.skip_list or [])
        skip = set().union(*(read_skip_list(p) for p in lists))
        records = self._drop(split, records, lambda r: is_skipped(r, skip), "skip_list")
        records = self._drop(split, records, lambda r: not self._has_duration(r), "unreadable")
        records = self._drop(split, records, lambda r: not self._long_enough(r), "too_short")
        counts = {k: v for k, v in self.dropped[split].items() if v}
        if counts:
            total = sum(counts.values())
            log.warning("%s: dropped %d of %d clips (%s); a %g s crop needs clips of at least %.3f s",
                        split, total, total + len(records),
                        ", ".join(f"{k}: {v}" for k, v in counts.items()),
                        self.spec.duration_sec, self.sampler.min_duration_sec)
        if split in self.missing:  # not on disk at all: counted, and warned about when listed
            self.dropped[split]["missing"] = self.missing[split]
        return records

    def _long_enough(self, record: ClipRecord) -> bool:
        """Whether any offset fits in the clip (whole-clip evaluation: a window plus every offset);
        a clip that cannot is listed in the bad-media report."""
        if self.eval_whole_clips and record.split != "train":
            from .whole_clip import whole_clip_frames

            frames, need = whole_clip_frames(record.duration_sec, self.spec.fps), self._whole_clip_need()
            if frames >= need:
                return True
            self.report.record(record.key, record.path, f"too short for whole-clip evaluation: {frames} frames, "
                               f"needs {need} (a window and ±{self.spec.max_frame_shift} frames)", f"setup:{record.split}")
            return False
        sampler = self.training_sampler() if record.split == "train" else self.sampler
        if sampler.feasible(record.duration_sec):
            return True
        self.report.record(record.key, record.path, f"shorter than the crop: {record.duration_sec:.3f} s, "
                           f"needs {sampler.min_duration_sec:.3f} s", f"setup:{record.split}")
        return False

    def fixed_offsets(self, split: str, records: Sequence[ClipRecord]) -> FixedOffsets:
        """Fixed plans of an evaluation split: the curriculum's, else :meth:`offset_plans`."""
        if self.curriculum is not None:
            return self.curriculum.fixed_offsets(self, split, records)
        return self.offset_plans(split, records)

    def offset_plans(self, split: str, records: Sequence[ClipRecord]) -> FixedOffsets:
        """Fixed plans of an evaluation split at offsets of the model's range: the official CSV if
        given, else seeded draws."""
        durations = {r.key: r.duration_sec for r in records}
        csv_path = self.fixed_offsets_csv.get(split)
        if not csv_path:
            return FixedOffsets.from_seed(durations, self.sampler, self.seed)
        grid = get_grid(self.spec.offset_classes) if self.spec.offset_classes else None
        table = FixedOffsets.from_csv(csv_path, grid, self.spec.duration_sec, seed=self.seed)
        plans = {k: table.plans_for(k) for k in durations if k in table}
        absent = len(table) - len(plans)
        if absent:
            log.warning("%s: %d of the %d clips of %s are not in this split's records",
                        split, absent, len(table), csv_path)
        # extra plans (eval_plans_per_clip > the CSV's) are drawn from (seed, key, i)
        return FixedOffsets(plans, seed=self.seed, sampler=self.sampler, durations=durations)

    def _drop(self, split, records, predicate, reason) -> list[ClipRecord]:
        kept = [r for r in records if not predicate(r)]
        counts = self.dropped.setdefault(split, {})
        counts[reason] = counts.get(reason, 0) + len(records) - len(kept)
        if reason == "not_in_fixed_offsets" and len(kept) < len(records):
            log.warning("%s: dropped %d clip(s) that have no fixed offset in %s", split,
                        len(records) - len(kept), self.fixed_offsets_csv.get(split))
        return kept

    def _has_duration(self, record: ClipRecord) -> bool:
        if record.duration_sec is not None:
            return True
        try:
            record.duration_sec = probe(record.path).duration_sec
            return True
        except MediaError as err:
            self.report.record(record.key, record.path, err.reason, f"setup:{record.split}")
            return False

    def report_path(self) -> Path | None:
        """``report_dir``, else the trainer's log dir; with neither, in memory when loading stays
        in this process (num_workers=0), else a fresh temporary folder (workers need a file)."""
        if self.report_dir:
            return Path(self.report_dir) / REPORT_NAME
        if self.trainer is not None and self.trainer.log_dir:
            return Path(self.trainer.log_dir) / REPORT_NAME
        if self.num_workers == 0:
            return None
        return Path(tempfile.mkdtemp(prefix="avsync_report_")) / REPORT_NAME

    # -- loaders ----------------------------------------------------------------------------
    def collate_for(self, split: str, train: bool) -> Callable[[list], dict] | None:
        """How items become a batch: whole clips of different lengths as lists (whole-clip
        evaluation), training batches cut to one drawn length (``spec.train_durations``), else
        PyTorch's default (None)."""
        if not train and self.eval_whole_clips:
            from .whole_clip import whole_clip_collate

            return whole_clip_collate
        if train and self.spec.train_durations:
            return RandomDurationCollate(self.spec.train_durations, self.spec.fps, self.spec.sample_rate)
        return None

    def train_batching(self) -> BatchingPolicy:
        """How training items are grouped: the curriculum's, else shuffled full batches."""
        if self.curriculum is not None:
            return self.curriculum.batching(self.batch_size)
        return ShuffledBatches(self.batch_size, drop_last=True)

    def split_loader(self, split: str, train: bool, collate: Callable[[list], dict] | None = None) -> DataLoader:
        """The loader of a set-up split, built by :func:`.loaders.build_loader` (exactly resumable
        training, evaluation in order and without repeats under DDP); ``collate`` replaces
        :meth:`collate_for`'s (the multi-rate parent tags the batches with their rate)."""
        if self.datasets.get(split) is None:
            raise RuntimeError(f"{type(self).__name__}: split {split!r} is not set up; call setup() first")
        return build_loader(
            self.datasets[split], train=train, batch_size=self.batch_size, num_workers=self.num_workers,
            batching=self.train_batching() if train else None,
            collate=collate if collate is not None else self.collate_for(split, train),
            pin_memory=self.pin_memory, persistent_workers=self.persistent_workers, trainer=self.trainer,
        )

    def predict_dataloader(self) -> DataLoader:
        return self.split_loader("test", False)

    def teardown(self, stage: str | None = None) -> None:
        if self.report is not None and len(self.report):
            log.warning("%s", self.report.summary())

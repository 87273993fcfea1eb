"""The shared data layer: clip records, the clip data set, the bad-media report, the base module.

Models declare what they consume (:class:`avsync.inputs.InputSpec`); a data module delivers
exactly that from real files, with the offset label in the one convention of docs/conventions.md
(Δ > 0: the audio leads, its window starts Δ later in the source than the video window).

One example, as returned by :class:`AVClipDataset`::

    video            uint8   (T, H, W, 3)  T = spec.num_frames, H = W = spec.frame_size
                                           (H = frame_size // 2 for crop="mouth")
    audio            float32 (S,)          S = spec.num_samples, mono
    target           int64   ()            grid class (spec.offset_classes) or integer frame shift
    offset_sec       float                 the nominal offset Δ of the label (no jitter)
    video_start_sec  float                 where the video window starts in the source
    audio_start_sec  float                 where the audio window starts (= video + Δ + jitter)
    key              str                   clip id (offsets.key_for), as in fixed-offset files
    index            int                   data set index of the example actually delivered
    class_index      int                   the clip's dataset class (``classes`` of the data module), −1: none

A subclass of :class:`AVSyncDataModule` (one per dataset) only lists its clips
(:meth:`AVSyncDataModule.list_records`) and, if it needs to, prepares them
(:meth:`~lightning.LightningDataModule.prepare_data`). Sampling, fixed evaluation offsets,
decoding, cropping, bad-media handling and the loaders are shared here.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from avsync.inputs import InputSpec
from avsync.media import MediaError, probe, read_clip
from avsync.media.checks import is_silent, is_still
from .augment import Augmentations, upscale
from .face_boxes import crop_faces, read_face_boxes, window_boxes
from .listing import SPLITS, MissingLog, ProbeCache, stage_of
from avsync.offsets import (
    ClipTooShortError,
    CropPlan,
    FixedOffsets,
    PairShiftSampler,
    RandomFrameShiftSampler,
    RandomOffsetSampler,
    WindowSampler,
    get_grid,
    key_for,
    seconds_to_frames,
    stable_hash,
)
from avsync.training.resume import ResumableTrainLoader
from avsync.training.worker_deaths import SurvivingDataLoader

__all__ = ["ClipRecord", "AVClipDataset", "BadMediaEntry", "BadMediaReport", "AVSyncDataModule"]

log = logging.getLogger(__name__)

_STAGE_SPLITS = {
    "fit": ("train", "valid"),
    "validate": ("valid",),
    "test": ("test",),
    "predict": ("test",),
    None: SPLITS,
}
_REPORT_NAME = "bad_media.tsv"


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------
@dataclass
class ClipRecord:
    """One source clip of a split.

    ``key`` is the clip id of the fixed-offset files (:func:`avsync.offsets.key_for`, e.g.
    ``pretrain/C8zY0oAdQrs/00018`` or ``3qesirWAGt4_20000_30000``). ``duration_sec`` is the
    usable length of the clip; ``None`` makes the data module probe the file in ``setup``.
    """

    key: str
    path: Path
    duration_sec: float | None
    split: str
    label: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.key = key_for(self.key)


def _class_index(record: ClipRecord) -> int:
    """``record.extra["class_index"]`` (set by data modules with classes), −1 for a clip without one."""
    index = record.extra.get("class_index")
    return -1 if index is None else int(index)


# --------------------------------------------------------------------------------------------
# Bad-media report
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BadMediaEntry:
    key: str
    path: str
    reason: str
    stage: str
    count: int = 1


def _clean_field(text: object, limit: int = 1000) -> str:
    return " ".join(str(text).split())[:limit]


class BadMediaReport:
    """Bad clips met while loading: one TSV line ``key, path, stage, reason`` per event.

    With ``path`` set, every event is appended to that file with a single ``O_APPEND`` write,
    so DataLoader workers (forked or spawned) and DDP ranks can all report into one file and the
    main process reads it back. Without a path, events stay in this process's memory: that
    only sees the events of ``num_workers=0`` loading (the data module therefore always gives a
    path). One warning is logged per bad file, not per occurrence (per process, and skipped when
    the file already names the clip).
    """

    HEADER = "# key\tpath\tstage\treason\n"

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._events: list[BadMediaEntry] = []
        self._warned: set[str] = set()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                self._append(self.HEADER)

    def record(self, key: str, path: str | os.PathLike, reason: object, stage: str = "") -> None:
        entry = BadMediaEntry(_clean_field(key), _clean_field(path), _clean_field(reason), _clean_field(stage))
        first = entry.key not in self._warned and not (self.path is not None and self._file_has(entry.key))
        if self.path is None:
            self._events.append(entry)
        else:
            self._append("\t".join((entry.key, entry.path, entry.stage, entry.reason)) + "\n")
        if first:
            log.warning("bad media skipped (%s): %s: %s", entry.stage or "-", entry.path, entry.reason)
        self._warned.add(entry.key)

    def events(self) -> list[BadMediaEntry]:
        """Every event, in order (a clip met twice appears twice)."""
        if self.path is None:
            return list(self._events)
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t", 3)
            if len(parts) == 4:
                key, path, stage, reason = parts
                out.append(BadMediaEntry(key, path, reason, stage))
        return out

    def read(self) -> list[BadMediaEntry]:
        """One entry per bad clip (its first event), with ``count`` = number of events."""
        first: dict[str, BadMediaEntry] = {}
        counts: dict[str, int] = {}
        for e in self.events():
            first.setdefault(e.key, e)
            counts[e.key] = counts.get(e.key, 0) + 1
        return [BadMediaEntry(e.key, e.path, e.reason, e.stage, counts[k]) for k, e in first.items()]

    def __len__(self) -> int:
        return len(self.read())

    def summary(self) -> str:
        entries = self.read()
        if not entries:
            return "no bad media"
        where = f" (report: {self.path})" if self.path is not None else ""
        lines = [f"{len(entries)} bad media file(s), {sum(e.count for e in entries)} event(s){where}:"]
        lines += [f"  [{e.stage or '-'}] {e.path}: {e.reason} (x{e.count})" for e in entries]
        return "\n".join(lines)

    def _append(self, text: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    def _file_has(self, key: str) -> bool:
        return any(e.key == key for e in self.events())


# --------------------------------------------------------------------------------------------
# Data set
# --------------------------------------------------------------------------------------------
# whole decoded clips of data sets built with cache_decoded=True, shared by every data set of the
# process (and so by the consecutive stages of a reproduction run; with DataLoader workers each
# worker process fills its own copy)
_DECODED: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _seconds(x: float) -> float:
    """A window start for the decoder: rounded to 1 ns, float noise around 0 made exactly 0."""
    x = round(float(x), 9)
    return 0.0 if -1e-6 < x < 0 else x


class AVClipDataset(Dataset):
    """Decoded, cropped audio-visual examples with offset labels; see the module docstring.

    Training (``train=True``): one item per clip; every fetch draws a new plan with
    ``sampler.sample(duration, rng)`` where ``rng`` is a fresh NumPy generator seeded by one
    ``torch.randint`` draw. Torch's RNG is seeded per worker, rank and epoch by the DataLoader
    and by Lightning's ``seed_everything(workers=True)``, so the draws are reproducible, new
    every epoch, and never repeated across workers. The same generator draws the crop position
    and the horizontal flip.

    ``augment`` (training only): the recipe's extra augmentations (:mod:`.augment`: a smaller
    crop upscaled, colour jitter, greyscale, reverb, volume, pitch shift, low-pass, noise), drawn
    from the same generator after the crop; none of them moves the windows or the label.

    Evaluation (``train=False``): ``plans_per_clip`` items per clip (Synchformer's protocol
    of several offsets per test clip), item ``c * plans_per_clip + j`` being plan ``j`` of clip
    ``c`` from ``fixed``; centre crop, no flip, no randomness at all.

    Bad media: a :class:`MediaError` or :class:`ClipTooShortError` while loading an item is
    recorded in ``report`` and the item is replaced by another one chosen from
    ``stable_hash(key)`` (the same replacement every epoch); after ``max_replacements``
    consecutive failures a RuntimeError says what failed.
    """

    def __init__(
        self,
        records: Sequence[ClipRecord],
        spec: InputSpec,
        train: bool,
        sampler: WindowSampler,
        fixed: FixedOffsets | None = None,
        plans_per_clip: int = 1,
        report: BadMediaReport | None = None,
        max_replacements: int = 10,
        stage: str | None = None,
        reject_silent: bool = False,
        cache_decoded: bool = False,
        reject_still: bool = False,
        face_box_scale: float = 1.0,
        augment: Augmentations | None = None,
    ) -> None:
        self.records = list(records)
        self.augment = augment if train else None
        self.reject_still = bool(reject_still)
        self.face_box_scale = float(face_box_scale)
        self._boxes: dict[str, np.ndarray] = {}
        # opt-in memo of whole decoded clips: small sets (the toy set) are decoded once instead
        # of once per item; windows are then sliced on the same frame grid
        self.cache_decoded = cache_decoded
        self.spec = spec
        self.train = bool(train)
        self.sampler = sampler
        self.fixed = fixed
        self.plans_per_clip = 1 if self.train else int(plans_per_clip)
        self.report = report if report is not None else BadMediaReport()
        self.max_replacements = int(max_replacements)
        self.stage = stage or ("train" if self.train else "eval")
        self.reject_silent = reject_silent
        self.grid = get_grid(spec.offset_classes) if spec.offset_classes else None
        self.decode_size = spec.decode_size
        if isinstance(self.decode_size, int) and self.decode_size < spec.frame_size:
            raise ValueError(f"resize_short_side={spec.resize_short_side} is smaller than the "
                             f"frame_size={spec.frame_size} crop")
        if spec.crop not in ("full", "face", "mouth"):
            raise ValueError(f"unknown crop kind {spec.crop!r}; expected 'full', 'face' or 'mouth'")
        if self.plans_per_clip < 1:
            raise ValueError(f"plans_per_clip must be >= 1, got {plans_per_clip}")
        self._plans: list[CropPlan] | None = None
        if not self.train:
            if fixed is None:
                raise ValueError("an evaluation data set needs fixed plans (fixed=FixedOffsets)")
            missing = [r.key for r in self.records if r.key not in fixed]
            if missing:
                raise ValueError(f"{len(missing)} clip(s) have no fixed plan, e.g. {missing[:3]}")
            self._plans = [p for r in self.records for p in fixed.plans_for(r.key, self.plans_per_clip)]

    def __len__(self) -> int:
        return len(self.records) * self.plans_per_clip

    # -- plans ------------------------------------------------------------------------------
    def record_of(self, index: int) -> ClipRecord:
        return self.records[index // self.plans_per_clip]

    def plan_for(self, index: int, rng: np.random.Generator | None = None) -> CropPlan:
        """The plan of item ``index``: a training draw from ``rng``, or the fixed plan."""
        if self.train:
            if rng is None:
                raise ValueError("a training plan needs a generator")
            return self.sampler.sample(self.record_of(index).duration_sec, rng)
        return self._plans[index]

    def target_of(self, plan: CropPlan) -> int:
        """Grid class of the plan's offset, or its integer frame shift at ``spec.fps``."""
        if self.grid is not None:
            return self.grid.class_of(plan.offset_sec)
        return seconds_to_frames(plan.offset_sec, self.spec.fps)

    # -- loading ----------------------------------------------------------------------------
    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = None
        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        origin_key, current, failures = self.record_of(index).key, index, []
        for attempt in range(self.max_replacements + 1):
            record = self.record_of(current)
            try:
                return self._load(current, record, self.plan_for(current, rng), rng)
            except (MediaError, ClipTooShortError) as err:
                reason = err.reason if isinstance(err, MediaError) else str(err)
                self.report.record(record.key, record.path, reason, self.stage)
                failures.append(f"{record.path}: {reason}")
                current = self._replacement(index, origin_key, attempt)
        raise RuntimeError(
            f"{self.stage}: item {index} and {self.max_replacements} replacement(s) all failed to "
            f"load; is the data set readable? Last errors:\n  " + "\n  ".join(failures[-5:])
        )

    def _replacement(self, index: int, key: str, attempt: int) -> int:
        """A deterministic other item for failed ``index`` (any item but itself, if there is one)."""
        n = len(self)
        if n <= 1:
            return index
        return (index + 1 + stable_hash(f"{key}#{attempt}") % (n - 1)) % n

    def item_duration(self, plan: CropPlan) -> float:
        """Seconds of video and audio an item holds: the spec's crop (whole-clip evaluation: the plan's)."""
        return self.spec.duration_sec

    def _load(self, index: int, record: ClipRecord, plan: CropPlan, rng) -> dict:
        spec = self.spec
        video_start, audio_start = _seconds(plan.video_start_sec), _seconds(plan.audio_start_sec)
        duration = self.item_duration(plan)
        clip = self._cached_window(record, video_start, audio_start, duration) if self.cache_decoded else None
        if clip is None:
            clip = read_clip(
                record.path, video_start, audio_start, duration, spec.fps, spec.sample_rate,
                size=self.decode_size, reject_silent=self.reject_silent,
            )
        if self.reject_silent and _is_flat(clip["audio"]):
            raise MediaError(record.path, "silent audio (constant in the window)")
        video = self._frames(record, clip["video"], video_start, rng)
        audio = np.ascontiguousarray(clip["audio"], dtype=np.float32)
        if self.augment is not None and rng is not None:
            video = self.augment.video(video, spec.fps, rng)
            audio = self.augment.audio(audio, spec.sample_rate, rng)
        return {
            "video": torch.from_numpy(video),
            "audio": torch.from_numpy(audio),
            "target": torch.tensor(self.target_of(plan), dtype=torch.int64),
            "offset_sec": float(plan.offset_sec),
            "video_start_sec": video_start,
            "audio_start_sec": audio_start,
            "key": record.key,
            "index": int(index),
            "class_index": _class_index(record),
        }

    def _cached_window(self, record: ClipRecord, video_start: float, audio_start: float,
                       duration: float) -> dict | None:
        """The plan's windows sliced from the whole decoded clip; None when they do not fit
        (the caller then reads them directly, which raises the usual MediaError)."""
        spec = self.spec
        memo_key = (str(record.path), spec.fps, spec.sample_rate, self.decode_size)
        if memo_key not in _DECODED:
            seconds = int(record.duration_sec * spec.fps) / spec.fps  # whole frames only
            whole = read_clip(record.path, 0.0, 0.0, seconds, spec.fps, spec.sample_rate,
                              size=self.decode_size, reject_silent=self.reject_silent)
            _DECODED[memo_key] = (whole["video"], whole["audio"])
        frames, audio = _DECODED[memo_key]
        v0, a0 = int(round(video_start * spec.fps)), int(round(audio_start * spec.sample_rate))
        n_frames, n_samples = int(round(duration * spec.fps)), int(round(duration * spec.sample_rate))
        if v0 + n_frames > len(frames) or a0 + n_samples > len(audio):
            return None
        return {"video": frames[v0 : v0 + n_frames], "audio": audio[a0 : a0 + n_samples]}

    def _frames(self, record: ClipRecord, video: np.ndarray, video_start: float, rng) -> np.ndarray:
        """The model's frames: a face-box crop when the spec wants a face or mouth and the record
        has LRS3 boxes (``extra["face_boxes"]``), else a square crop; still video rejected if asked."""
        if self.reject_still and _is_still(video):
            raise MediaError(record.path, "still video (no frame differs from the first)")
        box_file = record.extra.get("face_boxes")
        if self.spec.crop == "full" or not box_file:
            return self._crop(video, rng)
        box_file = str(box_file)
        if box_file not in self._boxes:
            self._boxes[box_file] = read_face_boxes(box_file)
        boxes = window_boxes(self._boxes[box_file], video_start, len(video), self.spec.fps)
        out = crop_faces(video, boxes, self.spec.frame_size, self.face_box_scale)
        if self.spec.crop == "mouth":  # lower half of the face, e.g. VocaLiST's 48x96
            out = out[:, self.spec.frame_size // 2 :]
        if rng is not None and self.spec.hflip and bool(rng.random() < 0.5):
            out = out[:, :, ::-1]
        return np.ascontiguousarray(out)

    def centre_crop(self, video: np.ndarray) -> np.ndarray:
        """The evaluation crop of decoded frames (T, H, W, 3): centred, no flip."""
        return self._crop(video, None)

    def _crop(self, video: np.ndarray, rng) -> np.ndarray:
        """Square ``frame_size`` crop: random (``spec.random_crop``) + h-flip (``spec.hflip``) when a
        generator is given (training), centre otherwise; in training ``augment`` may make it a smaller
        crop upscaled to ``frame_size``. Frames decoded at frame_size x frame_size (``keep_aspect=False``)
        are kept whole."""
        size = self.spec.frame_size
        height, width = video.shape[1:3]
        if min(height, width) < size:
            raise ValueError(f"decoded frames of {height}x{width} cannot give a {size} px crop")
        crop = size
        if rng is not None:
            if self.augment is not None:
                crop = self.augment.crop_size(size, rng)
            if self.spec.random_crop:
                y0, x0 = int(rng.integers(height - crop + 1)), int(rng.integers(width - crop + 1))
            else:
                y0, x0 = (height - crop) // 2, (width - crop) // 2
            flip = self.spec.hflip and bool(rng.random() < 0.5)
        else:
            y0, x0, flip = (height - size) // 2, (width - size) // 2, False
        out = video[:, y0 : y0 + crop, x0 : x0 + crop]
        if crop != size:
            out = upscale(out, size)
        if self.spec.crop == "mouth":  # lower half of the (face) crop, e.g. VocaLiST's 48x96
            out = out[:, size // 2 :]
        if flip:
            out = out[:, :, ::-1]
        return np.ascontiguousarray(out)


# silence, constant (DC) audio and still video: the shared checks of avsync.media.checks
_is_flat = is_silent
_is_still = is_still


# --------------------------------------------------------------------------------------------
# Data module
# --------------------------------------------------------------------------------------------
def read_skip_list(path: str | os.PathLike) -> set[str]:
    """Clip keys of a skip list: one clip per line (id, relative or absolute path); ``#`` comments.

    This is the format of the authors' filter lists (``filtered_examples_*``): pass them as
    ``skip_list`` (one file or several) to leave out the clips they filtered."""
    keys = set()
    for line in Path(path).read_text().splitlines():
        fields = line.split("#", 1)[0].replace(",", " ").split()
        if fields:
            keys.add(key_for(fields[0]))
    return keys


def _skipped(record: ClipRecord, skip: set[str]) -> bool:
    if not skip:
        return False
    if record.key in skip or key_for(record.path) in skip:
        return True
    return any(s.endswith("/" + record.key) for s in skip)


class SplitLoaders:
    """train / val / test loaders from one ``_loader(split, train)``. Put it before
    ``LightningDataModule`` in the bases."""

    def _loader(self, split: str, train: bool) -> DataLoader:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


class WrappedLoaders(SplitLoaders):
    """The loaders of a data module that wraps another (feature caches, synchronizability): its own
    ``self.datasets`` per split, read with the wrapped clip module's batch size and worker settings
    (``loader_settings()``). Put it before ``LightningDataModule`` in the bases."""

    datasets: dict

    def loader_settings(self) -> "AVSyncDataModule":
        raise NotImplementedError

    def _loader(self, split: str, train: bool) -> DataLoader:
        src = self.loader_settings()
        loader = SurvivingDataLoader  # training and evaluation survive a worker that dies
        return loader(self.datasets[split], batch_size=src.batch_size, shuffle=train, drop_last=train,
                      num_workers=src.num_workers,
                      persistent_workers=src.persistent_workers and src.num_workers > 0)


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

    def prepare_data(self) -> None:
        """List (and so probe and cache the durations of) the splits the running stage needs;
        Lightning runs this once per node, before the DDP ranks set up."""
        for split in _STAGE_SPLITS.get(stage_of(self.trainer), SPLITS):
            self.list_records(split)

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
            self.report = BadMediaReport(self._report_path())
        for split in _STAGE_SPLITS.get(stage, SPLITS):
            if split not in self.datasets:
                self.datasets[split] = self.build_dataset(split)

    def build_dataset(self, split: str) -> AVClipDataset:
        records = self.filter_records(split, self.list_records(split))
        if split == "train":
            if not records:
                raise RuntimeError(f"{type(self).__name__}: no usable training clips")
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
        """Offsets of whole-clip evaluation: ``random`` (one seeded artificial offset per clip)."""
        return "random"

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
        records = self._drop(split, records, lambda r: _skipped(r, skip), "skip_list")
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
        """Fixed plans of an evaluation split: the official CSV if given, else seeded draws."""
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

    def _report_path(self) -> Path | None:
        """``report_dir``, else the trainer's log dir; with neither, in memory when loading stays
        in this process (num_workers=0), else a fresh temporary folder (workers need a file)."""
        if self.report_dir:
            return Path(self.report_dir) / _REPORT_NAME
        if self.trainer is not None and self.trainer.log_dir:
            return Path(self.trainer.log_dir) / _REPORT_NAME
        if self.num_workers == 0:
            return None
        return Path(tempfile.mkdtemp(prefix="avsync_report_")) / _REPORT_NAME

    # -- loaders ----------------------------------------------------------------------------
    def _loader(self, split: str, train: bool) -> DataLoader:
        """Training: shuffled, full batches; in one process a ResumableTrainLoader (exact mid-epoch
        resume, avsync.training.resume), under DDP a plain loader that Lightning gives its DistributedSampler.
        Evaluation: in order; under DDP every rank gets a disjoint share with no padding
        (``UnrepeatedDistributedSampler``), so each item is scored exactly once per epoch —
        Lightning's default sampler would repeat items to even out the ranks."""
        if split not in self.datasets:
            raise RuntimeError(f"{type(self).__name__}: split {split!r} is not set up; call setup() first")
        collate = None
        if not train and self.eval_whole_clips:  # clips of different lengths: video / audio as lists
            from .whole_clip import whole_clip_collate

            collate = whole_clip_collate
        if train and self.spec.train_durations:
            collate = RandomDurationCollate(self.spec.train_durations, self.spec.fps, self.spec.sample_rate)
        sampler = None
        world = getattr(self.trainer, "world_size", 1) if self.trainer is not None else 1
        if not train and world > 1:
            sampler = UnrepeatedDistributedSampler(self.datasets[split], num_replicas=world,
                                                   rank=self.trainer.global_rank, shuffle=False)
        pin = torch.cuda.is_available() if self.pin_memory is None else self.pin_memory
        if train and world == 1:  # shuffled, checkpointable, resumable mid-epoch (avsync.training.resume)
            return ResumableTrainLoader(
                self.datasets[split], batch_size=self.batch_size, drop_last=True, num_workers=self.num_workers,
                pin_memory=pin, persistent_workers=self.persistent_workers and self.num_workers > 0,
                collate_fn=collate,
            )
        loader = SurvivingDataLoader  # training and evaluation survive a worker that dies
        return loader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=train,
            sampler=sampler,
            drop_last=train,
            num_workers=self.num_workers,
            pin_memory=pin,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            collate_fn=collate,
        )

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def teardown(self, stage: str | None = None) -> None:
        if self.report is not None and len(self.report):
            log.warning("%s", self.report.summary())


class RandomDurationCollate:
    """Cuts a whole training batch to one randomly drawn length (variable-length training).

    Items are decoded at the spec's (maximal) length; both streams are cut from the window
    starts, so the offset between them — and the label — is unchanged. The draw uses torch's
    RNG, which Lightning seeds per worker, so runs stay reproducible.
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

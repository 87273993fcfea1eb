"""The one module that owns the audio-visual offset convention.

Sign convention (docs/conventions.md, ITU-R BT.1359)
----------------------------------------
An offset Δ (seconds) > 0 means **the audio leads**: a sound is heard Δ before the picture
that makes it. Built from a source clip, the audio crop therefore starts Δ **later** in the
source than the video crop::

    audio_start = video_start + Δ

Because this is the ITU sign, the ITU-R BT.1359 windows read directly on Δ (and on the
residual offset left after a correction, see :mod:`avsync.evaluation.metrics`):
detectability [−125, +45] ms, acceptability [−185, +90] ms.

The official fixed-offset CSV files agree: under ``audio_start = vstart_sec + offset_sec`` every
row's audio crop starts at or after 0 s (rows with Δ = −2 s all have ``vstart_sec >= 2``).

What lives here
---------------
* :class:`OffsetGrid` / :func:`get_grid` — the class grids of the classification models
  (SparseSync, Synchformer): 21 × 0.2 s, 3 × 1 s, 41 × 0.1 s.
* :class:`FrameShifts` and the frame/second helpers — candidates of the score-search models
  (AVST, VocaLiST, SyncNet, DiVAS): integer video-frame shifts in [−15, +15].
* :class:`CropPlan` — where to cut the video and the audio of one example.
* :class:`RandomOffsetSampler` / :class:`RandomFrameShiftSampler` — training draws.
* :class:`FixedOffsets` — validation/test plans, one (or *n*) per clip, fixed forever.
* :func:`item_rng` — the per-item generator that data sets use for training draws.

Nothing else in the suite should add or subtract offsets by hand.
"""
from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: data workers and CSV tools need only numpy
    import torch

__all__ = [
    "DETECTABILITY_MS",
    "ACCEPTABILITY_MS",
    "OffsetGrid",
    "get_grid",
    "FrameShifts",
    "seconds_to_frames",
    "frames_to_seconds",
    "CropPlan",
    "ClipTooShortError",
    "WindowSampler",
    "RandomOffsetSampler",
    "RandomFrameShiftSampler",
    "PairShiftSampler",
    "FixedOffsets",
    "stable_hash",
    "key_for",
    "item_rng",
]

#: ITU-R BT.1359 windows on the offset (ms), in this module's sign (audio leads > 0).
DETECTABILITY_MS: tuple[float, float] = (-125.0, 45.0)
ACCEPTABILITY_MS: tuple[float, float] = (-185.0, 90.0)

_GRID_SNAP_SEC = 1e-3  # an offset farther than this from every grid value is not on the grid
_EPS = 1e-9


def _clean(x: float, ndigits: int = 6) -> float:
    """Round to ``ndigits`` and turn −0.0 into 0.0, so grid values print and compare cleanly."""
    return round(float(x), ndigits) + 0.0


# --------------------------------------------------------------------------------------------
# Class grids
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OffsetGrid:
    """Evenly spaced offsets from −max_offset_sec to +max_offset_sec; class i ↔ values[i]."""

    num_classes: int
    max_offset_sec: float
    values: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"an offset grid needs at least 2 classes, got {self.num_classes}")
        if self.max_offset_sec <= 0:
            raise ValueError(f"max_offset_sec must be > 0, got {self.max_offset_sec}")
        step = 2.0 * self.max_offset_sec / (self.num_classes - 1)
        values = tuple(_clean(-self.max_offset_sec + i * step) for i in range(self.num_classes))
        object.__setattr__(self, "values", values)

    @property
    def step_sec(self) -> float:
        return _clean(2.0 * self.max_offset_sec / (self.num_classes - 1))

    def __len__(self) -> int:
        return self.num_classes

    def nearest_class(self, offset_sec: float) -> int:
        """Index of the grid value closest to ``offset_sec`` (tolerant: snaps anything, clamps)."""
        return int(np.argmin(np.abs(np.asarray(self.values) - float(offset_sec))))

    def class_of(self, offset_sec: float) -> int:
        """Class of an offset that lies on the grid; ValueError if it is off by more than 1 ms.

        Strict on purpose: a label that silently snaps hides a wrong grid or a wrong CSV.
        """
        cls = self.nearest_class(offset_sec)
        if abs(self.values[cls] - float(offset_sec)) > _GRID_SNAP_SEC:
            raise ValueError(
                f"offset {offset_sec} s is not on the {self.num_classes}-class grid "
                f"(±{self.max_offset_sec} s, step {self.step_sec} s); use nearest_class() to snap"
            )
        return cls

    def seconds_of(self, cls: int) -> float:
        if not 0 <= cls < self.num_classes:
            raise IndexError(f"class {cls} outside 0..{self.num_classes - 1}")
        return self.values[cls]

    def frames_of(self, cls: int, fps: float) -> int:
        """Integer video-frame shift of a class at ``fps`` (0.2 s at 25 fps → 5)."""
        return seconds_to_frames(self.seconds_of(cls), fps)

    def as_tensor(self, dtype: "torch.dtype | None" = None) -> "torch.Tensor":
        import torch

        return torch.tensor(self.values, dtype=dtype or torch.float32)


_GRIDS: dict[int, float] = {21: 2.0, 3: 1.0, 41: 2.0}


def get_grid(num_classes: int) -> OffsetGrid:
    """The registered grid with ``num_classes`` classes (21: ±2 s step 0.2; 3: ±1 s; 41: ±2 s step 0.1)."""
    if num_classes not in _GRIDS:
        raise ValueError(f"no offset grid with {num_classes} classes; valid sizes: {sorted(_GRIDS)}")
    return OffsetGrid(num_classes, _GRIDS[num_classes])


# --------------------------------------------------------------------------------------------
# Frame shifts (score-search models)
# --------------------------------------------------------------------------------------------
def _round_half_away(x: float) -> int:
    """Round half away from zero, so a shift of −Δ is exactly minus the shift of +Δ."""
    x = round(float(x), 6)  # 0.2 * 25 = 5.000000000000001 must be 5
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def seconds_to_frames(sec: float, fps: float) -> int:
    """Nearest integer number of video frames for ``sec`` seconds at ``fps``."""
    return _round_half_away(float(sec) * float(fps))


def frames_to_seconds(frames: float, fps: float) -> float:
    return float(frames) / float(fps)


@dataclass(frozen=True)
class FrameShifts:
    """Candidate integer frame shifts −max_shift..+max_shift (31 for the usual ±15)."""

    max_shift: int = 15

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(range(-self.max_shift, self.max_shift + 1))

    def __len__(self) -> int:
        return 2 * self.max_shift + 1

    def index_of(self, shift: int) -> int:
        if abs(int(shift)) > self.max_shift:
            raise ValueError(f"frame shift {shift} outside ±{self.max_shift}")
        return int(shift) + self.max_shift

    def seconds(self, shift: int, fps: float) -> float:
        return frames_to_seconds(shift, fps)

    def offsets_sec(self, fps: float) -> tuple[float, ...]:
        """All candidates in seconds at ``fps``: the ``offsets_sec`` an accuracy metric needs."""
        return tuple(self.seconds(s, fps) for s in self.values)


# --------------------------------------------------------------------------------------------
# Crop plans
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CropPlan:
    """Where one example's video and audio windows lie in its source clip (seconds).

    ``offset_sec`` is the nominal label; ``audio_jitter_sec`` is a small training-time
    perturbation (SparseSync: U[−0.05, 0.05] s) that moves the audio without changing the label.
    ``label`` is the class index on a grid, or None for score-search models.
    """

    video_start_sec: float
    offset_sec: float
    duration_sec: float
    audio_jitter_sec: float = 0.0
    label: int | None = None

    @property
    def audio_start_sec(self) -> float:
        return self.video_start_sec + self.offset_sec + self.audio_jitter_sec

    @property
    def video_end_sec(self) -> float:
        return self.video_start_sec + self.duration_sec

    @property
    def audio_end_sec(self) -> float:
        return self.audio_start_sec + self.duration_sec


class ClipTooShortError(ValueError):
    """The source clip cannot hold both windows for any candidate offset."""


# --------------------------------------------------------------------------------------------
# Training samplers
# --------------------------------------------------------------------------------------------
class WindowSampler:
    """Draws (offset, video start, jitter) so that both windows stay inside the usable source.

    Usable source = [0, min(duration, max_source_sec)]. For an offset Δ the feasible video
    starts are [max(0, −Δ), usable − crop − max(0, Δ)]; ``start_step_sec`` (if set) restricts
    them to multiples of the step (e.g. video frames). The jitter is drawn after the start and
    clipped so that the audio window stays inside too.
    """

    def __init__(
        self,
        offsets_sec: Sequence[float],
        labels: Sequence[int | None],
        crop_sec: float,
        max_source_sec: float | None,
        jitter_sec: float,
        start_step_sec: float | None,
    ) -> None:
        if crop_sec <= 0:
            raise ValueError(f"crop_sec must be > 0, got {crop_sec}")
        self.offsets_sec = tuple(float(o) for o in offsets_sec)
        self.labels = tuple(labels)
        self.crop_sec = float(crop_sec)
        self.max_source_sec = None if max_source_sec is None else float(max_source_sec)
        self.jitter_sec = float(jitter_sec)
        self.start_step_sec = None if start_step_sec is None else float(start_step_sec)

    # -- feasibility --------------------------------------------------------------------
    def usable_sec(self, duration_sec: float) -> float:
        if self.max_source_sec is None:
            return float(duration_sec)
        return min(float(duration_sec), self.max_source_sec)

    def start_range(self, offset_sec: float, usable_sec: float) -> tuple[float, float] | None:
        """Closed range of feasible video starts for ``offset_sec`` (step-aligned), or None."""
        lo = max(0.0, -offset_sec)
        hi = usable_sec - self.crop_sec - max(0.0, offset_sec)
        if self.start_step_sec is not None:
            step = self.start_step_sec
            k_lo, k_hi = math.ceil(lo / step - 1e-6), math.floor(hi / step + 1e-6)
            return (k_lo * step, k_hi * step) if k_lo <= k_hi else None
        return (lo, max(lo, hi)) if hi >= lo - _EPS else None

    def feasible(self, duration_sec: float) -> list[int]:
        """Indices of the candidate offsets that fit in a clip of ``duration_sec``."""
        usable = self.usable_sec(duration_sec)
        return [i for i, o in enumerate(self.offsets_sec) if self.start_range(o, usable) is not None]

    @property
    def min_duration_sec(self) -> float:
        """Shortest usable source for which at least one offset fits."""
        return self.crop_sec + min(abs(o) for o in self.offsets_sec)

    @property
    def full_duration_sec(self) -> float:
        """Shortest usable source for which every offset fits."""
        return self.crop_sec + max(abs(o) for o in self.offsets_sec)

    # -- drawing ------------------------------------------------------------------------
    def sample(self, duration_sec: float, rng: np.random.Generator, *, jitter: bool = True) -> CropPlan:
        """One plan: offset uniform over the candidates (over the feasible ones if it must),
        video start uniform over the feasible starts, audio jitter clipped to stay inside."""
        usable = self.usable_sec(duration_sec)
        i = self._draw_offset(duration_sec, usable, rng)
        offset = self.offsets_sec[i]
        start = self._draw_start(self.start_range(offset, usable), rng)
        shift = self._draw_jitter(start + offset, usable, rng) if jitter else 0.0
        return CropPlan(
            video_start_sec=start, offset_sec=offset, duration_sec=self.crop_sec,
            audio_jitter_sec=shift, label=self.labels[i],
        )

    def _draw_offset(self, duration_sec: float, usable: float, rng: np.random.Generator) -> int:
        i = int(rng.integers(len(self.offsets_sec)))
        if self.start_range(self.offsets_sec[i], usable) is not None:
            return i
        feasible = self.feasible(duration_sec)
        if not feasible:
            raise ClipTooShortError(self._too_short_message(duration_sec, usable))
        return int(feasible[rng.integers(len(feasible))])

    def _draw_start(self, bounds: tuple[float, float], rng: np.random.Generator) -> float:
        lo, hi = bounds
        if self.start_step_sec is None:
            return float(rng.uniform(lo, hi)) if hi > lo else lo
        k_lo, k_hi = round(lo / self.start_step_sec), round(hi / self.start_step_sec)
        return _clean(int(rng.integers(k_lo, k_hi + 1)) * self.start_step_sec, 9)

    def _draw_jitter(self, audio_start: float, usable: float, rng: np.random.Generator) -> float:
        if self.jitter_sec <= 0:
            return 0.0
        j = float(rng.uniform(-self.jitter_sec, self.jitter_sec))
        return float(np.clip(j, -audio_start, usable - self.crop_sec - audio_start))

    def _too_short_message(self, duration_sec: float, usable: float) -> str:
        cap = "" if self.max_source_sec is None else f", capped at max_source_sec={self.max_source_sec}"
        return (
            f"clip of {duration_sec:.3f} s (usable {usable:.3f} s{cap}) is too short: a "
            f"{self.crop_sec} s crop needs at least {self.min_duration_sec:.3f} s for any offset "
            f"and {self.full_duration_sec:.3f} s for all of ±{max(map(abs, self.offsets_sec))} s"
        )


class RandomOffsetSampler(WindowSampler):
    """Training draws on a class grid (SparseSync/Synchformer).

    Defaults follow SparseSync: a 5 s crop inside the first 9 s of the clip, audio jitter
    U[−0.05, 0.05] s. ``start_step_sec`` (e.g. 0.04 = one frame at 25 fps) keeps video starts
    on frame boundaries; None draws them continuously.
    """

    def __init__(
        self,
        grid: OffsetGrid,
        crop_sec: float = 5.0,
        max_source_sec: float | None = 9.0,
        jitter_sec: float = 0.05,
        start_step_sec: float | None = None,
    ) -> None:
        self.grid = grid
        super().__init__(grid.values, range(grid.num_classes), crop_sec, max_source_sec,
                         jitter_sec, start_step_sec)


class RandomFrameShiftSampler(WindowSampler):
    """Training draws of an integer frame shift (AVST, VocaLiST, SyncNet, DiVAS).

    The window is ``window_frames`` frames long, video starts fall on frame boundaries, the
    plan's ``offset_sec`` is ``shift / fps`` and its label is None (these models score every
    candidate shift instead of classifying).
    """

    def __init__(
        self,
        max_shift: int = 15,
        fps: float = 25.0,
        window_frames: int = 5,
        max_source_sec: float | None = None,
        jitter_sec: float = 0.0,
    ) -> None:
        self.shifts = FrameShifts(max_shift)
        self.fps = float(fps)
        self.window_frames = int(window_frames)
        super().__init__(self.shifts.offsets_sec(fps), [None] * len(self.shifts),
                         window_frames / self.fps, max_source_sec, jitter_sec, 1.0 / self.fps)

    def shift_of(self, plan: CropPlan) -> int:
        """The integer frame shift of a plan drawn by this sampler."""
        return seconds_to_frames(plan.offset_sec, self.fps)


class PairShiftSampler(WindowSampler):
    """DiVAS training pairs (§3.1): one video window and one audio window of ``window_frames``
    frames each, anywhere in the clip. The video window starts at a uniform frame; with probability
    ``negative_fraction`` the audio window starts at any *other* frame of the clip, uniformly (a
    shift "as small as 1 video frame and as large as possible, only limited by the clip length"),
    else with the video (in sync). The plan's offset is that shift in seconds (any size; its frame
    count is the label), so a pair model knows which pairs are negatives.
    """

    def __init__(self, fps: float = 25.0, window_frames: int = 5, negative_fraction: float = 0.5,
                 max_source_sec: float | None = None) -> None:
        if not 0.0 <= negative_fraction <= 1.0:
            raise ValueError(f"negative_fraction must be in [0, 1], got {negative_fraction}")
        self.fps, self.window_frames = float(fps), int(window_frames)
        self.negative_fraction = float(negative_fraction)
        super().__init__([0.0], [None], self.window_frames / self.fps, max_source_sec, 0.0, 1.0 / self.fps)

    def sample(self, duration_sec: float, rng: np.random.Generator, *, jitter: bool = True) -> CropPlan:
        usable = self.usable_sec(duration_sec)
        starts = int(math.floor(usable * self.fps + 1e-6)) - self.window_frames + 1  # window starts in the clip
        if starts < 1:
            raise ClipTooShortError(self._too_short_message(duration_sec, usable))
        video = int(rng.integers(starts))
        audio = video
        if starts > 1 and rng.random() < self.negative_fraction:
            audio = int(rng.integers(starts - 1))
            audio += audio >= video  # any start but the video's
        return CropPlan(video_start_sec=_clean(video / self.fps, 9), offset_sec=_clean((audio - video) / self.fps, 9),
                        duration_sec=self.crop_sec)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Generator for training item ``index`` in ``epoch``.

    A pure function of (seed, epoch, index): draws change every epoch, are reproducible, and
    never repeat across DataLoader workers or DDP ranks (each index is fetched once per epoch,
    whichever process fetches it). The data set must get ``epoch`` from the trainer, not count it.
    """
    return np.random.default_rng([int(seed), int(epoch), int(index)])


# --------------------------------------------------------------------------------------------
# Fixed evaluation offsets
# --------------------------------------------------------------------------------------------
def stable_hash(key: str) -> int:
    """64-bit hash of a string that does not depend on PYTHONHASHSEED (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


_MEDIA_EXT = re.compile(r"\.(mp4|mkv|avi|mov|webm|m4v|flv|wav|flac|mp3|aac|m4a|ogg|npy|npz|pt|txt)$", re.I)
_LRS3_SPLITS = {"pretrain", "trainval", "test"}
_VGGSOUND_NAME = re.compile(r"^.{11}_\d+_\d+$")  # <ytid>_<start_ms>_<end_ms>


def key_for(path: str | Path, root: str | Path | None = None) -> str:
    """Clip id used as the key of :class:`FixedOffsets`: dataset root and extension removed.

    The official CSV keys are ``<split>/<ytid>/<utt>`` for LRS3 (``pretrain/C8zY0oAdQrs/00018``)
    and ``<ytid>_<start_ms>_<end_ms>`` for VGGSound; LRS2 file lists use ``<video_id>/<utt>``.
    With ``root`` the path is taken relative to it; otherwise these layouts are recognised
    anywhere in the path. Anything else keeps its whole path (minus extension and leading
    ``/`` / ``./``). Idempotent: ``key_for(key_for(p)) == key_for(p)``.
    """
    p = Path(path).as_posix()
    if root is not None:
        p = Path(p).relative_to(Path(root).as_posix()).as_posix()
    p = _MEDIA_EXT.sub("", p)
    parts = [c for c in p.split("/") if c not in ("", ".")]
    return "/".join(_recognised_tail(parts))


def _recognised_tail(parts: list[str]) -> list[str]:
    """Trailing path components that form the clip id of a known dataset layout."""
    if not parts:
        raise ValueError("empty clip path")
    if len(parts) >= 3:
        split = parts[-3]
        lrs2_pretrain = split == "pretrain" and len(parts) >= 4 and parts[-4] == "mvlrs_v1"
        if split == "main" or lrs2_pretrain:
            return parts[-2:]  # LRS2: <video_id>/<utt>
        if split in _LRS3_SPLITS:
            return parts[-3:]  # LRS3: <split>/<ytid>/<utt>
    if _VGGSOUND_NAME.match(parts[-1]):
        return parts[-1:]
    return parts


def _plan_rng(seed: int, key: str, i: int) -> np.random.Generator:
    """Generator of plan ``i`` of clip ``key``: a pure function of (seed, key, i)."""
    entropy = [int(seed), stable_hash(key)] + ([int(i)] if i else [])
    return np.random.default_rng(entropy)


class FixedOffsets:
    """Validation/test crop plans, fixed per clip key.

    A plan depends only on (seed, key) — or on the CSV row — so it is identical across epochs,
    DataLoader workers, DDP ranks, key order and processes. Keys are normalised with
    :func:`key_for`, so a data set may look clips up by relative id or by file path.

    Each clip holds one plan or more (the sparse-clean CSV has several rows per video). Plan
    ``i`` of a clip is the stored one when there is one, else a draw from
    ``default_rng([seed, stable_hash(key), i])`` — Synchformer's protocol re-samples offsets
    several times per test clip (2 for LRS3, 25 for VGGSound-Sparse): see :meth:`plans_for`
    and :meth:`resample`.
    """

    def __init__(
        self,
        plans: Mapping[str, Sequence[CropPlan]],
        *,
        seed: int = 0,
        sampler: WindowSampler | None = None,
        durations: Mapping[str, float] | None = None,
    ) -> None:
        self._plans: dict[str, tuple[CropPlan, ...]] = {}
        for key, clip_plans in plans.items():
            norm = key_for(key)
            if norm in self._plans:
                raise ValueError(f"two keys normalise to {norm!r} (the second is {key!r})")
            self._plans[norm] = tuple(clip_plans)
        self.seed = int(seed)
        self.sampler = sampler
        self._durations = {key_for(k): float(d) for k, d in (durations or {}).items()}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_seed(cls, keys_and_durations: Mapping[str, float], sampler: WindowSampler,
                  seed: int) -> "FixedOffsets":
        """One plan per clip, drawn without jitter from ``default_rng([seed, stable_hash(key)])``."""
        durations = {key_for(k): float(d) for k, d in keys_and_durations.items()}
        plans = {k: (_draw_plan(sampler, d, seed, k, 0),) for k, d in durations.items()}
        return cls(plans, seed=seed, sampler=sampler, durations=durations)

    @classmethod
    def from_csv(cls, path: str | Path, grid: OffsetGrid | None, duration_sec: float = 5.0,
                 *, key_column: str | None = None, seed: int = 0) -> "FixedOffsets":
        """Plans from an official fixed-offset file (``path,offset_sec,vstart_sec``).

        The key is the ``path`` column — a relative clip id without extension, e.g.
        ``pretrain/-MTRxRO5SRA/00002`` (LRS3) or ``---g-f_I2yQ_1000_11000`` (VGGSound) — or the
        ``video_id`` column in files that have no ``path`` (VGGSound-Sparse clean). With a grid
        every offset must lie on it (the label is its class); with None labels are None.
        """
        plans: dict[str, list[CropPlan]] = {}
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            column = key_column or _key_column(reader.fieldnames or [], path)
            for row in reader:
                plan = _plan_from_row(row, grid, duration_sec)
                plans.setdefault(key_for(row[column]), []).append(plan)
        return cls(plans, seed=seed)

    # -- lookup -------------------------------------------------------------------------
    def __getitem__(self, key: str) -> CropPlan:
        plans = self._plans[key_for(key)]
        if len(plans) > 1:
            raise ValueError(f"clip {key!r} has {len(plans)} plans; use plans_for(key) or items()")
        return plans[0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, (str, Path)) and key_for(key) in self._plans

    def __len__(self) -> int:
        return len(self._plans)

    def __iter__(self) -> Iterator[str]:
        return iter(self._plans)

    def keys(self) -> list[str]:
        return list(self._plans)

    def items(self) -> Iterator[tuple[str, CropPlan]]:
        """Every (key, plan) pair, clips in stored order, a clip's plans in order."""
        for key, plans in self._plans.items():
            for plan in plans:
                yield key, plan

    # -- re-sampling (Synchformer protocol) ---------------------------------------------
    def plans_for(self, key: str, n: int | None = None) -> list[CropPlan]:
        """Plans 0..n−1 of a clip (all stored plans when n is None); deterministic in (seed, key, i)."""
        norm = key_for(key)
        stored = self._plans[norm]
        if n is None:
            return list(stored)
        extra = [self._draw(norm, i) for i in range(len(stored), n)]
        return list(stored[:n]) + extra

    def resample(self, n: int, seed: int | None = None, *, sampler: WindowSampler | None = None,
                 durations: Mapping[str, float] | None = None) -> "FixedOffsets":
        """Copy holding n plans per clip: stored plans kept, the rest drawn from (seed, key, i).

        CSV-built objects know no source durations: pass ``sampler`` and ``durations`` here.
        """
        fresh = FixedOffsets(
            self._plans, seed=self.seed if seed is None else seed,
            sampler=sampler or self.sampler, durations={**self._durations, **(durations or {})},
        )
        return FixedOffsets({k: fresh.plans_for(k, n) for k in fresh}, seed=fresh.seed,
                            sampler=fresh.sampler, durations=fresh._durations)

    def _draw(self, key: str, i: int) -> CropPlan:
        if self.sampler is None or key not in self._durations:
            raise ValueError(f"cannot draw plan {i} of {key!r}: no sampler/duration known "
                             "(pass them to resample())")
        return _draw_plan(self.sampler, self._durations[key], self.seed, key, i)


def _draw_plan(sampler: WindowSampler, duration: float, seed: int, key: str, i: int) -> CropPlan:
    return sampler.sample(duration, _plan_rng(seed, key, i), jitter=False)


def _key_column(fieldnames: Sequence[str], path: str | Path) -> str:
    for name in ("path", "video_id"):
        if name in fieldnames:
            return name
    raise ValueError(f"{path}: no 'path' or 'video_id' column in {list(fieldnames)}")


def _plan_from_row(row: Mapping[str, str], grid: OffsetGrid | None, duration_sec: float) -> CropPlan:
    offset = float(row["offset_sec"])
    return CropPlan(
        video_start_sec=float(row["vstart_sec"]), offset_sec=offset, duration_sec=duration_sec,
        label=None if grid is None else grid.class_of(offset),
    )

"""Decoded, cropped audio-visual examples with offset labels (:class:`AVClipDataset`).

One example::

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

The offset label follows the one convention of docs/conventions.md (Δ > 0: the audio leads, its
window starts Δ later in the source than the video window). Which windows an item holds comes from
an injected clip sampler (:class:`avsync.offsets.WindowSampler`) in training and from fixed plans
in evaluation.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from avsync.inputs import InputSpec
from avsync.media import MediaError, read_clip
from avsync.media.checks import is_silent, is_still
from avsync.offsets import ClipTooShortError, CropPlan, FixedOffsets, WindowSampler, get_grid, seconds_to_frames, stable_hash

from .augment import Augmentations, upscale
from .bad_media import BadMediaReport
from .face_boxes import crop_faces, read_face_boxes, window_boxes
from .records import ClipRecord, class_index_of

__all__ = ["AVClipDataset"]


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
            "class_index": class_index_of(record),
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

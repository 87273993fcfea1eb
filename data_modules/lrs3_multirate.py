"""LRS3-multfps delivered at its clips' own frame rates (DiVAS Table 2 at full scale).

:class:`~.lrs3.LRS3DataModule` (``variant="multfps"``) lists LRS3 clips at their original rates but
decodes them all at the model's one rate. This module groups them by native rate into buckets and
delivers each bucket at its own rate with ``fps``-tagged batches, exactly as the toy plan's
:class:`~.multirate.MultiRateToyDataModule` does (the shared logic is
:class:`~.multirate.MultiRateDataModule`): a training step gets ``{"24": batch, "25": batch,
"30": batch}``, validation and test one loader per rate.

Buckets: a clip belongs to the bucket of the split's rates within ``rate_tolerance`` (relative,
1 %) of its probed average frame rate, so with the defaults 23.976 and 24 → 24, 25 → 25,
29.97 and 30 → 30, 59.94 and 60 → 60. A clip of a split at a rate that none of the split's
buckets takes (e.g. 50 fps) is left out and counted in ``dropped[<rate>][split]
["rate_outside_buckets"]`` (of the split's lowest bucket).

Exact vs nominal rates: every clip of a bucket is decoded at the bucket's *nominal* rate (24, 30,
60), and its batches say so (``fps``). The decoder picks the source frame nearest to each output
time ``start + i / 30`` (:mod:`avsync.media.decode`), so a 29.97 fps clip read at 30 fps gives its
own frames in order, one shown twice where the two time grids slip (every 1001 frames, ≈ 33 s;
≈ 42 s at 23.976): the frames' timing drifts by at most 2 ms (0.1 %) over a 2 s window, well under
a frame. Audio is cut in seconds, sample-exact, and a label of k frames means k / nominal
seconds, so labels and the time-aware positions stay consistent. Decoding at the exact rates instead would put two rates
into one bucket (a batch must hold one rate) or need seven buckets for four nominal rates.

Splits: the clip listing, split files, the seeded by-video split, the 9 s filter, missing-clip
counting, probing and the bad-media report are :class:`~.lrs3.LRS3DataModule`'s (one child per
rate, all sharing one listing, one probe cache and one report). Clips up to 30 fps form train /
valid / test (8:1:1 by video id); clips above 30 fps are held out: never trained or validated on
(``train_rates`` / ``val_rates`` above 30 fps are refused), and a test rate above 30 fps (60)
tests on *all* of them (``high_fps_test``: DiVAS's separate 59.94 / 60 fps test split). A corrupt
clip (no rate, no duration) is listed once per split, in the split's lowest bucket, where the
shared data layer reports it in ``bad_media.tsv`` and skips it.
"""
from __future__ import annotations

import logging
from typing import Sequence

from avsync.inputs import InputSpec

from .lrs3 import LRS3_VARIANTS, MAX_NORMAL_FPS, LRS3DataModule
from .multirate import MultiRateDataModule
from .records import ClipRecord

__all__ = ["MultiRateLRS3DataModule", "nearest_rate"]

log = logging.getLogger(__name__)


def nearest_rate(fps: float, rates: Sequence[float], tolerance: float) -> float | None:
    """The rate of ``rates`` within ``tolerance`` (relative) of ``fps``, None when there is none."""
    near = [r for r in rates if abs(fps - r) <= tolerance * r]
    return min(near, key=lambda r: abs(fps - r)) if near else None


class _RateLRS3DataModule(LRS3DataModule):
    """The LRS3 clips whose native rate falls in the bucket of ``rate`` (see the module docstring);
    set up by the parent, which also says which splits it serves."""

    def __init__(self, rate: float, split_rates: dict[str, tuple[float, ...]], rate_tolerance: float,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.split_rates, self.rate_tolerance = split_rates, float(rate_tolerance)
        self.keeps_unknown: set[str] = set()   # splits whose unreadable clips this bucket reports
        self.counts_outside: set[str] = set()  # splits whose out-of-bucket clips this bucket counts
        self._outside: dict[str, int] = {}

    def share_listing(self, other: "_RateLRS3DataModule") -> None:
        """Use ``other``'s directory listing, probe caches and missing-clip log (sibling buckets of
        one data set scan and probe it once)."""
        self._listing, self._probe_caches, self._missing = other._listing, other._probe_caches, other._missing

    def list_records(self, split: str) -> list[ClipRecord]:
        records = super().list_records(split)
        rels = {r.key: str(r.path.relative_to(self.data_dir)) for r in records}
        native = self.probe_cache(self.data_dir).frame_rates(rels.values())
        kept, outside = [], 0
        for record in records:
            fps = native.get(rels[record.key])
            if fps is None:  # unreadable: the base filter reports it (once, here)
                if split in self.keeps_unknown:
                    kept.append(record)
                continue
            bucket = nearest_rate(fps, self.split_rates[split], self.rate_tolerance)
            if bucket == self.rate:
                kept.append(record)
            elif bucket is None:
                outside += 1
        self._outside[split] = outside if split in self.counts_outside else 0
        return kept

    def filter_records(self, split: str, records) -> list[ClipRecord]:
        records = super().filter_records(split, records)
        outside = self._outside.get(split, 0)
        if outside:
            self.dropped[split]["rate_outside_buckets"] = outside
            log.warning("%s: left out %d clip(s) at rates outside the buckets %s fps (±%g %%)", split, outside,
                        [f"{r:g}" for r in self.split_rates[split]], 100 * self.rate_tolerance)
        return records


class MultiRateLRS3DataModule(MultiRateDataModule):
    """LRS3-multfps, one bucket per frame rate, each delivered at its rate; see the module docstring.

    Args:
        root: folder holding the LRS3 variant folders (or the variant folder itself).
        train_rates / val_rates / test_rates: nominal rates of each split's buckets (None for val /
            test: the training rates). Rates above 30 fps are for testing only.
        input_spec: what the model consumes (None: the attached model's); ``fps`` is replaced by
            each bucket's rate.
        rate_tolerance: relative distance of a clip's native rate from its bucket's (1 %).
        variant, variant_dir, split_files, subset_splits, split_seed, split_ratios, subsets,
        min_duration_sec, stratify_rates: :class:`~.lrs3.LRS3DataModule`'s. The ``full_frame`` and ``face_crop``
            folders are all 25 fps: use ``train_rates: [25]`` with them.
        batch_size, num_workers, eval_whole_clips, ...: :class:`~.base.AVSyncDataModule`'s, per bucket (a training
            step holds one batch of every training rate).

    After ``setup``: ``dropped[<rate>][split]`` (the filters' counts per bucket), ``missing``,
    ``report`` (the shared bad-media report) and :meth:`clips_per_rate`.
    """

    def __init__(
        self,
        root: str | None = None,
        train_rates: Sequence[float] = (24.0, 25.0, 30.0),
        val_rates: Sequence[float] | None = None,
        test_rates: Sequence[float] | None = None,
        input_spec: InputSpec | None = None,
        rate_tolerance: float = 0.01,
        variant: str = "multfps",
        variant_dir: str | None = None,
        split_files: dict[str, str] | None = None,
        subset_splits: dict[str, list[str]] | None = None,
        split_seed: int = 1337,
        split_ratios: tuple[float, float, float] = (8.0, 1.0, 1.0),
        subsets: tuple[str, ...] = ("pretrain",),
        min_duration_sec: float | None = 9.0,
        batch_size: int = 8,
        num_workers: int = 2,
        seed: int = 1337,
        max_source_sec: float | None = 9.0,
        audio_jitter_sec: float = 0.05,
        fixed_offsets_csv: dict[str, str] | None = None,
        eval_plans_per_clip: int = 1,
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
        eval_whole_clips: bool = False,
        whole_clip_min_sec: float = 0.2,
        train_pair_negatives: float | None = None,
        stratify_rates: bool = False,
    ) -> None:
        super().__init__(train_rates, val_rates, test_rates, input_spec)
        if variant not in LRS3_VARIANTS:
            raise ValueError(f"unknown LRS3 variant {variant!r}; expected one of {sorted(LRS3_VARIANTS)}")
        seen = [r for split in ("train", "valid") for r in self.rates[split] if r > MAX_NORMAL_FPS]
        if seen:
            raise ValueError(f"train_rates / val_rates {sorted(set(seen))} are above 30 fps: LRS3-multfps keeps its "
                             "59.94 / 60 fps clips as a separate test split (DiVAS), use them in test_rates only")
        if not 0 < rate_tolerance < 0.02:
            raise ValueError(f"rate_tolerance must be in (0, 0.02) (23.976 vs 24 is 0.1 %, 24 vs 25 is 4 %), "
                             f"got {rate_tolerance}")
        rates = self.all_rates
        close = [(a, b) for a, b in zip(rates, rates[1:]) if b - a <= rate_tolerance * (a + b)]
        if close:
            raise ValueError(f"rates {close} are within rate_tolerance={rate_tolerance} of each other: "
                             "their buckets would overlap")
        shared = dict(root=root, variant=variant, variant_dir=variant_dir, split_files=split_files,
                      subset_splits=subset_splits, split_seed=split_seed, split_ratios=split_ratios,
                      subsets=subsets, min_duration_sec=min_duration_sec, batch_size=batch_size,
                      num_workers=num_workers, seed=seed, max_source_sec=max_source_sec,
                      audio_jitter_sec=audio_jitter_sec, fixed_offsets_csv=fixed_offsets_csv,
                      eval_plans_per_clip=eval_plans_per_clip, pin_memory=pin_memory,
                      persistent_workers=persistent_workers, skip_list=skip_list, report_dir=report_dir,
                      cache_decoded=cache_decoded, probe_cache_dir=probe_cache_dir, probe_workers=probe_workers,
                      reject_silent=reject_silent, reject_still=reject_still, face_box_scale=face_box_scale,
                      eval_whole_clips=eval_whole_clips, whole_clip_min_sec=whole_clip_min_sec,
                      train_pair_negatives=train_pair_negatives, stratify_rates=stratify_rates)
        first = None
        for rate in rates:
            child = _RateLRS3DataModule(rate, self.rates, rate_tolerance, high_fps_test=rate > MAX_NORMAL_FPS, **shared)
            if first is None:
                first = child
            else:  # one directory scan, one probe cache, one missing-clip log for all buckets
                child.share_listing(first)
            self.add_child(rate, child)
        for split, split_rates in self.rates.items():
            self.children_by_rate[min(split_rates)].keeps_unknown.add(split)
            for high in (False, True):
                group = [r for r in split_rates if (r > MAX_NORMAL_FPS) == high]
                if group:
                    self.children_by_rate[min(group)].counts_outside.add(split)

    @property
    def root(self) -> str | None:
        return next(iter(self.children_by_rate.values())).root

    @property
    def data_dir(self):
        return next(iter(self.children_by_rate.values())).data_dir

    @property
    def missing(self) -> dict[str, int]:
        """Per split: clips its split file names that are not on disk."""
        return next(iter(self.children_by_rate.values())).missing

    @property
    def dropped(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{"24": {split: {reason: count}}, ...}``: what each bucket's filters left out."""
        return {f"{rate:g}": child.dropped for rate, child in self.children_by_rate.items()}

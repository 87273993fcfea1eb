"""Whole-clip evaluation: every test clip delivered entire, so a score-search model scores every
window of it (AVST §4.2.1 "densely"; DiVAS §4.1: all W = L − F + 1 windows of a clip of L frames).

A plan keeps the clip's whole length: in sync, video and audio both start at 0 and run over the
clip's whole frames; at an artificial offset of d frames (d > 0: the audio leads) the audio starts
d frames after the video (or the video |d| frames after the audio) and both run over the L − |d|
frames they share. The offset is drawn uniformly from every d in ±max_shift for every clip, so a
short clip gets the same offset range as a long one; a clip too short for a window plus the largest
offset (or, in sync, for one window) is left out and reported, never given a narrower range.

Clips differ in length, so an evaluation batch keeps ``video`` and ``audio`` as lists of tensors
(:func:`whole_clip_collate`); the score-search models evaluate clip by clip anyway.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from torch.utils.data import default_collate

from avsync.offsets import CropPlan, FixedOffsets, key_for, stable_hash

from .clip_dataset import AVClipDataset

__all__ = ["WholeClipDataset", "whole_clip_plans", "whole_clip_frames", "whole_clip_collate", "WHOLE_CLIP_MODES"]

WHOLE_CLIP_MODES = ("in_sync", "random", "both")


def whole_clip_frames(duration_sec: float, fps: float) -> int:
    """Whole frames of a clip at ``fps`` (a frame counts when it is entirely inside the clip)."""
    return int(math.floor(float(duration_sec) * float(fps) + 1e-6))


def _plan(frames: int, shift: int, fps: float) -> CropPlan:
    return CropPlan(video_start_sec=max(0, -shift) / fps, offset_sec=shift / fps,
                    duration_sec=(frames - abs(shift)) / fps)


def whole_clip_plans(durations: Mapping[str, float], fps: float, max_shift: int, mode: str, seed: int,
                     min_frames: int) -> tuple[FixedOffsets, list[str]]:
    """Fixed whole-clip plans of every clip long enough for ``mode``, and the keys of those that are not.

    ``mode``: ``in_sync`` (one plan, offset 0; needs ``min_frames``), ``random`` (one plan at a
    seeded offset uniform in ±max_shift; needs ``min_frames + max_shift``) or ``both`` (the two, in
    that order). The offset of a clip depends only on (seed, key).
    """
    if mode not in WHOLE_CLIP_MODES:
        raise ValueError(f"mode must be one of {WHOLE_CLIP_MODES}, got {mode!r}")
    need = int(min_frames) + (0 if mode == "in_sync" else int(max_shift))
    plans, short = {}, []
    for key, duration in durations.items():
        frames = whole_clip_frames(duration, fps)
        if frames < need:
            short.append(key)
            continue
        rng = np.random.default_rng([int(seed), stable_hash(key_for(key)), 7])
        shift = int(rng.integers(-max_shift, max_shift + 1))
        chosen = {"in_sync": (0,), "random": (shift,), "both": (0, shift)}[mode]
        plans[key] = tuple(_plan(frames, d, fps) for d in chosen)
    return FixedOffsets(plans, seed=seed), short


class WholeClipDataset(AVClipDataset):
    """Evaluation items that span their plan's ``duration_sec`` (the clip's shared length), not the spec's."""

    def item_duration(self, plan: CropPlan) -> float:
        return float(plan.duration_sec)


def whole_clip_collate(items: list[dict]) -> dict:
    """A batch of clips of different lengths: ``video`` / ``audio`` lists, everything else collated."""
    rest = default_collate([{k: v for k, v in item.items() if k not in ("video", "audio")} for item in items])
    rest["video"] = [item["video"] for item in items]
    rest["audio"] = [item["audio"] for item in items]
    return rest

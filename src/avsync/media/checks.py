"""Is there anything to synchronise? Checks on decoded frames and audio, shared by the data modules,
``avsync detect`` and ``avsync score``.

A model asked for the offset of a silent clip, a still picture or a clip shorter than its window
still answers with an offset, and that answer means nothing. These checks say so instead, with a
reason code that every report (CSV, JSON) can carry.
"""
from __future__ import annotations

import numpy as np

__all__ = ["REASONS", "is_silent", "is_still", "unsynchronisable_reason"]

# the reason codes, in the order they are tested
REASONS = ("too_short", "silent_audio", "still_video")
# median |sample-to-sample change| below this (about -100 dB): no sound to synchronise to. A peak
# test misses DC that went through AAC, which rings at frame edges but is flat in between.
SILENCE_STEP = 1e-5
# a picture is still when in every frame 99.9 % of the pixel values stay within this many uint8
# levels of the first frame. A still image's frames drift from it by lossy coding alone (measured:
# up to 10 levels at the 99.9th percentile, a 1.9 level mean, for a noise picture through x264),
# while any moving content changes some region by far more (the real LRS3 / VGGSound fixtures:
# 99th percentile 100-180 levels within 5 s).
STILL_LEVEL = 16
STILL_QUANTILE = 99.9


def is_silent(audio) -> bool:
    """True for digital silence and for constant (DC) audio, at any sample rate."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    return len(audio) < 2 or float(np.median(np.abs(np.diff(audio)))) < SILENCE_STEP


def is_still(frames) -> bool:
    """True when no region of any frame differs visibly from the first (a still image, a frozen
    stream), compression drift aside."""
    frames = np.asarray(frames)
    if len(frames) < 2:
        return True
    first = frames[0].astype(np.int16)
    return all(np.percentile(np.abs(f.astype(np.int16) - first), STILL_QUANTILE) < STILL_LEVEL
               for f in frames[1:])


def unsynchronisable_reason(frames, audio, sample_rate: int, min_seconds: float,
                            fps: float | None = None) -> str | None:
    """The first reason in ``REASONS`` that the clip cannot be synchronised, or None.

    ``frames``: (T, H, W, C) uint8 (numpy or torch), ``audio``: mono (S,) at ``sample_rate``;
    ``min_seconds``: the shortest usable clip (a model's window); with ``fps`` the frames must
    cover it too, otherwise the audio alone is measured.
    """
    seconds = len(audio) / float(sample_rate)
    if fps:
        seconds = min(seconds, len(frames) / float(fps))
    if seconds + 1e-6 < min_seconds or len(frames) == 0 or len(audio) == 0:
        return "too_short"
    if is_silent(audio):
        return "silent_audio"
    if is_still(frames):
        return "still_video"
    return None

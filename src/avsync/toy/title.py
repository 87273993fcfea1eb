"""Long toy "titles" with a known sync defect: a constant offset, a drift, or anything in between.

The toy content is a function of continuous time (:mod:`avsync.toy.signals`), so an offset that
changes along the title is injected exactly by evaluating the audio at warped times: the audio
heard at title time τ is the content made at τ + Δ(τ), i.e. it leads the picture by Δ(τ)
(docs/conventions.md sign). Used to test the title-level report end to end on real mp4 files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from avsync.media import write_mp4
from avsync.toy.render import ToyClip, render_dense

__all__ = ["render_title", "write_title"]


def render_title(duration_sec: float, offset_ms: Callable[[np.ndarray], np.ndarray], *, fps: float = 25.0,
                 size: int = 32, sample_rate: int = 16000, seed: int = 0) -> ToyClip:
    """A talking-head title whose audio leads the picture by ``offset_ms(t)`` at title time t (s)."""
    rng = np.random.default_rng(seed)
    t_video = np.arange(round(duration_sec * fps)) / fps
    t_audio = np.arange(round(duration_sec * sample_rate)) / sample_rate
    warped = t_audio + np.asarray(offset_ms(t_audio), dtype=np.float64) / 1000.0
    frames, audio, meta = render_dense(rng, t_video, warped, (size, size), sample_rate, duration_sec)
    frames = (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
    return ToyClip(frames, audio.astype(np.float32), float(fps), int(sample_rate), {"variant": "dense", **meta})


def write_title(path: str | Path, duration_sec: float, offset_ms: Callable[[np.ndarray], np.ndarray],
                **kwargs) -> Path:
    """Render with :func:`render_title` and write an H.264/AAC mp4."""
    clip = render_title(duration_sec, offset_ms, **kwargs)
    return write_mp4(path, clip.frames, clip.fps, clip.audio, clip.sample_rate, preset="ultrafast")

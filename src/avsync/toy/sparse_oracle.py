"""An offset oracle for the sparse toy set: is the offset recoverable from pixels and samples?

A learned model can only beat chance on a toy set whose offset is actually in the inputs it
sees. This oracle uses what it knows about how :func:`avsync.toy.render.render_sparse` draws a
clip — nothing the model does not see:

* video: the small object *reacts* to each sound (turns towards white, swells, hops) and decays
  in ~0.07 s, while the distractors only move smoothly or switch colour (a step that stays). A
  per-pixel *transient* — brightness at frame t above both frames t - 2 and t + 2 — fires on a
  reaction and not on a step or a smooth motion; its maximum over the frame is the visual event
  signal v(t);
* audio: every impact starts with a 2 ms attack over ambient noise 20-28 dB below it; the rise
  of the per-frame log-RMS (at the video frame rate) is the audio onset signal a(t).

For each candidate offset Δ of the grid it correlates v over the video window with a over the
audio window shifted by Δ (Pearson over the window) and picks the best; the frames are first
reduced to the model's input resolution (block mean), so the test is at the toy resolution.
It never looks at the clip's metadata.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avsync.offsets import RandomOffsetSampler, get_grid

SMOOTH_FRAMES = 2  # half-width of the triangular smoothing of both event signals
TRANSIENT_LAG = 2  # frames either side the reaction has decayed by (exp(-0.08 / 0.07) ~ 0.3)


def downsample(frames: np.ndarray, size: int) -> np.ndarray:
    """Block-mean (T, H, W, C) uint8/float frames to (T, size, size) brightness in [0, 1]."""
    x = frames.astype(np.float32)
    if x.max() > 1.5:
        x /= 255.0
    t, h, w = x.shape[:3]
    if h % size or w % size:
        raise ValueError(f"frame size {h}x{w} is not a multiple of {size}")
    x = x.mean(-1).reshape(t, size, h // size, size, w // size).mean((2, 4))
    return x


def visual_events(brightness: np.ndarray, lag: int = TRANSIENT_LAG) -> np.ndarray:
    """v(t): the largest per-pixel brightness transient of frame t over frames t - lag and t + lag."""
    b = np.pad(brightness, ((lag, lag), (0, 0), (0, 0)), mode="edge")
    mid = b[lag:-lag]
    transient = mid - np.maximum(b[: -2 * lag], b[2 * lag:])
    return np.clip(transient, 0, None).reshape(len(mid), -1).max(1)


def audio_onsets(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """a(t): the rise of log-RMS from frame period t - 1 to t (the audio of frame period t is [t, t+1) / fps)."""
    per = int(round(sample_rate / fps))
    a = np.zeros(n_frames * per, np.float32)
    n = min(len(audio), len(a))
    a[:n] = audio[:n]
    rms = np.sqrt((a.reshape(n_frames, per) ** 2).mean(1) + 1e-10)
    log = np.log(rms)
    return np.clip(np.diff(log, prepend=log[:1]), 0, None)


def _smooth(x: np.ndarray, half_width: int = SMOOTH_FRAMES) -> np.ndarray:
    """Triangular smoothing: a reaction is drawn on the first frame at or after the impact, so
    the two signals' peaks can be a frame apart; spikes that miss by a frame correlate at 0."""
    k = np.concatenate([np.arange(1, half_width + 2), np.arange(half_width, 0, -1)]).astype(np.float32)
    return np.convolve(x, k / k.sum(), mode="same")


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    d = np.linalg.norm(x) * np.linalg.norm(y)
    return float((x * y).sum() / d) if d > 1e-12 else 0.0


def predict_offset(v: np.ndarray, a: np.ndarray, fps: float, candidates: tuple[float, ...]) -> int:
    """Index of the candidate offset under which the video window's events line up best with the
    audio window's onsets.

    ``v`` and ``a`` are the event signals of the two windows the model gets (same length); under
    offset Δ the audio at window time u was heard at video window time u + Δ, so the two overlap
    on n - |Δ| frames, where they are correlated. Ties (no event in the overlap) go to the first
    best candidate, i.e. a guess."""
    v, a = _smooth(v), _smooth(a)
    n = len(v)
    scores = []
    for off in candidates:
        k = int(round(off * fps))
        if abs(k) > n - 3:
            scores.append(-np.inf)
            continue
        vv, aa = (v[k:], a[:n - k]) if k >= 0 else (v[:n + k], a[-k:])
        scores.append(_pearson(vv, aa))
    return int(np.argmax(scores))


@dataclass
class OracleResult:
    length_sec: float
    num_classes: int
    n: int
    acc: float  # exact class
    acc_tol: float  # within +-1 class
    chance: float
    chance_tol: float


def oracle_accuracy(clips, length_sec: float, num_classes: int, size: int = 32, draws_per_clip: int = 4,
                    max_source_sec: float = 10.0, seed: int = 0) -> OracleResult:
    """Oracle accuracy over ``clips`` (ToyClip-like: frames, audio, fps, sample_rate) at one input length.

    Each clip gives ``draws_per_clip`` windows drawn as in training (RandomOffsetSampler: offset
    uniform on the grid, video start uniform over the feasible starts on the frame grid)."""
    grid = get_grid(num_classes)
    sampler = RandomOffsetSampler(grid, crop_sec=length_sec, max_source_sec=max_source_sec, jitter_sec=0.0,
                                  start_step_sec=None)
    rng = np.random.default_rng(seed)
    hit = tol = n = 0
    for clip in clips:
        fps = float(clip.fps)
        small = downsample(clip.frames, size)
        duration, frames = len(small) / fps, int(round(length_sec * fps))
        per = int(round(clip.sample_rate / fps))
        for _ in range(draws_per_clip):
            plan = sampler.sample(duration, rng, jitter=False)
            i0 = int(round(plan.video_start_sec * fps))  # frame boundaries
            j0 = int(round((plan.video_start_sec + plan.offset_sec) * fps))
            v = visual_events(small[i0:i0 + frames])  # only the two windows the model gets
            a = audio_onsets(clip.audio[j0 * per:(j0 + frames) * per], clip.sample_rate, fps, frames)
            k = predict_offset(v, a, fps, grid.values)
            hit += k == plan.label
            tol += abs(k - plan.label) <= 1
            n += 1
    edge = 2 / num_classes  # the end classes have one neighbour only
    chance_tol = min(1.0, 3 / num_classes - edge / num_classes) if num_classes > 3 else 1.0
    return OracleResult(length_sec, num_classes, n, hit / n, tol / n, 1 / num_classes, chance_tol)

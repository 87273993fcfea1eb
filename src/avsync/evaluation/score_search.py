"""Score search: the evaluation protocol of the pair-scoring models (AVST, VocaLiST, SyncNet, DiVAS).

These models do not classify an offset; they score how well one short visual window and one audio
window belong together. The offset of a clip is found by *searching*: every visual window is
scored against the audio cut at each candidate frame offset d in [−max_shift, +max_shift], and the
best-scoring d wins (SyncNet, AVST §4, VocaLiST §3.3, DiVAS §3.3 "distance matrix").

Sign (docs/conventions.md): d > 0 means the audio leads. In such a clip the audio heard at clip time τ was
made at source time τ + d, so the audio that matches the picture at frame t lies at frame t − d:
candidate d cuts the audio window at frame ``t − d``.

* :func:`shift_scores` — the W x O matrix of scores (W visual windows, O = 2·max_shift+1
  candidates); all O candidates of a window go through one batched ``pair_scores`` call.
* :func:`predict_offsets` — context averaging (VocaLiST: per-offset scores averaged over c
  consecutive windows; c = W gives one clip-level prediction as in SyncNet/DiVAS), argmax, and
  SyncNet's confidence (median − min of the distances = max − median of the scores).
"""
from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from avsync.offsets import FrameShifts

__all__ = ["PairScorer", "ClipTooShortForSearch", "shift_scores", "predict_offsets", "clip_answers",
           "window_samples", "frame_start_sample"]


class PairScorer(Protocol):
    """What a score-search model provides."""

    def pair_scores(self, frames: Tensor, wav: Tensor) -> Tensor:
        """uint8 frames (N, window_frames, H, W, 3) and float audio (N, window_samples) -> (N,)
        scores, higher = more in sync (distance models return −distance). The model applies its
        own input transforms (normalisation, spectrograms) inside."""
        ...


class ClipTooShortForSearch(ValueError):
    """The clip cannot hold one visual window plus the audio of every candidate offset."""


def window_samples(window_frames: int, fps: float, sample_rate: int) -> int:
    """Audio samples covering ``window_frames`` video frames."""
    return int(round(window_frames / float(fps) * sample_rate))


def frame_start_sample(frame: Tensor, fps: float, sample_rate: int) -> Tensor:
    """Sample index where video frame ``frame`` starts (frames may be fractional or negative)."""
    return torch.round(frame.double() / float(fps) * sample_rate).long()


def shift_scores(scorer: PairScorer, frames: Tensor, wav: Tensor, *, fps: float, sample_rate: int,
                 window_frames: int, max_shift: int = 15, stride: int = 1, batch_windows: int = 1,
                 grad: bool = False, edges: str = "inside", progress: bool = False) -> Tensor:
    """Scores (W, 2·max_shift+1) of one clip: row w = visual window at frame ``t_w``, column j =
    candidate offset ``d = j − max_shift`` frames (audio cut at frame ``t_w − d``).

    ``edges="inside"``: visual windows start at ``t = max_shift, max_shift + stride, …`` while both
    the window and the audio of every candidate stay inside the clip. ``edges="clip"``: every
    visual window of the clip (``t = 0, stride, …, T − window_frames``) is scored against every
    candidate whose audio lies inside the clip; candidates that would need audio from outside the
    clip are not scored and get −inf (no window is dropped, no audio invented). ``batch_windows``
    windows (each with its candidates) are scored per ``pair_scores`` call.
    """
    if frames.ndim != 4 or wav.ndim != 1:
        raise ValueError(f"shift_scores takes one clip: frames (T, H, W, 3) and wav (S,), got "
                         f"{tuple(frames.shape)} and {tuple(wav.shape)}")
    if edges == "clip":
        return _every_window_scores(scorer, frames, wav, fps=fps, sample_rate=sample_rate,
                                    window_frames=window_frames, max_shift=max_shift, stride=stride,
                                    batch_windows=batch_windows, grad=grad)
    if edges != "inside":
        raise ValueError(f"edges must be 'inside' or 'clip', got {edges!r}")
    shifts = torch.tensor(FrameShifts(max_shift).values, device=wav.device)
    n_frames, n_samples = frames.shape[0], wav.shape[0]
    win_s = window_samples(window_frames, fps, sample_rate)
    # the last visual window start t whose video and audio (for every d) fit in the clip
    last_by_video = n_frames - window_frames
    last_by_audio = int((n_samples - win_s) * fps / sample_rate) - max_shift
    last = max(min(last_by_video, last_by_audio), max_shift - 1)
    starts = torch.arange(max_shift, last + 1, stride, device=wav.device)
    # rounding may still push the very last audio window one sample past the end
    while len(starts) and int(frame_start_sample(starts[-1:] + max_shift, fps, sample_rate)) + win_s > n_samples:
        starts = starts[:-1]
    if len(starts) == 0:
        raise ClipTooShortForSearch(
            f"score search needs {window_frames + 2 * max_shift} frames and the matching audio "
            f"(window {window_frames}, ±{max_shift} shifts); the clip has {n_frames} frames and "
            f"{n_samples / sample_rate:.3f} s of audio")

    audio_starts = frame_start_sample(starts[:, None] - shifts[None, :], fps, sample_rate)  # (W, O)
    sample_idx = torch.arange(win_s, device=wav.device)
    n_shifts = len(shifts)
    rows = []
    with torch.set_grad_enabled(grad):
        batches = range(0, len(starts), batch_windows)
        if progress:  # long files in avsync detect
            from tqdm import tqdm

            batches = tqdm(batches, desc="scoring windows", unit="batch", leave=False)
        for i in batches:
            t = starts[i:i + batch_windows]
            video = torch.stack([frames[s:s + window_frames] for s in t.tolist()])  # (b, wf, H, W, 3)
            video = video.repeat_interleave(n_shifts, dim=0)  # (b·O, wf, H, W, 3)
            audio = wav[audio_starts[i:i + batch_windows, :, None] + sample_idx]  # (b, O, win_s)
            scores = scorer.pair_scores(video, audio.reshape(-1, win_s))
            rows.append(scores.reshape(len(t), n_shifts))
    return torch.cat(rows)


def _every_window_scores(scorer: PairScorer, frames: Tensor, wav: Tensor, *, fps: float, sample_rate: int,
                         window_frames: int, max_shift: int, stride: int, batch_windows: int,
                         grad: bool) -> Tensor:
    """``shift_scores(edges="clip")``: every visual window, −inf where a candidate's audio leaves the clip."""
    shifts = torch.tensor(FrameShifts(max_shift).values, device=wav.device)
    n_frames, n_samples = frames.shape[0], wav.shape[0]
    win_s = window_samples(window_frames, fps, sample_rate)
    starts = torch.arange(0, n_frames - window_frames + 1, stride, device=wav.device)
    if len(starts) == 0:
        raise ClipTooShortForSearch(f"the clip has {n_frames} frames, fewer than one {window_frames}-frame window")
    audio_frames = starts[:, None] - shifts[None, :]                               # (W, O)
    audio_starts = frame_start_sample(audio_frames, fps, sample_rate)
    valid = (audio_frames >= 0) & (audio_starts + win_s <= n_samples)
    scores = torch.full(valid.shape, float("-inf"), device=wav.device)
    sample_idx = torch.arange(win_s, device=wav.device)
    with torch.set_grad_enabled(grad):
        for i in range(0, len(starts), batch_windows):
            rows, cols = valid[i:i + batch_windows].nonzero(as_tuple=True)
            if len(rows) == 0:
                continue
            t = starts[i + rows]
            video = torch.stack([frames[s:s + window_frames] for s in t.tolist()])
            audio = wav[audio_starts[i + rows, cols][:, None] + sample_idx]
            got = scorer.pair_scores(video, audio)
            if grad:
                scores = scores.index_put((i + rows, cols), got.to(scores.dtype))
            else:
                scores[i + rows, cols] = got.to(scores.dtype)
    return scores


def predict_offsets(scores: Tensor, context: int = 1) -> tuple[Tensor, Tensor]:
    """Predicted offset in frames and confidence for each run of ``context`` consecutive windows.

    ``scores`` (W, O) from :func:`shift_scores`; returns two tensors of length W − context + 1.
    Confidence is SyncNet's median − min of the distances (−scores), i.e. max − median. A candidate
    that is −inf in any window of a run (not scored: its audio lies outside the clip) cannot win
    that run and is left out of its median.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (windows, offsets), got {tuple(scores.shape)}")
    n_windows, n_offsets = scores.shape
    if not 1 <= context <= n_windows:
        raise ValueError(f"context must be in [1, {n_windows}] for {n_windows} windows, got {context}")
    max_shift = (n_offsets - 1) // 2
    averaged = scores.unfold(0, context, 1).mean(-1)  # (W − c + 1, O); −inf (unscored) stays −inf
    best, idx = averaged.max(-1)
    finite = torch.isfinite(averaged)
    if bool(finite.all()):
        median = averaged.median(-1).values
    else:  # candidates not scored in some window of the run (whole-clip edges) are left out
        median = averaged.masked_fill(~finite, float("nan")).nanmedian(-1).values
    confidence = best - median
    return idx - max_shift, confidence


def clip_answers(search, batch: dict) -> dict:
    """One answer per clip of a batch (scores averaged over every window of the clip, SyncNet/DiVAS
    style): offset in frames, confidence (median − min of the distances) and the true offset.
    ``search(frames, wav)`` gives a clip's score matrix (the model's own search)."""
    preds, confidences = [], []
    for frames, wav in zip(batch["video"], batch["audio"]):
        scores = search(frames, wav)
        pred, conf = predict_offsets(scores, context=len(scores))
        preds.append(pred[0])
        confidences.append(conf[0])
    return {"key": batch.get("key"), "pred_offset_frames": torch.stack(preds),
            "confidence": torch.stack(confidences), "true_offset_frames": batch["target"]}

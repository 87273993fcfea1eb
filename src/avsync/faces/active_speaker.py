"""Who speaks when: per face track, per stretch of time, the suite's active-speaker decision.

The decision is the one of :mod:`avsync.evaluation.active_speaker` (a face speaks if its lips sync
with the audio: the score search's confidence, median − min of the distances, reaches a
threshold calibrated for the model), made over time instead of once per crop: the search's
per-window scores (:func:`~avsync.evaluation.score_search.shift_scores`) are averaged over runs of
``context`` consecutive windows (:func:`~avsync.evaluation.score_search.predict_offsets`), giving an
offset and a confidence per run, each placed at the run's centre time on the clip's timeline.
Each track is searched against the audio of its own frames (the span syncnet_python cuts for a
track). A track too short for one search gets ``reason="too_short"`` and no windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from avsync.faces.tracks import FaceTrack
from avsync.evaluation.score_search import (ClipTooShortForSearch, PairScorer, frame_start_sample,
                                           predict_offsets, shift_scores)

__all__ = ["TrackSpeaking", "track_audio", "speaking_over_time"]


@dataclass
class TrackSpeaking:
    """Per run of ``context`` windows of one track: centre time (s, clip timeline), best offset
    (frames, > 0 = audio leads), confidence and the decision ``confidence >= threshold``."""

    track: int
    times_sec: np.ndarray = field(default_factory=lambda: np.zeros(0))
    offset_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    speaking: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    reason: str = ""  # "" when scored; "too_short" when the track cannot hold one search

    @property
    def speaking_share(self) -> float:
        """Share of the runs in which the face speaks (0 for an unscored track)."""
        return float(self.speaking.mean()) if len(self.speaking) else 0.0


def track_audio(wav: Tensor, track: FaceTrack, fps: float, sample_rate: int) -> Tensor:
    """The clip audio under the track's frames [first, last + 1), zero-padded past the clip's end."""
    start, end = frame_start_sample(torch.tensor([int(track.frames[0]), int(track.frames[-1]) + 1]), fps,
                                    sample_rate).tolist()
    piece = wav[start:end]
    if len(piece) < end - start:
        piece = torch.cat([piece, piece.new_zeros(end - start - len(piece))])
    return piece


def speaking_over_time(scorer: PairScorer, tracks: Sequence[FaceTrack], crops: Sequence[np.ndarray | Tensor],
                       wav: Tensor, *, fps: float, sample_rate: int, window_frames: int, threshold: float,
                       context: int = 25, max_shift: int = 15, batch_windows: int = 16) -> list[TrackSpeaking]:
    """One :class:`TrackSpeaking` per track. ``crops[i]`` (N_i, H, W, 3) uint8 are track i's face crops
    (:func:`avsync.faces.crops.crop_track`), ``wav`` (S,) the whole clip's audio at ``sample_rate``;
    ``context`` windows (fewer if the track has fewer) are averaged per decision."""
    if len(tracks) != len(crops):
        raise ValueError(f"{len(tracks)} tracks but {len(crops)} crop sequences")
    results = []
    for i, (track, frames) in enumerate(zip(tracks, crops)):
        frames = torch.as_tensor(np.asarray(frames))
        if len(frames) != len(track):
            raise ValueError(f"track {i} has {len(track)} frames but {len(frames)} crops")
        audio = track_audio(wav, track, fps, sample_rate)
        try:
            scores = shift_scores(scorer, frames, audio, fps=fps, sample_rate=sample_rate,
                                  window_frames=window_frames, max_shift=max_shift, batch_windows=batch_windows)
        except ClipTooShortForSearch:
            results.append(TrackSpeaking(i, reason="too_short"))
            continue
        c = min(context, len(scores))
        offset, confidence = predict_offsets(scores.float(), context=c)
        # run r covers windows r .. r+c-1, which start at frames max_shift + r (stride 1)
        first = max_shift + torch.arange(len(offset), dtype=torch.float64)
        centre_frame = first + (c - 1 + window_frames) / 2
        times = (float(track.frames[0]) + centre_frame.numpy()) / fps
        conf = confidence.double().numpy()
        results.append(TrackSpeaking(i, times, offset.numpy().astype(np.int64), conf, conf >= threshold))
    return results

"""Direct measurements of what a codec leaves in the Table 1 clips, next to the probe's accuracy.

The probe says *whether* a trim's start can be told; these say *what* could tell it, measured on
the written files against their known sources:

* audio: the decoded-vs-source error (relative to the source power) in each second of the clip,
  and the decoded power in the upper third of the spectrum per second relative to the last second.
  An encoder whose quality settles along the clip makes both change with time, so the position of
  a trim in the clip shows in its spectrogram;
* video: the key frames (packet flags) and the mean absolute first difference of the decoded frames
  *into* a key frame against all other frames (SparseSync Fig. 6: mpeg4 refreshes every 12th frame).
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from avsync.media import read_audio, read_frames

__all__ = ["audio_settling", "video_keyframes"]


def audio_settling(paths: list[Path], sources: list[np.ndarray], rate: int) -> dict[str, list[float]]:
    """Mean over clips, per second of the clip: relative error and relative upper-band power."""
    errors, highs = [], []
    for path, source in zip(paths, sources):
        decoded = read_audio(path, 0.0, len(source) / rate, sample_rate=rate)
        n = min(len(decoded), len(source)) // rate * rate
        seconds = decoded[:n].reshape(-1, rate)
        error = ((seconds - source[:n].reshape(-1, rate)) ** 2).mean(1) / (source**2).mean()
        blocks = seconds[:, : rate // 1024 * 1024].reshape(len(seconds), -1, 1024)
        spectrum = np.abs(np.fft.rfft(blocks, axis=2)) ** 2
        high = spectrum[:, :, 2 * spectrum.shape[2] // 3 :].mean(axis=(1, 2))
        errors.append(error)
        highs.append(high / high[-1])
    return {"relative error": np.mean(errors, 0).tolist(), "upper-band power": np.mean(highs, 0).tolist()}


def video_keyframes(paths: list[Path], fps: float) -> dict[str, object]:
    """Key-frame intervals over all clips and the first-difference ratio into key frames."""
    intervals, into_key, other = set(), [], []
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            flags = [packet.is_keyframe for packet in container.demux(stream) if packet.size]
        keys = np.flatnonzero(flags)
        intervals.update(np.diff(keys).tolist())
        frames = read_frames(path, 0.0, len(flags) / fps, fps).astype(np.float32)
        change = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # change[i]: frame i -> i + 1
        is_key = np.isin(np.arange(1, len(frames)), keys)
        into_key += change[is_key].tolist()
        other += change[~is_key].tolist()
    ratio = float(np.mean(into_key) / np.mean(other)) if into_key else float("nan")
    return {"key-frame intervals": sorted(intervals), "first difference into key / other": ratio}

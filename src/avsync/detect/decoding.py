"""A file decoded the way the model was fed in evaluation: its frame rate, size, crop and audio rate."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from avsync.inputs import InputSpec
from avsync.media import MediaError, probe, read_audio, read_frames

__all__ = ["decode_for_model", "decode_for_detector", "centre_crop"]


def centre_crop(frames: np.ndarray, spec: InputSpec, path: str | Path = "") -> np.ndarray:
    """The data modules' evaluation crop: centred ``frame_size`` square, its lower half for "mouth"."""
    size = spec.frame_size
    height, width = frames.shape[1:3]
    if min(height, width) < size:
        raise MediaError(path, f"frames of {height}x{width} after resizing cannot give a {size} px crop")
    y0, x0 = (height - size) // 2, (width - size) // 2
    out = frames[:, y0:y0 + size, x0:x0 + size]
    if spec.crop == "mouth":
        out = out[:, size // 2:]
    return np.ascontiguousarray(out)


def decode_for_model(path: str | Path, spec: InputSpec, native_size: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames (T, H, W, 3) at ``spec.fps``, cropped, and mono audio (S,) at ``spec.sample_rate``,
    both from time 0 over the whole frames that both streams cover. ``native_size``: the frames as
    stored (no resize, no crop), for protocols that resize them their own way. Raises MediaError."""
    info = probe(path)
    if not info.has_video:
        raise MediaError(path, "no video stream")
    if not info.has_audio:
        raise MediaError(path, "no audio stream")
    audio = read_audio(path, 0.0, None, spec.sample_rate)
    seconds = min(info.duration_sec, len(audio) / spec.sample_rate)
    num_frames = int(math.floor(seconds * spec.fps + 1e-6))
    if num_frames < 1:
        raise MediaError(path, f"too short: {seconds:.3f} s")
    frames = read_frames(path, 0.0, num_frames / spec.fps, spec.fps, None if native_size else spec.decode_size)
    if not native_size:
        frames = centre_crop(frames, spec, path)
    wav = audio[: round(num_frames / spec.fps * spec.sample_rate)]
    return torch.from_numpy(frames), torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))


def decode_for_detector(path: str | Path, detector) -> tuple[torch.Tensor, torch.Tensor]:
    """The file as ``detector`` reads it: its own ``decode`` if it has one (an authors' protocol that
    resizes the frames itself), else :func:`decode_for_model` with its input spec."""
    decode = getattr(detector, "decode", None)
    return decode(path) if decode is not None else decode_for_model(path, detector.spec)

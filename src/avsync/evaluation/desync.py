"""DeSync, the synchronisation metric of video-to-audio generation papers, as av-benchmark computes it.

hkchengrex/av-benchmark (MMAudio's evaluation code) scores a clip with Synchformer's AudioSet
model: the first ``duration_sec`` (8 s by default) of the clip, video at 25 fps resized (bicubic,
antialiased) so the short side is 224 px and centre-cropped to 224 x 224, audio averaged over its
channels and resampled to 16 kHz; both cut into 0.64 s segments every 0.32 s (16 frames every 8,
10240 samples every 5120); the offset is predicted on the **first 14 segments** (0-4.8 s) and on
the **last 14** (the last 4.8 s of the 8 s), each the argmax of the 21-class grid -2.0 ... +2.0 s;
a clip's DeSync is the mean of the two **absolute** offsets, in seconds, and a data set's the mean
over its clips. Lower is better; the sign is gone (|offset|): a clip whose audio leads by 0.4 s
and one whose audio lags by 0.4 s both score 0.4.

Here :func:`decode_for_desync` decodes the same way (frames on the presentation timeline with
PyAV/decord, torchvision's bicubic antialiased resize and centre crop, torchaudio's resampler) and
:func:`desync_of` runs the two windows through a :class:`~avsync.papers.synchformer.stage2.
SynchformerStage2Module`. The signed offsets of both windows are kept as well, in the suite's sign
(+ = audio leads). A clip shorter than ``duration_sec`` has no DeSync (av-benchmark drops it):
MediaError "too short".

Two differences a user should know: av-benchmark reads the audio from separate wav files (the
generated audio) and the frames from the ground-truth video; here both come from the one file being
scored. And for a file that is not 25 fps, av-benchmark's FFmpeg ``fps`` filter takes the source frame
*nearest* each output time, this takes the frame *on screen* at it (as all of avsync's decoding), which
can differ by one source frame; at 25 fps (VGGSound's usual preprocessing) every frame is kept by both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avsync.media import MediaError, probe, read_audio, read_frames

__all__ = ["DURATION_SEC", "WINDOW_SEGMENTS", "DeSyncResult", "decode_for_desync", "desync_of"]

DURATION_SEC = 8.0      # av-benchmark's default --audio_length
WINDOW_SEGMENTS = 14    # 14 half-overlapping 16-frame segments = 4.8 s at 25 fps
FPS = 25.0
SAMPLE_RATE = 16000


@dataclass
class DeSyncResult:
    """``desync_sec`` = mean(|first_offset_sec|, |last_offset_sec|); offsets signed, + = audio leads;
    ``*_probability``: the softmax probability of the chosen class in each window."""

    desync_sec: float
    first_offset_sec: float
    last_offset_sec: float
    first_probability: float
    last_probability: float
    first_logits: list[float]
    last_logits: list[float]

    def as_row(self) -> dict:
        return {"desync_sec": self.desync_sec, "desync_first_offset_sec": self.first_offset_sec,
                "desync_last_offset_sec": self.last_offset_sec,
                "desync_first_probability": self.first_probability,
                "desync_last_probability": self.last_probability}


def decode_for_desync(path: str | Path, duration_sec: float = DURATION_SEC, frame_size: int = 224
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames (T, S, S, 3), T = 25 x duration, S = ``frame_size``, and float32 mono audio at
    16 kHz (16000 x duration samples), both from time 0. Raises MediaError (no stream, too short)."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as tvf

    info = probe(path)
    if not info.has_video:
        raise MediaError(path, "no video stream")
    if not info.has_audio:
        raise MediaError(path, "no audio stream")
    if info.duration_sec + 1e-3 < duration_sec:
        raise MediaError(path, f"too short: DeSync reads the first {duration_sec:g} s, the clip has "
                               f"{info.duration_sec:.3f} s")
    frames = torch.from_numpy(read_frames(path, 0.0, duration_sec, FPS, None)).permute(0, 3, 1, 2)
    frames = tvf.resize(frames, frame_size, interpolation=InterpolationMode.BICUBIC, antialias=True)
    frames = tvf.center_crop(frames, frame_size).permute(0, 2, 3, 1).contiguous()
    wav = torch.from_numpy(np.ascontiguousarray(read_audio(path, 0.0, None, info.audio_sample_rate)))
    if info.audio_sample_rate != SAMPLE_RATE:
        import torchaudio

        wav = torchaudio.functional.resample(wav, info.audio_sample_rate, SAMPLE_RATE)
    samples = int(SAMPLE_RATE * duration_sec)
    if len(wav) < samples:
        raise MediaError(path, f"too short: {len(wav) / SAMPLE_RATE:.3f} s of audio, DeSync reads "
                               f"{duration_sec:g} s")
    return frames, wav[:samples].float()


@torch.inference_mode()
def desync_of(module, frames: torch.Tensor, wav: torch.Tensor) -> DeSyncResult:
    """DeSync of one decoded clip with a Synchformer stage-II module (official or trained here).

    All segments of the clip are encoded once (the extractors see one segment at a time), then the
    sync module reads the first and the last ``WINDOW_SEGMENTS`` of each stream, as av-benchmark."""
    inputs, net, step = module.inputs, module.net, module.segment_step
    window = net.cfg.num_segments
    seg_frames, seg_samples = inputs.frames_per_segment, inputs.samples_per_segment
    stride_frames, stride_samples = int(step * seg_frames), int(step * seg_samples)
    n_video = (len(frames) - seg_frames) // stride_frames + 1
    n_audio = (len(wav) - seg_samples) // stride_samples + 1
    if min(n_video, n_audio) < window:
        raise MediaError("", f"too short: {window} segments needed, the clip gives {min(n_video, n_audio)}")
    device = module.device
    # float32 normalisation, as av-benchmark's reader (ToDtype(float32, scale=True), then Normalize):
    # no float16 rounding of the frames, which Synchformer's own pipeline has (2.4e-4 on the logits)
    video = inputs.video(frames[None].to(device), n_video, step, half_precision=False)
    audio = inputs.audio(wav[None].to(device), n_audio, step)
    vis, aud = net.vfeat_extractor(video), net.afeat_extractor(audio)
    grid = np.asarray(module.grid.values, dtype=np.float64)
    out = {}
    for name, part in (("first", slice(None, window)), ("last", slice(-window, None))):
        logits = net.sync(*module.centred(vis[:, part], aud[:, part]))[0].double().cpu()
        top = int(logits.argmax())
        out[name] = (float(grid[top]) + 0.0, float(logits.softmax(-1)[top]), logits.tolist())
    return DeSyncResult((abs(out["first"][0]) + abs(out["last"][0])) / 2, out["first"][0], out["last"][0],
                        out["first"][1], out["last"][1], out["first"][2], out["last"][2])

"""A copy of a clip whose audio is lossless (FLAC): the AAC decoder taken out of a parity comparison.

The authors' VocaLiST and SyncNet pipelines extract the audio with the ffmpeg binary, avsync with
PyAV's FFmpeg; on AAC their decoders differ in the last float bits (tests/parity/measure_audio_decode.py).
Both decode FLAC to the same int16 samples.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def lossless_audio_copy(clip: Path, samples: np.ndarray, out: Path, seconds: float | None = None) -> Path:
    """``clip``'s video (packets copied, not re-encoded; only the first ``seconds`` if given) with
    ``samples`` (mono int16 at 16 kHz; zero-padded or cut to ``seconds`` if given) as lossless FLAC
    audio, in Matroska.

    Both the authors' ``ffmpeg ... audio.wav`` and avsync's PyAV decode a FLAC stream to the same
    int16 samples, so a file like this takes the AAC decoders out of the comparison."""
    import av

    padded = samples.astype(np.int16)
    if seconds is not None:
        padded = np.zeros(round(seconds * 16000), np.int16)
        padded[: len(samples)] = samples[: len(padded)]
    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        video_in = src.streams.video[0]
        video_out = dst.add_stream_from_template(video_in)
        audio_out = dst.add_stream("flac", rate=16000, layout="mono")
        audio_out.format = "s16"
        for packet in src.demux(video_in):
            if packet.dts is None or (seconds is not None and packet.pts * packet.time_base >= seconds):
                continue
            packet.stream = video_out
            dst.mux(packet)
        frame = av.AudioFrame.from_ndarray(padded[None], format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*audio_out.encode(frame), *audio_out.encode(None)]:
            dst.mux(packet)
    return out

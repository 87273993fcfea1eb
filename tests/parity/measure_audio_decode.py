#!/usr/bin/env python
"""Where avsync's audio of an AAC file differs from the wav the authors' preprocessing writes.

Not run by the tests (it needs the ``ffmpeg`` binary that the authors' VocaLiST and SyncNet
pipelines call). The authors extract the audio with ``ffmpeg -i clip.mp4 [-ac 1] audio.wav`` (a
16-bit wav) and read its int16 samples; avsync decodes with PyAV's FFmpeg, downmixes by averaging
the channels and rounds to int16 (:func:`avsync.papers.vocalist.clip_protocol.vocalist_clip_mel`,
:mod:`avsync.evaluation.lse`). This script separates the stages::

    python tests/parity/measure_audio_decode.py [CLIP.mp4]

1. the AAC decoder alone: the float planar samples of both FFmpegs, channel by channel (no
   resampling, no downmix);
2. the authors' downmix and int16 conversion: ``ffmpeg -ac 1`` to a 16-bit wav against avsync's
   channel mean + round-half-even applied to the **ffmpeg binary's own** float samples;
3. the same on PyAV's float samples, and avsync's full decode (``_decode_audio``).

If 2 shows no difference, avsync's downmix, resampling (none: the clip is already 16 kHz) and
rounding are the authors', and everything in 3 comes from the decoder of 1.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = (ROOT.parent / "shared/fixtures/real/lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain"
           "/C8zY0oAdQrs/00018.mp4")


def ffmpeg_version() -> str:
    return subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]


def ffmpeg_float_channels(clip: Path, tmp: Path) -> np.ndarray:
    """(channels, samples) float32 from the ffmpeg binary's AAC decoder, nothing else applied."""
    probe = av.open(str(clip))
    channels = probe.streams.audio[0].codec_context.channels
    probe.close()
    raw = tmp / "raw.f32"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-f", "f32le", "-c:a", "pcm_f32le",
                    str(raw)], check=True)
    return np.fromfile(raw, np.float32).reshape(-1, channels).T


def authors_wav(clip: Path, tmp: Path) -> np.ndarray:
    """The int16 samples of the authors' ``ffmpeg -y -i clip -strict -2 -ac 1 audio.wav``."""
    path = tmp / "audio.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-strict", "-2", "-ac", "1", str(path)],
                   check=True)
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.int64)


def pyav_float_channels(clip: Path) -> np.ndarray:
    with av.open(str(clip)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(container.streams.audio[0])], axis=1)


def avsync_int16(channels: np.ndarray) -> np.ndarray:
    """avsync's downmix (channel mean, float32 as ``_decode_audio``) and the int16 rounding of the
    VocaLiST / SyncNet protocols (round half to even, clamp)."""
    mono = channels.mean(axis=0).astype(np.float32)
    return np.clip(np.round(mono.astype(np.float64) * 32768), -32768, 32767).astype(np.int64)


def flips(ours: np.ndarray, theirs: np.ndarray) -> str:
    n = min(len(ours), len(theirs))
    diff = np.abs(ours[:n] - theirs[:n])
    return f"{int((diff > 0).sum())} of {n} int16 samples differ, by at most {int(diff.max())} LSB"


def main() -> None:
    clip = Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE
    sys.path.insert(0, str(ROOT / "src"))
    from avsync.media.decode import _decode_audio, probe

    print(f"{clip}\nffmpeg binary: {ffmpeg_version()}\nPyAV {av.__version__}, libavcodec "
          f"{'.'.join(map(str, av.library_versions['libavcodec']))}")
    with tempfile.TemporaryDirectory() as tmp:
        binary, theirs = ffmpeg_float_channels(clip, Path(tmp)), authors_wav(clip, Path(tmp))
    pyav = pyav_float_channels(clip)
    n = min(binary.shape[1], pyav.shape[1])
    diff = np.abs(binary[:, :n].astype(np.float64) - pyav[:, :n])
    print(f"1. AAC decoder: {int((diff > 0).sum())} of {diff.size} float samples differ, max |diff| "
          f"{diff.max():.3g} (max |x| {np.abs(binary).max():.3g})")
    print(f"2. avsync's downmix + rounding on the ffmpeg binary's floats vs the authors' wav: "
          f"{flips(avsync_int16(binary), theirs)}")
    print(f"3. the same on PyAV's floats: {flips(avsync_int16(pyav), theirs)}")
    ours = _decode_audio(probe(clip), 16000)
    rounded = np.clip(np.round(ours.astype(np.float64) * 32768), -32768, 32767).astype(np.int64)
    print(f"   avsync's decode (_decode_audio): {flips(rounded, theirs)}; length {len(ours)} vs {len(theirs)}")


if __name__ == "__main__":
    main()

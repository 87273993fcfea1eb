"""Small media files of every awkward kind, written with PyAV, for the bad-media and prepare tests.

Each clip shows a white flash at ``FLASH_SEC`` while its audio has a click at the same time, so
a test can check that picture and sound stay aligned after any conversion.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avsync.media import write_mp4

FLASH_SEC = 1.0
SIZE = (48, 64)  # height, width


def frames_and_audio(seconds: float, fps: float, sample_rate: int, channels: int = 1, still: bool = False,
                     audio: str = "noise"):
    """Frames (grey noise, one white flash) and audio (noise + a click) of one clip."""
    rng = np.random.default_rng(0)
    n = max(1, int(round(seconds * fps)))
    frames = rng.integers(0, 128, (n, *SIZE, 3), dtype=np.uint8)
    if still:
        frames[:] = frames[0]
    elif n > 1:
        frames[min(n - 1, int(round(FLASH_SEC * fps)))] = 255
    samples = int(round(n / fps * sample_rate))
    if audio == "silent":
        wave = np.zeros(samples, np.float32)
    elif audio == "constant":
        wave = np.full(samples, 0.3, np.float32)
    else:
        wave = rng.uniform(-0.05, 0.05, samples).astype(np.float32)
        click = int(FLASH_SEC * sample_rate)
        wave[click : click + sample_rate // 100] = 0.9
    return frames, (np.stack([wave] * channels) if channels > 1 else wave)


def write_case(path: Path, seconds: float = 3.0, fps: float = 25.0, sample_rate: int = 16000, channels: int = 1,
               still: bool = False, audio: str = "noise", with_audio: bool = True, vcodec: str = "h264") -> Path:
    frames, wave = frames_and_audio(seconds, fps, sample_rate, channels, still, audio)
    return write_mp4(path, frames, fps, wave if with_audio else None, sample_rate, vcodec=vcodec, preset="ultrafast")


def write_audio_only(path: Path, seconds: float = 3.0, sample_rate: int = 16000) -> Path:
    _, wave = frames_and_audio(seconds, 25.0, sample_rate)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=sample_rate)
        stream.layout = "mono"
        for start in range(0, len(wave), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[None, start : start + 1024]),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_vfr(path: Path, seconds: float = 3.0, sample_rate: int = 16000) -> Path:
    """Frames 30 ms and 50 ms apart in turn (variable frame rate), flash at FLASH_SEC exactly."""
    times, t = [], 0.0
    while t < seconds:
        times.append(round(t, 3))
        t += 0.03 if len(times) % 2 else 0.05
    if FLASH_SEC not in times:
        times = sorted(times + [FLASH_SEC])
    rng = np.random.default_rng(1)
    _, wave = frames_and_audio(seconds, 25.0, sample_rate)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=25)
        video.height, video.width, video.pix_fmt = *SIZE, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        video.options = {"preset": "ultrafast"}
        sound = out.add_stream("aac", rate=sample_rate)
        sound.layout = "mono"
        for t in times:
            rgb = np.full((*SIZE, 3), 255, np.uint8) if t == FLASH_SEC else rng.integers(0, 128, (*SIZE, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for start in range(0, len(wave), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[None, start : start + 1024]),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return path


def write_all(folder: Path, seconds: float = 3.0) -> dict[str, Path]:
    """Every case under ``folder``: {name: path}. Names say what is wrong (or odd) with each."""
    folder.mkdir(parents=True, exist_ok=True)
    p = lambda name: folder / f"{name}.mp4"  # noqa: E731
    cases = {
        "good": write_case(p("good"), seconds),
        "rate_8k": write_case(p("rate_8k"), seconds, sample_rate=8000),
        "rate_44k_stereo": write_case(p("rate_44k_stereo"), seconds, sample_rate=44100, channels=2),
        "rate_48k_stereo": write_case(p("rate_48k_stereo"), seconds, sample_rate=48000, channels=2),
        "fps_30": write_case(p("fps_30"), seconds, fps=30.0),
        "vfr": write_vfr(p("vfr"), seconds),
        "no_audio": write_case(p("no_audio"), seconds, with_audio=False),
        "no_video": write_audio_only(p("no_video"), seconds),
        "single_frame": write_case(p("single_frame"), 0.04),
        "short": write_case(p("short"), 0.5),
        "silent": write_case(p("silent"), seconds, audio="silent"),
        "constant": write_case(p("constant"), seconds, audio="constant"),
        "still": write_case(p("still"), seconds, still=True),
    }
    data = cases["good"].read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (folder / "zero_length.mp4").write_bytes(b"")
    cases.update(truncated=folder / "truncated.mp4", corrupt=folder / "corrupt.mp4",
                 zero_length=folder / "zero_length.mp4")
    return cases

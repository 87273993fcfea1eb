"""Files with known stream timing, written with PyAV, for the media-timing tests.

Every video frame shows its own index as a 4 x 4 grid of black/white blocks (16 bits), and the
audio is seeded noise, so a decoded frame says which source frame it is and the decoded audio can
be matched sample by sample against the source: the test knows where each frame and each sample
was put on the file's presentation timeline and checks that the decoders put them there.

A stream starts late (or early) by having its packets' timestamps shifted before muxing, which is
how a muxer records a late stream; the muxers then do what they do with it (an mp4 edit list, a
Matroska block timestamp, MPEG-TS's 1.4 s mux delay, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SIDE = 64  # frames are SIDE x SIDE
GRID = 4  # GRID x GRID blocks, one bit each
BLOCK = SIDE // GRID
FINE = Fraction(1, 90000)  # video time base: any start offset is exact enough
_FORMATS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi", "ts": "mpegts",
            "mts": "mpegts", "m2ts": "mpegts"}
_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


@dataclass(frozen=True)
class Case:
    """One file of the corpus: containers, codecs, rates and where each stream starts (seconds)."""

    name: str
    ext: str = "mp4"
    fps: float | str = 25.0  # "vfr": frames 30 ms and 50 ms apart in turn
    sample_rate: int = 16000
    channels: int = 1
    video_start: float = 0.0
    audio_start: float = 0.0
    seconds: float = 2.0
    vcodec: str = "libx264"
    acodec: str = "aac"
    rotation: int | None = None
    audio: bool = True
    bframes: bool = False  # x264 "fast" preset (B-frames: decode order differs from display order)

    @property
    def fmt(self) -> str:
        return _FORMATS[self.ext]


def frame_times(case: Case) -> np.ndarray:
    """Presentation time of each source frame, relative to the video stream's own start."""
    if case.fps == "vfr":
        steps = np.resize([0.03, 0.05], int(case.seconds / 0.04))
        return np.concatenate([[0.0], np.cumsum(steps)[:-1]])
    rate = Fraction(case.fps).limit_denominator(1001)
    return np.array([float(i / rate) for i in range(int(case.seconds * rate))])


def code_frame(index: int) -> np.ndarray:
    """RGB frame whose blocks spell `index` in binary (block k white when bit k is set)."""
    bits = (index >> np.arange(GRID * GRID)) & 1
    blocks = (bits.reshape(GRID, GRID) * 255).astype(np.uint8)
    return np.repeat(np.repeat(blocks, BLOCK, 0), BLOCK, 1)[..., None].repeat(3, axis=2)


def read_code(frames: np.ndarray) -> np.ndarray:
    """Source frame index shown by each decoded frame (T, H, W, 3); any size, upright."""
    t, h, w = frames.shape[:3]
    grey = frames.astype(np.float32).mean(axis=3)
    ys = ((np.arange(GRID) + 0.5) * h / GRID).astype(int)
    xs = ((np.arange(GRID) + 0.5) * w / GRID).astype(int)
    bits = grey[:, ys][:, :, xs].reshape(t, -1) > 128
    return (bits * (1 << np.arange(GRID * GRID))).sum(axis=1)


def source_audio(case: Case) -> np.ndarray:
    """(channels, samples) seeded noise; every channel the same so any downmix keeps the shape."""
    rng = np.random.default_rng(7)
    mono = rng.uniform(-0.5, 0.5, int(case.seconds * case.sample_rate)).astype(np.float32)
    return np.repeat(mono[None], case.channels, axis=0)


def write(case: Case, folder: Path) -> Path:
    """Write `case` to folder/<name>.<ext> and return the path."""
    path = folder / f"{case.name}.{case.ext}"
    times = frame_times(case)
    with av.open(str(path), "w", format=case.fmt) as out:
        video = _video_stream(out, case)
        sound = _audio_stream(out, case) if case.audio else None
        tick = video.codec_context.time_base
        vshift = round(case.video_start / tick)
        packets = []
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(code_frame(i), format="rgb24").reformat(format=video.pix_fmt)
            frame.pts, frame.time_base = round(t / tick), tick
            packets += _shifted(video.encode(frame), vshift)
        packets += _shifted(video.encode(None), vshift)
        if sound is not None:
            packets += _encode_audio(sound, case)
        packets.sort(key=lambda p: float(p.dts * p.time_base))  # interleave as a muxer wants
        for packet in packets:
            out.mux(packet)
    return path


def _video_stream(out, case: Case):
    rate = Fraction(25) if case.fps == "vfr" else Fraction(case.fps).limit_denominator(1001)
    stream = out.add_stream(case.vcodec, rate=rate)
    stream.width = stream.height = SIDE
    stream.pix_fmt = "yuv420p"
    # MPEG-4 Part 2 takes time bases up to 1/65535 only: ticks of one frame there
    stream.codec_context.time_base = Fraction(1, rate.numerator) if case.vcodec == "mpeg4" else FINE
    if case.vcodec == "libx264":
        stream.options = {"preset": "fast" if case.bframes else "ultrafast", "crf": "10"}
    elif case.vcodec.startswith("libvpx"):
        stream.options = {"crf": "10", "b": "1M", "deadline": "realtime", "cpu-used": "8"}
    elif case.vcodec in ("mpeg4", "mpeg2video", "mjpeg"):
        stream.codec_context.qmax = 3
    if case.rotation is not None:
        stream.set_display_rotation(case.rotation)
    return stream


def _audio_stream(out, case: Case):
    stream = out.add_stream(case.acodec, rate=case.sample_rate)
    stream.layout = _LAYOUTS[case.channels]
    if case.acodec == "vorbis":
        stream.codec_context.options = {"strict": "-2"}
    return stream


def _encode_audio(sound, case: Case) -> list:
    wave = source_audio(case)
    fmt = sound.codec_context.format.name
    size = sound.codec_context.frame_size or 1024
    shift = round(case.audio_start * case.sample_rate)
    packets = []
    for start in range(0, wave.shape[1], size):
        chunk = np.ascontiguousarray(wave[:, start : start + size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=_LAYOUTS[case.channels])
        frame.sample_rate, frame.pts, frame.time_base = case.sample_rate, start, Fraction(1, case.sample_rate)
        if fmt != "fltp":
            frame = _convert(frame, fmt, case)
        packets += _shifted(sound.encode(frame), shift, Fraction(1, case.sample_rate))
    packets += _shifted(sound.encode(None), shift, Fraction(1, case.sample_rate))
    return packets


def _convert(frame, fmt: str, case: Case):
    resampler = av.AudioResampler(format=fmt, layout=_LAYOUTS[case.channels], rate=case.sample_rate)
    (converted,) = resampler.resample(frame)
    converted.pts, converted.time_base = frame.pts, frame.time_base
    return converted


def _shifted(packets, shift: int, time_base: Fraction | None = None) -> list:
    """Packets with `shift` (in `time_base`, default the packet's) added to pts and dts."""
    out = []
    for packet in packets:
        if time_base is not None and packet.time_base != time_base:
            step = round(shift * time_base / packet.time_base)
        else:
            step = shift
        if packet.pts is not None:
            packet.pts += step
        if packet.dts is not None:
            packet.dts += step
        out.append(packet)
    return out


# ---------------------------------------------------------------------------- measuring a decode
def stream_starts(path: Path) -> tuple[float, float | None]:
    """(video, audio) start of each stream relative to the earlier one, read from the container
    with PyAV directly (the ground truth the decoders must follow)."""
    with av.open(str(path)) as container:
        streams = [container.streams.video[0]] + list(container.streams.audio[:1])
        starts = [float(s.start_time * s.time_base) for s in streams]
    origin = min(starts)
    return starts[0] - origin, (starts[1] - origin if len(starts) > 1 else None)


def video_errors(case: Case, frames: np.ndarray, times: np.ndarray, video_start: float) -> np.ndarray:
    """Seconds between each output time and the presentation time of the frame decoded for it
    (only output times within the video stream: before its first frame every rule shows frame 0)."""
    if case.rotation:  # decoders return the picture as displayed: turn it back to read the code
        frames = np.rot90(frames, -round(case.rotation / 90), axes=(1, 2))
    codes = read_code(frames)
    source = frame_times(case)
    if codes.max() >= len(source):
        raise AssertionError(f"decoded a frame code {codes.max()} that {case.name} does not have")
    shown = video_start + source[codes]
    inside = times >= video_start + source[0] - 1e-9
    return (shown - times)[inside]


def audio_position(case: Case, decoded: np.ndarray) -> float:
    """Timeline seconds where source sample 0 plays in `decoded` (mono, at the case's rate),
    from the peak of the cross-correlation with the source noise."""
    source = source_audio(case)[0]
    n = 1 << int(np.ceil(np.log2(len(decoded) + len(source))))
    corr = np.fft.irfft(np.fft.rfft(decoded, n) * np.conj(np.fft.rfft(source, n)), n)
    lag = int(np.argmax(corr))
    lag = lag - n if lag > n // 2 else lag
    return lag / case.sample_rate


CASES = [
    Case("mp4_in_sync"),
    Case("mp4_video_late", video_start=0.3),
    Case("mp4_audio_late", audio_start=0.5, sample_rate=22050),
    Case("mov_video_late_48k_stereo", "mov", video_start=0.3, sample_rate=48000, channels=2),
    Case("mkv_video_late", "mkv", video_start=0.2),
    Case("mkv_audio_late_44k", "mkv", audio_start=0.25, sample_rate=44100),
    Case("mkv_audio_early", "mkv", audio_start=-0.3, video_start=0.0),
    Case("webm_vp9_opus_video_late", "webm", video_start=0.1, vcodec="libvpx-vp9", acodec="libopus",
         sample_rate=48000, channels=2),
    Case("webm_vp8_opus_audio_late", "webm", audio_start=0.2, vcodec="libvpx", acodec="libopus", sample_rate=48000),
    Case("avi_mpeg4_pcm", "avi", vcodec="mpeg4", acodec="pcm_s16le", sample_rate=22050),
    Case("ts_mux_delay", "ts", video_start=1.4, audio_start=1.4),
    Case("ts_video_late", "ts", video_start=0.2),
    Case("mts_audio_late_8k", "mts", audio_start=0.36, sample_rate=8000),
    Case("m2ts_5.1_48k", "m2ts", video_start=1.4, audio_start=1.6, sample_rate=48000, channels=6),
    Case("mp4_5.1_44k", "mp4", sample_rate=44100, channels=6),
    Case("mp4_23.976", fps=24000 / 1001),
    Case("mkv_24", "mkv", fps=24.0, video_start=0.1),
    Case("mp4_29.97_video_late", fps=30000 / 1001, video_start=0.3),
    Case("mov_30", "mov", fps=30.0),
    Case("mp4_50", fps=50.0, audio_start=0.2),
    Case("mkv_59.94", "mkv", fps=60000 / 1001, video_start=0.15),
    Case("ts_60", "ts", fps=60.0, audio_start=0.1),
    Case("mp4_vfr_video_late", fps="vfr", video_start=0.25),
    Case("mkv_vfr", "mkv", fps="vfr"),
    Case("mp4_rotated_90", rotation=90, video_start=0.1),
    Case("mp4_bframes_video_late", bframes=True, video_start=0.2),
    Case("ts_bframes_mux_delay", "ts", bframes=True, video_start=1.4, audio_start=1.48),
]

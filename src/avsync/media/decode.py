"""Decoding clips for training and evaluation: frames with decord, audio and metadata with PyAV.

All times are on the container's presentation timeline in seconds, for both streams, so a video
window and an audio window with the same start show and play the same moment. Frames are picked
by timestamp (the source frame on screen at each output time), never by index arithmetic, so a
file of any frame rate reads at any target rate. Every failure of a file is a `MediaError` naming
it; arguments that cannot be right (a negative start, fps <= 0) are caller bugs: ValueError.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import av
import decord
import numpy as np

from avsync.media.errors import MediaError

# container timestamps are rounded to their time base (1 ms in Matroska): a frame stamped up to
# this much after an output time still counts as on screen at that time
_TIMESTAMP_TOLERANCE = 1e-3
# an audio window may run this far past the last sample; the rest is zero-padded
_AUDIO_END_TOLERANCE = 0.05
# peak amplitude (after removing the mean) below which a stream counts as silent
_SILENCE_PEAK = 1e-4


@dataclass
class ClipInfo:
    """Container metadata of one clip; durations in seconds, 0 / None for an absent stream."""

    path: str
    duration_sec: float
    video_fps: float
    num_frames: int
    width: int
    height: int
    has_video: bool
    has_audio: bool
    audio_sample_rate: int
    audio_channels: int
    audio_duration_sec: float
    video_codec: str | None
    audio_codec: str | None


def probe(path: str | os.PathLike) -> ClipInfo:
    """Read a clip's metadata from its container header (demuxing only if durations are missing)."""
    with _open(path) as container:
        return _probe_container(container, path)


def read_frames(
    path: str | os.PathLike,
    start_sec: float,
    duration_sec: float,
    fps: float,
    size: int | tuple[int, int] | None = None,
) -> np.ndarray:
    """Return round(duration_sec * fps) RGB frames (T, H, W, 3) uint8 sampled at `fps`.

    Frame i is the source frame on screen at start_sec + i / fps (the latest one that starts at or
    before it). `size`: an int makes the short side that long (aspect kept, both sides even), a
    tuple is (H, W), None keeps the native size. A window that runs past the last frame by at
    most one source frame period repeats the last frame (container durations are rounded); a
    longer one raises MediaError "too short".
    """
    return _read_frames(probe(path), start_sec, duration_sec, fps, size)


def read_audio(
    path: str | os.PathLike,
    start_sec: float = 0.0,
    duration_sec: float | None = None,
    sample_rate: int = 16000,
    reject_silent: bool = False,
) -> np.ndarray:
    """Return mono float32 audio (S,) at `sample_rate`, S = round(duration_sec * sample_rate).

    Channels are averaged. `duration_sec=None` reads to the end. A window up to 0.05 s past the
    end is zero-padded; further raises MediaError "too short". With `reject_silent`, a stream
    whose peak (after removing its mean, so DC counts as silence) is below 1e-4 raises
    MediaError "silent audio": a silent clip cannot be synchronised and would teach the model
    to guess.
    """
    with _open(path) as container:
        info = _probe_container(container, path)
        audio = _decode_audio(container, info, sample_rate)
    return _audio_window(info, audio, start_sec, duration_sec, sample_rate, reject_silent)


def read_clip(
    path: str | os.PathLike,
    video_start_sec: float,
    audio_start_sec: float,
    duration_sec: float,
    fps: float,
    sample_rate: int,
    size: int | tuple[int, int] | None = None,
    reject_silent: bool = False,
) -> dict:
    """Read a video window and an audio window of the same length from one clip.

    Returns dict(video=(T, H, W, 3) uint8, audio=(S,) float32, info=ClipInfo), with the same
    semantics as `read_frames` and `read_audio`. The starts are independent: for an offset
    Δ > 0 (audio leads, SPEC §1) the dataset passes audio_start_sec = video_start_sec + Δ.
    """
    with _open(path) as container:
        info = _probe_container(container, path)
        audio = _decode_audio(container, info, sample_rate)
    audio = _audio_window(info, audio, audio_start_sec, duration_sec, sample_rate, reject_silent)
    video = _read_frames(info, video_start_sec, duration_sec, fps, size)
    return {"video": video, "audio": audio, "info": info}


@contextmanager
def _wrap_errors(path):
    """Turn FFmpeg's exceptions into MediaError (the original kept as __cause__)."""
    try:
        yield
    except av.FFmpegError as err:  # anything else is a bug here, and propagates as is
        raise MediaError(path, f"cannot decode: {err}") from err


@contextmanager
def _open(path):
    """Open a container with PyAV after the checks that give clearer messages than FFmpeg's."""
    if not os.path.isfile(path):
        raise MediaError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty file")
    with _wrap_errors(path):
        with av.open(str(path)) as container:
            yield container


# ---------------------------------------------------------------------------- metadata


def _probe_container(container, path) -> ClipInfo:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise MediaError(path, "no audio or video stream")
    seconds, num_frames = _stream_seconds(container, video, audio)
    existing = [seconds.get(s.index, 0.0) for s in (video, audio) if s is not None]
    if min(existing) <= 0 or (video is not None and num_frames == 0):
        raise MediaError(path, "zero length")
    return ClipInfo(
        path=str(path),
        duration_sec=min(existing),
        **_video_fields(video, seconds, num_frames),
        **_audio_fields(audio, seconds),
    )


def _video_fields(video, seconds: dict[int, float], num_frames: int) -> dict:
    if video is None:
        return dict(has_video=False, video_fps=0.0, num_frames=0, width=0, height=0, video_codec=None)
    rate = video.average_rate or video.guessed_rate or num_frames / seconds[video.index]
    context = video.codec_context
    return dict(
        has_video=True,
        video_fps=float(rate),
        num_frames=num_frames,
        width=context.width,
        height=context.height,
        video_codec=context.name,
    )


def _audio_fields(audio, seconds: dict[int, float]) -> dict:
    if audio is None:
        return dict(
            has_audio=False, audio_sample_rate=0, audio_channels=0, audio_duration_sec=0.0, audio_codec=None
        )
    context = audio.codec_context
    return dict(
        has_audio=True,
        audio_sample_rate=context.sample_rate,
        audio_channels=context.channels,
        audio_duration_sec=seconds[audio.index],
        audio_codec=context.name,
    )


def _stream_seconds(container, video, audio) -> tuple[dict[int, float], int]:
    """End time of each stream (by index) and the video frame count, from the header if there.

    A stream's duration is where it ends on the presentation timeline: that is the length of
    its decoded samples once sample 0 is put at time 0 (see `_align_to_zero`). Matroska and some
    broken files carry neither number; then the packets are demuxed (no decoding) and the
    container rewound.
    """
    streams = [s for s in (video, audio) if s is not None]
    seconds = {s.index: _end_seconds(s) for s in streams if s.duration}
    num_frames = video.frames if video is not None else 0
    if len(seconds) < len(streams) or (video is not None and num_frames == 0):
        demuxed, counted = _demux_seconds(container, streams, video)
        seconds = {**demuxed, **seconds}
        num_frames = num_frames or counted
    return seconds, num_frames


def _end_seconds(stream) -> float:
    return float(((stream.start_time or 0) + stream.duration) * stream.time_base)


def _demux_seconds(container, streams, video) -> tuple[dict[int, float], int]:
    ends, count = {}, 0
    for packet in container.demux(streams):
        if packet.pts is not None:
            end = float((packet.pts + packet.duration) * packet.time_base)
            ends[packet.stream.index] = max(ends.get(packet.stream.index, end), end)
            count += video is not None and packet.stream.index == video.index
    container.seek(0)
    return ends, count


# ---------------------------------------------------------------------------- video


def _read_frames(info: ClipInfo, start_sec, duration_sec, fps, size) -> np.ndarray:
    if not info.has_video:
        raise MediaError(info.path, "no video stream")
    times = _output_times(start_sec, duration_sec, fps)
    height, width = _output_size(info, size)
    try:
        return _read_frames_decord(info, times, start_sec, duration_sec, height, width)
    except (decord.DECORDError, RuntimeError):
        # decord cannot open some files PyAV reads, and fails on some frame widths (16, 24)
        return _read_frames_pyav(info, times, start_sec, duration_sec, height, width)


def _read_frames_decord(info: ClipInfo, times, start_sec, duration_sec, height, width) -> np.ndarray:
    """The fast path: decord seeks and decodes only what the batch needs, resizing as it goes."""
    reader = decord.VideoReader(info.path, width=width or -1, height=height or -1)
    stamps = reader.get_frame_timestamp(range(len(reader)))
    indices = _frame_indices(info, stamps[:, 0], float(stamps[-1, 1]), times, start_sec, duration_sec)
    return _as_numpy(reader.get_batch(indices))


def _read_frames_pyav(info: ClipInfo, times, start_sec, duration_sec, height, width) -> np.ndarray:
    """The slow path: demux the timestamps, then decode the file up to the last frame needed."""
    with _open(info.path) as container:
        stream = container.streams.video[0]
        starts, ends = [], []
        for packet in container.demux(stream):
            if packet.pts is not None:
                starts.append(float(packet.pts * packet.time_base))
                ends.append(starts[-1] + float(packet.duration * packet.time_base))
        order = np.argsort(starts)
        indices = _frame_indices(info, np.asarray(starts)[order], max(ends), times, start_sec, duration_sec)
        container.seek(0)
        stream.thread_type = "AUTO"
        wanted, decoded = set(indices.tolist()), {}
        for k, frame in enumerate(container.decode(stream)):
            if k in wanted:
                decoded[k] = frame.to_ndarray(format="rgb24", width=width, height=height)
            if k >= indices[-1]:
                break
    if len(decoded) < len(wanted):
        raise MediaError(info.path, f"cannot decode frame {max(wanted - decoded.keys())}")
    return np.stack([decoded[k] for k in indices])


def _output_times(start_sec: float, duration_sec: float, fps: float) -> np.ndarray:
    if start_sec < 0 or duration_sec <= 0 or fps <= 0:
        raise ValueError(f"need start >= 0, duration > 0, fps > 0; got {start_sec}, {duration_sec}, {fps}")
    return start_sec + np.arange(round(duration_sec * fps)) / fps


def _output_size(info: ClipInfo, size) -> tuple[int, int]:
    """(height, width) to decode at; None keeps the native size."""
    if size is None:
        return None, None
    if isinstance(size, int):
        scale = size / min(info.height, info.width)
        even = lambda side: max(2, int(side * scale / 2 + 0.5) * 2)  # noqa: E731
        return even(info.height), even(info.width)
    height, width = size
    return int(height), int(width)


def _frame_indices(info, starts, clip_end, times, start_sec, duration_sec) -> np.ndarray:
    """Index of the source frame on screen at each output time; check the window fits the clip."""
    frame_period = 1.0 / info.video_fps
    if start_sec + duration_sec > clip_end + frame_period + _TIMESTAMP_TOLERANCE:
        raise _too_short(info.path, start_sec, duration_sec, clip_end)
    indices = np.searchsorted(starts, times + _TIMESTAMP_TOLERANCE, side="right") - 1
    return np.clip(indices, 0, len(starts) - 1)


def _as_numpy(batch) -> np.ndarray:
    """decord returns its own NDArray, or a torch tensor if someone set the torch bridge."""
    return batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)


def _too_short(path, start_sec, duration_sec, clip_sec) -> MediaError:
    reason = f"too short: need {duration_sec:.3f} s from {start_sec:.3f} s, clip has {clip_sec:.3f} s"
    return MediaError(path, reason)


# ---------------------------------------------------------------------------- audio


def _decode_audio(container, info: ClipInfo, sample_rate: int) -> np.ndarray:
    """The whole audio stream as mono float32 at `sample_rate`, sample 0 at time 0.

    Resampled with all channels kept and averaged here: FFmpeg's own downmix to mono sums
    left and right at -3 dB each (x 0.707) instead of averaging them. The decoder drops the AAC
    priming samples (mp4 edit list) but not the padding of the last packet (up to 1023
    samples), so the result is cut to the stream duration that the container declares.
    """
    if not info.has_audio:
        raise MediaError(info.path, "no audio stream")
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    chunks, first_time = [], None
    with _wrap_errors(info.path):
        for frame in container.decode(container.streams.audio[0]):
            first_time = (frame.time or 0.0) if first_time is None else first_time
            chunks.extend(f.to_ndarray().mean(axis=0) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().mean(axis=0) for f in resampler.resample(None))
    if first_time is None:
        raise MediaError(info.path, "audio stream has no decodable frames")
    audio = _align_to_zero(np.concatenate(chunks).astype(np.float32), first_time, sample_rate)
    declared, decoded = info.audio_duration_sec, len(audio) / sample_rate
    if decoded < declared - _AUDIO_END_TOLERANCE:  # a file cut after its header
        raise MediaError(info.path, f"truncated: audio declares {declared:.3f} s, has {decoded:.3f} s")
    return audio[: round(declared * sample_rate)]


def _align_to_zero(audio: np.ndarray, first_time: float, sample_rate: int) -> np.ndarray:
    """Shift the samples so index 0 is time 0 (a stream may start a little after or before)."""
    lead = round(first_time * sample_rate)
    if lead > 0:
        return np.concatenate([np.zeros(lead, np.float32), audio])
    return audio[-lead:]


def _audio_window(info, audio, start_sec, duration_sec, sample_rate, reject_silent) -> np.ndarray:
    if reject_silent and np.abs(audio - audio.mean()).max(initial=0.0) < _SILENCE_PEAK:
        raise MediaError(info.path, "silent audio")
    clip_sec = len(audio) / sample_rate
    if duration_sec is None:
        duration_sec = max(clip_sec - start_sec, 0.0)
    if start_sec < 0 or duration_sec < 0:
        raise ValueError(f"need start >= 0 and duration >= 0; got {start_sec}, {duration_sec}")
    if start_sec + duration_sec > clip_sec + _AUDIO_END_TOLERANCE:
        raise _too_short(info.path, start_sec, duration_sec, clip_sec)
    begin, length = round(start_sec * sample_rate), round(duration_sec * sample_rate)
    window = np.zeros(length, np.float32)
    kept = audio[begin : begin + length]
    window[: len(kept)] = kept
    return window

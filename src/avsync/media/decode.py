"""Decoding clips for training and evaluation: frames with decord, audio and metadata with PyAV.

All times are seconds on the file's presentation timeline, for both streams, so a video window
and an audio window with the same start show and play the same moment. Time 0 is where the
earlier of the two streams starts (the smallest stream start_time, as FFmpeg's own tools count
it), so a stream that starts late keeps its delay, and MPEG-TS files (whose clocks start
anywhere) begin at 0. Every frame keeps its own pts (edit lists applied by the demuxer, variable
frame rate kept); output frame i is the source frame nearest to start + i / fps, never index
arithmetic (docs/media-timing.md has the measurements behind that rule and its bias).

The fast path reads frames with decord, which numbers time from the video stream's own start:
its timestamps are shifted onto the timeline here. decord is not used for MPEG-TS (its
get_batch failed on a TS with B-frames here; issue 19 saw it return frames out of order and
hang) nor where its frame count or timestamps disagree with the container's; PyAV decodes those.
Every decode is watched (`run_bounded`): a decoder that makes no progress for
`DECODE_TIMEOUT_SEC` is abandoned with a MediaError naming the file.

Every failure of a file is a `MediaError` naming it; arguments that cannot be right (a
negative start, fps <= 0) are caller bugs: ValueError.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import av
import decord
import numpy as np

from avsync.media.errors import MediaError

# seconds a decoder may go without progress before it is abandoned (env AVSYNC_DECODE_TIMEOUT)
DECODE_TIMEOUT_SEC = float(os.environ.get("AVSYNC_DECODE_TIMEOUT", "60"))
# extra seconds per frame for decord's get_batch, which cannot report progress while it runs
_DECORD_SEC_PER_FRAME = 0.05
# containers decord misreads (MPEG-TS: get_batch fails or hangs, frames out of order): PyAV decodes them
_NO_DECORD_FORMATS = ("mpegts",)
# two frames this close to equally near an output time count as a tie (decord's timestamps are
# float32): the earlier one is taken, on both paths alike
_TIE_SEC = 1e-5
# decord's timestamps must match the container's to this (seconds), or PyAV decodes the file
_DECORD_TIME_TOLERANCE = 2e-3
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
    # where each stream starts on the timeline (time 0 = the earlier of the two); None if absent
    video_start_sec: float | None = None
    audio_start_sec: float | None = None
    # container seconds of timeline time 0 (the smallest stream start_time) and the demuxer's name
    origin_sec: float = 0.0
    container_format: str = ""


def probe(path: str | os.PathLike) -> ClipInfo:
    """Read a clip's metadata from its container header (demuxing only if durations are missing)."""
    return run_bounded(path, _probe_path, path)


def read_frames(
    path: str | os.PathLike,
    start_sec: float,
    duration_sec: float,
    fps: float,
    size: int | tuple[int, int] | None = None,
) -> np.ndarray:
    """Return round(duration_sec * fps) RGB frames (T, H, W, 3) uint8 sampled at `fps`.

    Frame i is the source frame whose presentation time is nearest to start_sec + i / fps (the
    earlier one on a tie; before the first frame, the first), turned as the display matrix says.
    `size`: an int makes the short side that long (aspect kept, both sides even), a tuple is
    (H, W), None keeps the native size. A window that runs past the last frame by at
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
    info, audio = run_bounded(path, _probe_and_decode_audio, path, sample_rate)
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
    Δ > 0 (audio leads, docs/conventions.md) the dataset passes audio_start_sec = video_start_sec + Δ.
    """
    info, audio = run_bounded(path, _probe_and_decode_audio, path, sample_rate)
    audio = _audio_window(info, audio, audio_start_sec, duration_sec, sample_rate, reject_silent)
    video = _read_frames(info, video_start_sec, duration_sec, fps, size)
    return {"video": video, "audio": audio, "info": info}


def _probe_path(path) -> ClipInfo:
    with _open(path) as container:
        return _probe_container(container, path)


def _probe_and_decode_audio(path, sample_rate: int) -> tuple[ClipInfo, np.ndarray]:
    """One open for both (the container is opened and closed in the decoding thread, so an
    abandoned decode never has its container closed under it)."""
    with _open(path) as container:
        info = _probe_container(container, path)
        # a container that was demuxed for its durations is not rewound reliably: open it again
        return info, _decode_audio(info, sample_rate, None if _needs_demux(container) else container)


def run_bounded(path, fn, *args, allowance: float = 0.0):
    """fn(*args), abandoned with a MediaError once it makes no progress for DECODE_TIMEOUT_SEC.

    The call runs in a daemon thread (decord and PyAV release the GIL while they decode), so a
    decoder stuck in C cannot stop the caller: the thread is left behind and the caller goes on
    to the next file. `fn` must open (and close) its own files, so that nothing it uses is closed
    under it. Progress is each `tick()` of the call (PyAV loops tick per frame); a call that
    cannot tick (decord's get_batch) gets `allowance` more seconds."""
    result: dict = {}

    def call():
        try:
            result["value"] = fn(*args)
        except BaseException as err:  # handed to the caller below
            result["error"] = err
        finally:
            _PROGRESS.pop(threading.get_ident(), None)

    worker = threading.Thread(target=call, name=f"decode {os.path.basename(str(path))}", daemon=True)
    worker.start()
    seen, since = -1, time.monotonic()
    while worker.is_alive():
        worker.join(0.05 if time.monotonic() - since < 1.0 else 0.5)
        count = _PROGRESS.get(worker.ident, 0)
        if count != seen:
            seen, since = count, time.monotonic()
        elif worker.is_alive() and time.monotonic() - since > DECODE_TIMEOUT_SEC + allowance:
            raise MediaError(path, f"decoder stalled: no progress for {DECODE_TIMEOUT_SEC + allowance:g} s, "
                                   "abandoned")
    if "error" in result:
        raise result["error"]
    return result["value"]


_PROGRESS: dict[int, int] = {}


def tick() -> None:
    """Record progress of the decode running in this thread (see `run_bounded`)."""
    ident = threading.get_ident()
    _PROGRESS[ident] = _PROGRESS.get(ident, 0) + 1


@contextmanager
def _wrap_errors(path):
    """Turn FFmpeg's exceptions into MediaError (the original kept as __cause__)."""
    try:
        yield
    except av.FFmpegError as err:  # anything else is a bug here, and propagates as is
        raise MediaError(path, f"cannot decode: {err}") from err


@contextmanager
def _borrowed(container):
    """An already open container, left open (its owner closes it)."""
    yield container


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
    seconds, num_frames, firsts = _stream_seconds(container, video, audio)
    origin = _origin(video, audio, firsts)
    seconds = {index: end - origin for index, end in seconds.items()}
    existing = [seconds.get(s.index, 0.0) for s in (video, audio) if s is not None]
    if min(existing) <= 0 or (video is not None and num_frames == 0):
        raise MediaError(path, "zero length")
    starts = {s.index: _start_seconds(s, firsts) - origin for s in (video, audio) if s is not None}
    return ClipInfo(
        path=str(path),
        duration_sec=min(existing),
        **_video_fields(video, seconds, num_frames),
        **_audio_fields(audio, seconds),
        video_start_sec=None if video is None else starts[video.index],
        audio_start_sec=None if audio is None else starts[audio.index],
        origin_sec=origin,
        container_format=container.format.name,
    )


def _start_seconds(stream, firsts: dict[int, float]) -> float:
    """Where a stream starts in container seconds: its start_time, else its first packet's pts."""
    if stream.start_time is not None:
        return float(stream.start_time * stream.time_base)
    return firsts.get(stream.index, 0.0)


def _origin(video, audio, firsts: dict[int, float]) -> float:
    """Container seconds of timeline time 0: the earliest start of the streams read."""
    return min(_start_seconds(s, firsts) for s in (video, audio) if s is not None)


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


def _stream_seconds(container, video, audio) -> tuple[dict[int, float], int, dict[int, float]]:
    """End time of each stream (by index, container seconds), the video frame count, and the
    first pts of streams without a start_time, from the header where it has them.

    A stream's end is where it ends on the presentation timeline: that is the length of its
    decoded samples once each is placed at its own time (see `_align_to_origin`). Matroska and
    some broken files carry no duration or count; then the packets are demuxed (no decoding) and
    the container rewound.
    """
    streams = [s for s in (video, audio) if s is not None]
    seconds = {s.index: _end_seconds(s) for s in streams if s.duration}
    num_frames = video.frames if video is not None else 0
    firsts: dict[int, float] = {}
    if _needs_demux(container):
        demuxed, counted, firsts = _demux_seconds(container, streams, video)
        seconds = {**demuxed, **seconds}
        num_frames = num_frames or counted
    return seconds, num_frames, firsts


def _needs_demux(container) -> bool:
    """Whether the header lacks a duration, a start or the frame count of the streams read."""
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    streams = [s for s in (video, audio) if s is not None]
    return (any(not s.duration or s.start_time is None for s in streams)
            or (video is not None and not video.frames))


def _end_seconds(stream) -> float:
    return float(((stream.start_time or 0) + stream.duration) * stream.time_base)


def _demux_seconds(container, streams, video) -> tuple[dict[int, float], int, dict[int, float]]:
    ends, firsts, count = {}, {}, 0
    for packet in container.demux(streams):
        tick()
        if packet.pts is not None:
            index, start = packet.stream.index, float(packet.pts * packet.time_base)
            end = start + float(packet.duration * packet.time_base)
            ends[index] = max(ends.get(index, end), end)
            firsts[index] = min(firsts.get(index, start), start)
            count += video is not None and index == video.index
    container.seek(0)
    return ends, count, firsts


# ---------------------------------------------------------------------------- video


def _read_frames(info: ClipInfo, start_sec, duration_sec, fps, size) -> np.ndarray:
    if not info.has_video:
        raise MediaError(info.path, "no video stream")
    times = _output_times(start_sec, duration_sec, fps)
    rotation = _rotation(info)
    height, width = _output_size(info, size, rotation)
    if info.container_format not in _NO_DECORD_FORMATS:
        try:
            frames = run_bounded(info.path, _read_frames_decord, info, times, start_sec, duration_sec, height, width,
                              allowance=_DECORD_SEC_PER_FRAME * len(times))
        except (decord.DECORDError, RuntimeError):
            # decord cannot open some files PyAV reads, and fails on some frame widths (16, 24)
            frames = None
        if frames is not None:
            return frames
    return run_bounded(info.path, _read_frames_pyav, info, times, start_sec, duration_sec, height, width, rotation)


_ROTATIONS: dict[tuple[str, float], int] = {}


def _rotation(info: ClipInfo) -> int:
    """Quarter turns (0-3, counter-clockwise) the display matrix asks for, read from the first
    decoded frame (PyAV exposes it only there) and remembered per file and modification time.

    Both paths return frames as displayed (decord applies the matrix itself, as FFmpeg does)."""
    key = (info.path, os.path.getmtime(info.path))
    if key not in _ROTATIONS:
        if len(_ROTATIONS) > 4096:
            _ROTATIONS.clear()
        _ROTATIONS[key] = run_bounded(info.path, _first_frame_turns, info.path)
    return _ROTATIONS[key]


def _first_frame_turns(path) -> int:
    with _open(path) as container, _wrap_errors(path):
        frame = next(container.decode(container.streams.video[0]), None)
    return round((frame.rotation if frame is not None else 0) / 90) % 4


def _read_frames_decord(info: ClipInfo, times, start_sec, duration_sec, height, width) -> np.ndarray | None:
    """The fast path: decord seeks and decodes only what the batch needs, resizing as it goes.

    decord's timestamps count from the video stream's first frame; adding the stream's start on
    the timeline puts them where PyAV and FFmpeg put them. None (PyAV decodes the file instead)
    when decord sees a different number of frames than the container declares, or timestamps
    that do not start at 0 and increase."""
    reader = decord.VideoReader(info.path, width=width or -1, height=height or -1)
    stamps = reader.get_frame_timestamp(range(len(reader)))
    starts = stamps[:, 0]
    if (len(reader) != info.num_frames or abs(starts[0]) > _DECORD_TIME_TOLERANCE
            or np.any(np.diff(starts) <= 0)):
        return None
    shift = info.video_start_sec or 0.0
    indices = _frame_indices(info, starts + shift, float(stamps[-1, 1]) + shift, times, start_sec, duration_sec)
    return _as_numpy(reader.get_batch(indices))


def _read_frames_pyav(info: ClipInfo, times, start_sec, duration_sec, height, width, rotation=0) -> np.ndarray:
    """The slow path: demux the timestamps, then decode the file up to the last frame needed.

    Frames are matched by their own pts (not by decode order), so frames a decoder drops or
    reorders cannot shift the picture."""
    with _open(info.path) as container:
        stream = container.streams.video[0]
        stamps, ends = [], []
        for packet in container.demux(stream):
            tick()
            if packet.pts is not None and packet.size and not packet.is_discard:  # AVI: empty = no frame
                stamps.append(packet.pts)
                ends.append(float((packet.pts + (packet.duration or 0)) * packet.time_base) - info.origin_sec)
        if not stamps:
            raise MediaError(info.path, "no video frame has a timestamp")
        stamps = np.unique(np.asarray(stamps))
        time_base = float(stream.time_base)
        seconds = stamps.astype(np.float64) * time_base - info.origin_sec
        # a frame without a duration (MPEG-TS) lasts one nominal frame period
        clip_end = max(max(ends), float(seconds[-1]) + 1.0 / info.video_fps)
        indices = _frame_indices(info, seconds, clip_end, times, start_sec, duration_sec)
    wanted = {int(stamps[k]) for k in indices}
    last = max(wanted)
    decoded = {}
    # decoded from a fresh open: a seek back to 0 can land after the start of a late stream
    with _open(info.path) as container, _wrap_errors(info.path):
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            tick()
            if frame.pts in wanted and frame.pts not in decoded:
                coded = (height, width) if rotation % 2 == 0 else (width, height)
                picture = frame.to_ndarray(format="rgb24", width=coded[1], height=coded[0])
                decoded[frame.pts] = np.ascontiguousarray(np.rot90(picture, rotation))
            if frame.pts is not None and frame.pts >= last and len(decoded) == len(wanted):
                break
    if len(decoded) < len(wanted):
        missing = sorted(wanted - decoded.keys())[0] * time_base - info.origin_sec
        raise MediaError(info.path, f"cannot decode the frame at {missing:.3f} s")
    return np.stack([decoded[int(stamps[k])] for k in indices])


def _output_times(start_sec: float, duration_sec: float, fps: float) -> np.ndarray:
    if start_sec < 0 or duration_sec <= 0 or fps <= 0:
        raise ValueError(f"need start >= 0, duration > 0, fps > 0; got {start_sec}, {duration_sec}, {fps}")
    return start_sec + np.arange(round(duration_sec * fps)) / fps


def _output_size(info: ClipInfo, size, rotation: int = 0) -> tuple[int, int]:
    """(height, width) of the displayed (rotated) picture to decode at; None keeps the native size."""
    if size is None:
        return None, None
    if isinstance(size, int):
        scale = size / min(info.height, info.width)
        even = lambda side: max(2, int(side * scale / 2 + 0.5) * 2)  # noqa: E731
        height, width = even(info.height), even(info.width)
        return (height, width) if rotation % 2 == 0 else (width, height)
    height, width = size
    return int(height), int(width)


def _frame_indices(info, starts, clip_end, times, start_sec, duration_sec) -> np.ndarray:
    """Index of the source frame nearest each output time (`starts`: sorted frame times on the
    timeline); check the window fits the clip (up to one frame period past its end)."""
    frame_period = 1.0 / info.video_fps
    if start_sec + duration_sec > clip_end + frame_period + 1e-3:
        raise _too_short(info.path, start_sec, duration_sec, clip_end)
    return nearest_frames(starts, times)


def nearest_frames(starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index into the sorted frame times `starts` of the frame nearest each of `times`.

    A tie goes to the earlier frame, as FFmpeg's fps filter does (round to nearest, half away
    from zero, keep the last frame at or before the rounded slot)."""
    starts = np.asarray(starts, np.float64)
    after = np.clip(np.searchsorted(starts, times, side="left"), 1, max(len(starts) - 1, 1))
    before = after - 1
    if len(starts) == 1:
        return np.zeros(len(times), np.int64)
    take_before = np.abs(times - starts[before]) <= np.abs(starts[after] - times) + _TIE_SEC
    return np.where(take_before, before, after)


def _as_numpy(batch) -> np.ndarray:
    """decord returns its own NDArray, or a torch tensor if someone set the torch bridge."""
    return batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)


def _too_short(path, start_sec, duration_sec, clip_sec) -> MediaError:
    reason = f"too short: need {duration_sec:.3f} s from {start_sec:.3f} s, clip has {clip_sec:.3f} s"
    return MediaError(path, reason)


# ---------------------------------------------------------------------------- audio


def _decode_audio(info: ClipInfo, sample_rate: int, container=None) -> np.ndarray:
    """The whole audio stream as mono float32 at `sample_rate`, sample 0 at timeline time 0.

    Resampled with all channels kept and averaged here: FFmpeg's own downmix to mono sums
    left and right at -3 dB each (x 0.707) instead of averaging them. The decoder drops the AAC
    priming samples (mp4 edit list) but not the padding of the last packet (up to 1023
    samples), so the result is cut to the stream duration that the container declares. Where the
    container has no edit list and no codec delay (MPEG-TS), the priming samples stay, at the
    times the muxer stamped them (before the first real sample, which keeps its place).
    """
    if not info.has_audio:
        raise MediaError(info.path, "no audio stream")
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    chunks, first_time = [], None
    with (_open(info.path) if container is None else _borrowed(container)) as container, _wrap_errors(info.path):
        for frame in container.decode(container.streams.audio[0]):
            tick()
            if first_time is None:
                first_time = (frame.time if frame.time is not None else info.origin_sec) - info.origin_sec
            chunks.extend(f.to_ndarray().mean(axis=0) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().mean(axis=0) for f in resampler.resample(None))
    if first_time is None:
        raise MediaError(info.path, "audio stream has no decodable frames")
    audio = _align_to_origin(np.concatenate(chunks).astype(np.float32), first_time, sample_rate)
    declared, decoded = info.audio_duration_sec, len(audio) / sample_rate
    if decoded < declared - _AUDIO_END_TOLERANCE:  # a file cut after its header
        raise MediaError(info.path, f"truncated: audio declares {declared:.3f} s, has {decoded:.3f} s")
    return audio[: round(declared * sample_rate)]


def _align_to_origin(audio: np.ndarray, first_time: float, sample_rate: int) -> np.ndarray:
    """Shift the samples so index 0 is timeline time 0 (`first_time`: where the first decoded
    sample plays, on the timeline; a stream may start after the video, or a little before)."""
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

"""Writing clips in-process with PyAV (there is no system ffmpeg).

Tests, toy datasets and the codec-artefact probe build their clips here, so the writer must make
files that behave like the real preprocessed data: H.264 (or MPEG-4 Part 2 for the SparseSync
§4 probe), AAC or lossless PCM audio, constant frame rate, audio and video of the same duration.
"""
from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avsync.media.decode import probe, read_audio, read_frames

# container chosen from the file suffix; older FFmpeg builds refuse PCM in .mp4, .mov/.mkv take it
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_VIDEO_CODECS = ("h264", "mpeg4")
_MPEG4_DEFAULT_GOP = 12  # ffmpeg's default keyframe interval for mpeg4
_AUDIO_CODECS = ("aac", "pcm_s16le")
_AUDIO_LAYOUTS = {1: "mono", 2: "stereo"}


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    vcodec: str = "h264",
    acodec: str = "aac",
    crf: int = 18,
    gop: int | None = None,
    pix_fmt: str = "yuv420p",
    preset: str | None = None,
    deterministic: bool = False,
) -> Path:
    """Encode RGB frames (T, H, W, 3) uint8 and optional audio into a video file.

    Audio is float in [-1, 1], mono (S,) or channels-first (C, S), already at `sample_rate`
    (no resampling here). Its length must match the video duration T / fps to within one
    frame period; it is then padded with zeros or trimmed to exactly round(T / fps * rate)
    samples, so both streams end together (AAC adds its usual priming/padding, which the mp4
    edit list hides from decoders). `crf` applies to H.264 only; MPEG-4 Part 2 keeps ffmpeg's
    defaults (bit rate and a keyframe every 12 frames) because the SparseSync codec probe wants
    exactly that encoder. `preset` is x264's speed/size trade-off (None: x264's default, "medium").
    `deterministic` makes x264 write the same packets for the same frames on every run, in any
    process: x264's macroblock-tree rate control (mbtree, on by default) gives other packets for the
    same input from one encode to the next within a process (measured: three encodes of one toy clip
    in a row, three different files, decoded frames up to 52 levels apart; with mbtree off, or its
    assembly off, identical), so content that must decode identically everywhere (the toy sets) is
    written with mbtree off and one encoder thread.
    The container follows the suffix (.mp4/.m4v, .mov, .mkv); the file
    appears atomically (written under a temporary name, then renamed).
    """
    path = Path(path)
    fmt = _container_format(path)
    encoder = _video_encoder(vcodec)
    if acodec not in _AUDIO_CODECS:
        raise ValueError(f"acodec must be one of {_AUDIO_CODECS}, got {acodec!r}")
    frames = _check_frames(frames, pix_fmt)
    rate = _fps_fraction(fps)
    if audio is not None:
        audio = _fit_audio(audio, len(frames), rate, sample_rate)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format=fmt) as container:
            video = _add_video_stream(container, encoder, frames.shape, rate, crf, gop, pix_fmt, preset, deterministic)
            sound = None if audio is None else _add_audio_stream(container, acodec, len(audio), sample_rate)
            _mux(container, video, frames, rate, sound, audio, sample_rate)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; a shared cache needs the usual mode
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def shift_audio_copy(src: str | os.PathLike, dst: str | os.PathLike, offset_sec: float) -> Path:
    """Copy `src` to `dst` with the audio moved `offset_sec` earlier against the picture.

    The output audio at time t is the source audio at time t + offset_sec (docs/conventions.md sign): on an
    in-sync source, a positive offset makes the audio lead by offset_sec (a sound is heard
    offset_sec before the picture that makes it), exactly like a dataset crop whose audio starts
    offset_sec later in the source; a negative offset makes it lag. Applying -Δ to a clip whose
    audio leads by Δ puts it back in sync (up to the samples lost at the ends). Wherever t +
    offset_sec falls outside the source audio the output is silence; the video, and so the
    duration, are unchanged. The copy is re-encoded with `write_mp4` defaults (H.264 crf 18,
    AAC), audio mono at the source sample rate, frames at the source's average frame rate.
    """
    info = probe(src)
    video_sec = info.num_frames / info.video_fps
    frames = read_frames(src, 0.0, video_sec, info.video_fps)
    rate = info.audio_sample_rate
    audio = _shift(read_audio(src, sample_rate=rate), round(offset_sec * rate), round(video_sec * rate))
    return write_mp4(dst, frames, info.video_fps, audio, rate)


def _shift(audio: np.ndarray, lead: int, length: int) -> np.ndarray:
    """out[i] = audio[i + lead] for i < length, silence where that index is outside `audio`."""
    out = np.zeros(length, np.float32)
    source, target = max(lead, 0), max(-lead, 0)
    count = max(0, min(len(audio) - source, length - target))
    out[target : target + count] = audio[source : source + count]
    return out


def _container_format(path: Path) -> str:
    try:
        return _CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: unsupported suffix, use one of {sorted(_CONTAINERS)}") from None


def _check_frames(frames: np.ndarray, pix_fmt: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise ValueError(f"yuv420p needs even width and height, got {width}x{height}")
    return frames


def _fps_fraction(fps: float) -> Fraction:
    """29.97 -> 2997/100 and 30000/1001 (as a float) -> 30000/1001: the time base is exact."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


def _fit_audio(audio: np.ndarray, num_frames: int, rate: Fraction, sample_rate: int) -> np.ndarray:
    """Return (C, S) float32 with S = the video duration in samples (zero-pad or trim)."""
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    if audio.ndim != 2 or audio.shape[0] not in _AUDIO_LAYOUTS:
        raise ValueError(f"audio must be (S,) or (C, S) with C in {list(_AUDIO_LAYOUTS)}, got {audio.shape}")
    target = round(num_frames / rate * sample_rate)
    if abs(audio.shape[1] - target) > sample_rate / rate:
        raise ValueError(
            f"audio has {audio.shape[1]} samples but {num_frames} frames at {float(rate):g} fps "
            f"need {target} at {sample_rate} Hz"
        )
    fitted = np.zeros((audio.shape[0], target), np.float32)
    kept = min(target, audio.shape[1])
    fitted[:, :kept] = np.clip(audio[:, :kept], -1.0, 1.0)
    return fitted


def _mux(container, video, frames, rate, sound, audio, sample_rate) -> None:
    """Encode frame i together with the audio it covers, so the packets come out interleaved."""
    bounds = [round(i / rate * sample_rate) for i in range(len(frames) + 1)]
    for i, rgb in enumerate(frames):
        # explicit conversion: with PyAV's implicit one inside encode(), 7 of 16 repeated encodes of
        # the same frames differed (measured); this way about 1 in 30 still does (source not found)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=video.pix_fmt)
        frame.pts, frame.time_base = i, 1 / rate
        container.mux(video.encode(frame))
        if sound is not None and bounds[i + 1] > bounds[i]:
            chunk = np.ascontiguousarray(audio[:, bounds[i] : bounds[i + 1]])
            piece = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=_AUDIO_LAYOUTS[len(audio)])
            piece.sample_rate, piece.pts, piece.time_base = sample_rate, bounds[i], Fraction(1, sample_rate)
            container.mux(sound.encode(piece))
    container.mux(video.encode(None))
    if sound is not None:
        container.mux(sound.encode(None))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _add_video_stream(container, encoder, shape, rate, crf, gop, pix_fmt, preset=None, deterministic=False):
    stream = container.add_stream(encoder, rate=rate)
    stream.height, stream.width = shape[1:3]
    stream.pix_fmt = pix_fmt
    if encoder == "libx264":
        stream.options = {"crf": str(crf), **({"preset": preset} if preset else {}),
                          **({"x264-params": "mbtree=0"} if deterministic else {})}
    if deterministic:
        stream.codec_context.thread_count = 1
    gop = _MPEG4_DEFAULT_GOP if gop is None and encoder == "mpeg4" else gop
    if gop is not None:
        stream.codec_context.gop_size = gop
    return stream


def _add_audio_stream(container, acodec: str, channels: int, sample_rate: int):
    stream = container.add_stream(acodec, rate=sample_rate)
    stream.layout = _AUDIO_LAYOUTS[channels]
    return stream


def _video_encoder(vcodec: str) -> str:
    """The encoder FFmpeg picks for the codec (libx264 for h264 in the PyAV wheels)."""
    if vcodec not in _VIDEO_CODECS:
        raise ValueError(f"vcodec must be one of {_VIDEO_CODECS}, got {vcodec!r}")
    try:
        return av.Codec(vcodec, "w").name
    except av.codec.codec.UnknownCodecError:
        raise ValueError(f"this PyAV build has no {vcodec} encoder") from None

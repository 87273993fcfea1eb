"""``avsync prepare``: re-encode raw downloads to the papers' format, in-process with PyAV.

SparseSync §4 found that codec artefacts leak timing (MPEG-4 Part 2 video, AAC at 44.1 kHz):
a model can learn the offset from them instead of from the content. Every dataset of this suite is
therefore stored as the papers recommend: H.264 (never MPEG-4 Part 2) at 25 fps, short side 256,
AAC at 16 kHz mono. ``--keep-rates`` keeps each file's frame rate and sample rate instead (DiVAS,
LRS3-multfps); the audio is still mixed to mono and the frame rate made constant.

Frames are resampled by timestamp (output frame k shows the source frame nearest to k / fps, as the
decoders of :mod:`avsync.media.decode` read; time 0 is where the earlier stream starts), so
variable-frame-rate sources and streams that start at different times (MPEG-TS clocks, a late video
stream) come out at a constant rate with picture and sound still aligned. Channels are averaged
(not FFmpeg's -3 dB sum) and the audio padded or cut to the video's length.

Resumable: each output is written under a temporary name beside it and renamed when complete,
so an output that exists is finished; a rerun skips those (after a header probe) and redoes the
rest, removing stale temporary files. Inputs that cannot be converted are listed with the reason
in ``<output root>/prepare_failures.tsv`` and never stop the run, not even a worker process
that dies (its file is retried alone, then reported); the exit status is 1 when any file failed.
A transcode that makes no progress for ``DECODE_TIMEOUT_SEC`` is abandoned and reported.
LRS3's ``.txt`` face boxes beside a clip are copied along. Rotated sources are written upright.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avsync.media import MediaError, probe
from avsync.media.decode import run_bounded, tick

__all__ = ["PrepareOptions", "transcode", "prepare", "main", "FAILURES_NAME"]

log = logging.getLogger(__name__)

FAILURES_NAME = "prepare_failures.tsv"
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".ts", ".mts", ".m2ts")
_PARTIAL = ".partial"
_AAC_FRAME = 1024


@dataclass(frozen=True)
class PrepareOptions:
    """What the outputs look like (defaults: SparseSync's preprocessing)."""

    fps: float = 25.0
    short_side: int | None = 256        # None: keep the size
    sample_rate: int = 16000
    keep_rates: bool = False            # keep each input's frame rate and sample rate
    crf: int = 23                       # x264's default quality


# ---------------------------------------------------------------------------- one file
def transcode(src: str | os.PathLike, dst: str | os.PathLike, options: PrepareOptions = PrepareOptions()) -> Path:
    """Re-encode ``src`` to ``dst`` (H.264 + AAC mono in mp4); raises MediaError on bad input.

    The file appears atomically: it is written as ``.<name>.partial`` first, then renamed."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}{_PARTIAL}")
    try:
        # abandoned with MediaError "decoder stalled" after DECODE_TIMEOUT_SEC without progress
        run_bounded(src, _transcode, src, tmp, options)
        info = probe(tmp)
        if not (info.has_video and info.has_audio and info.video_codec == "h264"):
            raise MediaError(src, f"output check failed: {info}")
        os.replace(tmp, dst)
    except av.FFmpegError as err:
        raise MediaError(src, f"cannot convert: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def _transcode(src: Path, tmp: Path, options: PrepareOptions) -> None:
    if not src.is_file() or src.stat().st_size == 0:
        raise MediaError(src, "empty file" if src.is_file() else "no such file")
    with av.open(str(src)) as inp:
        if not inp.streams.video:
            raise MediaError(src, "no video stream")
        if not inp.streams.audio:
            raise MediaError(src, "no audio stream")
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        rate = _frame_rate(vin, options)
        sample_rate = (ain.codec_context.sample_rate or options.sample_rate) if options.keep_rates else options.sample_rate
        turns = _quarter_turns(src)
        height, width = _output_size(vin.codec_context.height, vin.codec_context.width, options.short_side)
        height, width = (height, width) if turns % 2 == 0 else (width, height)
        origin = _origin(vin, ain)
        with av.open(str(tmp), mode="w", format="mp4") as out:
            vout = out.add_stream("libx264", rate=rate)
            vout.height, vout.width, vout.pix_fmt = height, width, "yuv420p"
            vout.options = {"crf": str(options.crf)}
            aout = out.add_stream("aac", rate=sample_rate)
            aout.layout = "mono"
            video = _VideoResampler(out, vout, rate, width, height, turns)
            resampler = av.AudioResampler(format="fltp", rate=sample_rate)
            chunks, first_audio = [], None
            for packet in inp.demux(vin, ain):
                tick()
                for frame in packet.decode():
                    if frame.time is None:
                        continue
                    if packet.stream.index == vin.index:
                        video.push(frame, frame.time - origin)
                    else:
                        first_audio = frame.time - origin if first_audio is None else first_audio
                        chunks += [f.to_ndarray().mean(axis=0) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().mean(axis=0) for f in resampler.resample(None)]
            num_frames = video.finish()
            if num_frames == 0:
                raise MediaError(src, "no video frame could be decoded")
            if first_audio is None:
                raise MediaError(src, "no audio frame could be decoded")
            audio = _fit(np.concatenate(chunks).astype(np.float32), first_audio, num_frames / rate, sample_rate)
            _encode_audio(out, aout, audio, sample_rate)


def _frame_rate(vin, options: PrepareOptions) -> Fraction:
    if not options.keep_rates:
        return Fraction(options.fps).limit_denominator(1001)
    rate = vin.average_rate or vin.guessed_rate
    if not rate:
        raise MediaError(vin.container.name, "unknown frame rate")
    return Fraction(rate).limit_denominator(1001)


def _output_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    if not height or not width:
        raise ValueError("the video stream has no size")
    scale = 1.0 if short_side is None else short_side / min(height, width)
    even = lambda side: max(2, int(side * scale / 2 + 0.5) * 2)  # noqa: E731
    return even(height), even(width)


def _quarter_turns(src: Path) -> int:
    """Counter-clockwise quarter turns the display matrix asks for (from the first frame: PyAV
    shows it only there). The output is written upright, without a matrix, as the readers
    return frames."""
    with av.open(str(src)) as inp:
        frame = next(inp.decode(inp.streams.video[0]), None)
    return round((frame.rotation if frame is not None else 0) / 90) % 4


def _origin(*streams) -> float:
    """Time 0 of the output: the earliest stream start (0 when the container gives none)."""
    starts = [float(s.start_time * s.time_base) for s in streams if s.start_time is not None]
    return min(starts) if starts else 0.0


class _VideoResampler:
    """Encodes, for each output time k / rate, the source frame nearest to that time (the earlier
    one on a tie; the first frame before the first frame's time)."""

    def __init__(self, out, stream, rate: Fraction, width: int, height: int, turns: int = 0) -> None:
        self.out, self.stream, self.rate = out, stream, rate
        self.width, self.height, self.turns = width, height, turns
        self.prev, self.prev_time, self.period, self.count = None, 0.0, 1.0 / float(rate), 0

    def push(self, frame, time: float) -> None:
        if self.prev is not None:
            self.period = max(time - self.prev_time, 1e-3) if time > self.prev_time else self.period
        while self.count / self.rate < time - 1e-6:
            t = float(self.count / self.rate)
            nearer_prev = self.prev is not None and t - self.prev_time <= time - t + 1e-5
            self._emit(self.prev if nearer_prev else frame)
        self.prev, self.prev_time = frame, time

    def finish(self) -> int:
        if self.prev is not None:
            end = self.prev_time + self.period  # the last frame stays on screen one frame period
            while self.count / self.rate < end - 1e-6:
                self._emit(self.prev)
        self.out.mux(self.stream.encode(None))
        return self.count

    def _emit(self, frame) -> None:
        if self.turns:
            upright = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), self.turns))
            frame = av.VideoFrame.from_ndarray(upright, format="rgb24")
        picture = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        picture.pts, picture.time_base = self.count, Fraction(1) / self.rate
        self.out.mux(self.stream.encode(picture))
        self.count += 1


def _fit(audio: np.ndarray, first_time: float, seconds: float, sample_rate: int) -> np.ndarray:
    """Audio on the output timeline: sample 0 at time 0, exactly the video's length."""
    lead = round(first_time * sample_rate)
    audio = np.concatenate([np.zeros(lead, np.float32), audio]) if lead > 0 else audio[-lead:]
    length = round(seconds * sample_rate)
    out = np.zeros(length, np.float32)
    out[: min(length, len(audio))] = audio[:length]
    return np.clip(out, -1.0, 1.0)


def _encode_audio(out, stream, audio: np.ndarray, sample_rate: int) -> None:
    for start in range(0, len(audio), _AAC_FRAME):
        chunk = np.ascontiguousarray(audio[None, start : start + _AAC_FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


# ---------------------------------------------------------------------------- a folder
@dataclass
class PrepareResult:
    converted: list[str]
    skipped: list[str]
    failed: list[tuple[str, str]]     # (input path relative to the input root, reason)
    report: Path


def find_inputs(src_root: Path) -> list[Path]:
    """Video files under ``src_root`` (relative paths, sorted), hidden and partial files left out."""
    out = []
    for folder, _, files in os.walk(src_root):
        for name in files:
            if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith("."):
                out.append(Path(folder, name).relative_to(src_root))
    return sorted(out)


def _finished(dst: Path) -> bool:
    """An output that exists was renamed into place complete; a header probe guards against a
    file replaced or cut by hand since."""
    if not dst.is_file():
        return False
    try:
        info = probe(dst)
    except MediaError:
        return False
    return info.has_video and info.has_audio


def _convert_one(src: str, dst: str, options: PrepareOptions) -> tuple[str, str | None]:
    """Worker: convert one file; (src, None) on success, (src, reason) on failure."""
    try:
        transcode(src, dst, options)
        sidecar = Path(src).with_suffix(".txt")
        if sidecar.is_file():
            shutil.copyfile(sidecar, Path(dst).with_suffix(".txt"))
        return src, None
    except (MediaError, ValueError, OSError) as err:
        return src, getattr(err, "reason", None) or f"{type(err).__name__}: {err}"


def prepare(src_root: str | os.PathLike, dst_root: str | os.PathLike, options: PrepareOptions = PrepareOptions(),
            workers: int = 1, progress: bool = True) -> PrepareResult:
    """Convert every video under ``src_root`` into the same relative path (``.mp4``) under
    ``dst_root``; see the module docstring."""
    src_root, dst_root = Path(src_root).expanduser(), Path(dst_root).expanduser()
    if not src_root.is_dir():
        raise FileNotFoundError(f"input folder {src_root} does not exist")
    dst_root.mkdir(parents=True, exist_ok=True)
    for stale in dst_root.rglob(f".*{_PARTIAL}"):
        stale.unlink(missing_ok=True)  # left by an interrupted run: redone below
    jobs, skipped = [], []
    for rel in find_inputs(src_root):
        dst = dst_root / rel.with_suffix(".mp4")
        (skipped if _finished(dst) else jobs).append((rel, dst))
    skipped = [str(rel) for rel, _ in skipped]
    converted, failed = [], []
    bar = _progress(len(jobs), progress)
    if workers <= 1:
        results = (_convert_one(str(src_root / rel), str(dst), options) for rel, dst in jobs)
        _collect(results, src_root, converted, failed, bar)
    else:
        work = [(str(src_root / rel), str(dst)) for rel, dst in jobs]
        _collect(_in_pool(work, options, workers), src_root, converted, failed, bar)
    if bar is not None:
        bar.close()
    report = dst_root / FAILURES_NAME
    with open(report, "w", encoding="utf-8") as f:
        f.write("# input\treason\n")
        f.writelines(f"{path}\t{' '.join(reason.split())}\n" for path, reason in sorted(failed))
    for path, reason in sorted(failed):
        log.warning("could not convert %s: %s", path, reason)
    return PrepareResult(sorted(converted), skipped, sorted(failed), report)


def _in_pool(work: list[tuple[str, str]], options: PrepareOptions, workers: int):
    """(src, reason) of every job, from a process pool. A worker that dies (a decoder crash)
    breaks the pool for every job still running: those are retried each in a pool of its own, so
    the one that crashes is reported and the others convert."""
    unfinished = []
    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(_convert_one, src, dst, options): (src, dst) for src, dst in work}
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:
                unfinished.append(futures[future])
    for src, dst in unfinished:
        with ProcessPoolExecutor(1) as alone:
            try:
                yield alone.submit(_convert_one, src, dst, options).result()
            except BrokenProcessPool:
                yield src, "worker process died while converting this file"


def _collect(results, src_root: Path, converted: list, failed: list, bar) -> None:
    for src, reason in results:
        rel = str(Path(src).relative_to(src_root))
        if reason is None:
            converted.append(rel)
        else:
            failed.append((rel, reason))
        if bar is not None:
            bar.update(1)


def _progress(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", desc="prepare", file=sys.stderr)


# ---------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="avsync prepare",
        description="Re-encode raw downloads to H.264 25 fps, short side 256, AAC 16 kHz mono "
                    "(SparseSync's preprocessing), or keep the frame and sample rates (--keep-rates).")
    parser.add_argument("input", help="folder of raw videos (searched recursively)")
    parser.add_argument("output", help="output folder (same relative paths, .mp4)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--keep-rates", action="store_true", help="keep each file's frame rate and sample rate")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--short-side", type=int, default=256, help="0 keeps the size")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--crf", type=int, default=23)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    options = PrepareOptions(fps=args.fps, short_side=args.short_side or None, sample_rate=args.sample_rate,
                             keep_rates=args.keep_rates, crf=args.crf)
    source = Path(args.input)
    if not source.is_dir():  # one line, not a traceback
        what = "is a file" if source.is_file() else "does not exist"
        print(f"avsync prepare: {args.input} {what}; give the folder that holds the raw videos", file=sys.stderr)
        return 2
    result = prepare(args.input, args.output, options, workers=args.workers, progress=not args.no_progress)
    print(f"converted {len(result.converted)}, already done {len(result.skipped)}, failed {len(result.failed)}"
          f" (reasons: {result.report})")
    return 1 if result.failed else 0

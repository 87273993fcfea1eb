"""Independent check of avsync's decode timing against FFmpeg's own decode (issue 19).

Files are made with the FFmpeg command-line tool from the real LRS3 fixture clip (late video,
late audio, MPEG-TS with offset starts, 23.976, 29.97 and 59.94 fps, variable frame rate, mp4 / mov / mkv /
webm / avi / ts / m2ts, 8 to 48 kHz, mono to 5.1), then decoded through avsync (`read_frames` fast path
and PyAV fallback, `read_audio`, `read_clip`) and through FFmpeg:

* video: every frame gets its index stamped by FFmpeg as the last filter before encoding (a
  row of 16-pixel black/white cells at the top), so a decoded picture says which source frame
  it is. FFmpeg's decode (`showinfo`, `-copyts`) gives each stamped frame its pts; avsync's output
  frame i, asked for at timeline time t = i / 25, must show a frame whose pts (minus the
  timeline origin) is within half a source frame period of t, which only the nearest frame
  is. Also counted: output frames that differ from FFmpeg's `fps=25` filter.
* audio: FFmpeg decodes (and resamples) the stream, averaged to mono and placed on the timeline
  by the pts FFmpeg gives its first frame (silence before a late start); the lag of avsync's `read_audio`
  against it (cross-correlation, parabolic sub-sample peak) must be within 1 ms, at the
  stream's own rate and at 16 kHz.
* `read_clip` (what the data modules read) and `detect`'s `decode_for_model` must return the
  same frames and samples as `read_frames` / `read_audio` at the same times.
* hangs: every avsync decode of a file runs 10 times in a child process with a time limit,
  and the 10 results must be identical.

Time 0 is where FFmpeg's decode starts playing: the earlier of the first decoded picture's pts and
the first decoded audio frame's pts. That is the smallest stream `start_time` (avsync's time 0,
docs/media-timing.md) except where a decoder drops leading samples whose packets carry earlier
timestamps: FFmpeg 5.1's ffprobe puts an Opus stream in WebM at -7 ms (its 312-sample pre-skip),
the FFmpeg inside PyAV at 0, where the first sample plays. FFmpeg is needed by this script only, never by avsync::

    python benchmarks/ffmpeg_crosscheck.py /usr/bin/ffmpeg [--out benchmarks/results/ffmpeg_crosscheck.md] [case ...]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCE = (REPO.parent / "shared" / "fixtures" / "real" / "lrs3" / "h264_orig_strict_crop_25fps_224side_16000hz_aac"
          / "pretrain" / "C8zY0oAdQrs" / "00018.mp4")
SECONDS = 6.0  # of the source clip used
FPS = 25.0  # avsync reads every file at this rate
RUNS = 10
HANG_LIMIT_SEC = 300  # for the 10 runs of one file
CELL = 16  # stamp cell size in pixels
# the frame index N as bits in 16x16 cells along the top row; chroma neutral there
STAMP = ("geq=lum='if(lt(Y,16),255*mod(floor(N/pow(2,floor(X/16))),2),lum(X,Y))'"
         ":cb='if(lt(Y,8),128,cb(X,Y))':cr='if(lt(Y,8),128,cr(X,Y))'")


@dataclass
class Case:
    name: str
    ext: str
    args: list[str]  # ffmpeg arguments after the two inputs (video from input 0, audio from input 1)
    video_offset: float = 0.0  # -itsoffset of the video input
    audio_offset: float = 0.0  # -itsoffset of the audio input
    vfilter: str = ""  # filters before the stamp
    note: str = ""


X264 = ["-c:v", "libx264", "-preset", "fast", "-crf", "18", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "128k"]

CASES = [
    Case("mp4_itsoffset_video_late_0.3", "mp4", X264 + AAC, video_offset=0.3),
    Case("mp4_audio_late_0.5_22k", "mp4", X264 + AAC + ["-ar", "22050"], audio_offset=0.5),
    Case("mkv_video_late_0.2_aac", "mkv", X264 + AAC, video_offset=0.2, note="AAC priming, no edit list"),
    Case("ts_both_start_1.48", "ts", X264 + AAC + ["-output_ts_offset", "0.08"], note="muxer start 1.4 s + 0.08"),
    Case("ts_video_late_0.2", "ts", X264 + AAC, video_offset=0.2),
    Case("ts_audio_late_0.36_8k", "ts", X264 + AAC + ["-ar", "8000"], audio_offset=0.36),
    Case("m2ts_5.1_48k_video_late_0.2", "m2ts", X264 + AAC + ["-ac", "6", "-ar", "48000"], video_offset=0.2),
    Case("mp4_29.97", "mp4", X264 + AAC, vfilter="fps=30000/1001"),
    Case("mkv_23.976_audio_late_0.1", "mkv", X264 + AAC, vfilter="fps=24000/1001", audio_offset=0.1),
    Case("mp4_59.94_48k", "mp4", X264 + AAC + ["-ar", "48000"], vfilter="fps=60000/1001"),
    Case("mp4_vfr_25+30", "mp4", X264 + AAC + ["-fps_mode", "vfr"],
         vfilter="split[a][b];[a]trim=0:3,setpts=PTS-STARTPTS[a1];[b]trim=3:6,setpts=PTS-STARTPTS,fps=30[b1];"
                 "[a1][b1]concat=n=2:v=1:a=0", note="3 s at 25 fps then 3 s at 30 fps"),
    Case("mkv_vfr_drop_every_4th", "mkv", X264 + AAC + ["-fps_mode", "vfr"],
         vfilter="select='not(eq(mod(n\\,4)\\,3))'", note="gaps of 40/40/80 ms"),
    Case("mov_video_late_0.3_48k", "mov", X264 + AAC + ["-ar", "48000"], video_offset=0.3),
    Case("webm_vp9_opus_video_late_0.2", "webm",
         ["-c:v", "libvpx-vp9", "-b:v", "1M", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus",
          "-ar", "48000"], video_offset=0.2),
    Case("avi_mpeg4_mp3_44k", "avi", ["-c:v", "mpeg4", "-q:v", "2", "-c:a", "libmp3lame", "-ar", "44100",
                                     "-fps_mode", "cfr"]),
    Case("mkv_5.1_48k_audio_late_0.3", "mkv", X264 + AAC + ["-ac", "6", "-ar", "48000"], audio_offset=0.3),
    Case("mp4_5.1_44k", "mp4", X264 + AAC + ["-ac", "6", "-ar", "44100"]),
]


# ---------------------------------------------------------------------------- making files
def make(ffmpeg: str, case: Case, folder: Path) -> Path:
    out = folder / f"{case.name}.{case.ext}"
    vf = f"{case.vfilter},{STAMP}" if case.vfilter else STAMP
    cmd = [ffmpeg, "-nostdin", "-y", "-v", "error",
           "-itsoffset", str(case.video_offset), "-t", str(SECONDS), "-i", str(SOURCE),
           "-itsoffset", str(case.audio_offset), "-t", str(SECONDS), "-i", str(SOURCE),
           "-filter_complex", f"[0:v:0]{vf}[v]", "-map", "[v]", "-map", "1:a:0", *case.args, str(out)]
    if "-fps_mode" not in case.args:  # keep every frame's pts (the default CFR sync pads a late start)
        cmd[-1:-1] = ["-fps_mode", "passthrough"]
    subprocess.run(cmd, check=True)
    return out


def ffprobe_starts(ffprobe: str, path: Path) -> tuple[float, float]:
    text = subprocess.run([ffprobe, "-v", "error", "-show_entries", "stream=codec_type,start_time", "-of", "json",
                           str(path)], check=True, capture_output=True, text=True).stdout
    streams = json.loads(text)["streams"]
    first = {}
    for s in streams:
        first.setdefault(s["codec_type"], float(s.get("start_time", "nan")))
    return first["video"], first["audio"]


# ---------------------------------------------------------------------------- FFmpeg's decode
def read_stamps(frames: np.ndarray) -> np.ndarray:
    """Frame index stamped in each (T, >=16, W[, 3]) picture."""
    gray = frames.astype(np.float32)
    if gray.ndim == 4:
        gray = gray.mean(axis=3)
    cells = gray.shape[2] // CELL
    centres = np.stack([gray[:, 4:12, c * CELL + 4: c * CELL + 12].mean(axis=(1, 2)) for c in range(cells)], axis=1)
    bits = (centres > 128).astype(np.int64)
    return (bits << np.arange(cells)).sum(axis=1)


def ffmpeg_frames(ffmpeg: str, path: Path, width: int, vfilter: str) -> tuple[np.ndarray, list[float]]:
    """(stamps, pts seconds) of the frames FFmpeg outputs through `vfilter` (container time, -copyts)."""
    proc = subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-copyts", "-i", str(path), "-map", "0:v:0",
         "-vf", f"{vfilter}crop=iw:16:0:0,showinfo", "-fps_mode", "passthrough", "-pix_fmt", "gray",
         "-f", "rawvideo", "pipe:"], check=True, capture_output=True)
    pts = [float(m) for m in re.findall(rb"pts_time:\s*(-?[0-9.]+)", proc.stderr)]
    frames = np.frombuffer(proc.stdout, np.uint8).reshape(-1, 16, width)
    if len(frames) != len(pts):
        raise RuntimeError(f"{path}: {len(frames)} frames but {len(pts)} pts")
    return read_stamps(frames), pts


def ffmpeg_audio(ffmpeg: str, path: Path, rate: int) -> tuple[np.ndarray, float]:
    """FFmpeg's decode of the first audio stream at `rate`, averaged to mono, and the pts FFmpeg
    gives its first output frame (`ashowinfo`, `-copyts`: container seconds)."""
    probe = subprocess.run([ffmpeg.replace("ffmpeg", "ffprobe"), "-v", "error", "-select_streams", "a:0",
                            "-show_entries", "stream=channels", "-of", "csv=p=0", str(path)],
                           check=True, capture_output=True, text=True)
    channels = int(probe.stdout.split()[0])
    proc = subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-copyts", "-i", str(path), "-map", "0:a:0",
         "-af", f"aresample={rate},ashowinfo", "-f", "f32le", "-c:a", "pcm_f32le", "pipe:"],
        check=True, capture_output=True)
    first = float(re.search(rb"pts_time:\s*(-?[0-9.]+)", proc.stderr).group(1))
    return np.frombuffer(proc.stdout, np.float32).reshape(-1, channels).mean(axis=1), first


def on_timeline(audio: np.ndarray, first: float, origin: float, rate: int) -> np.ndarray:
    """`audio` whose first sample plays at container time `first`, with sample 0 at `origin`."""
    lead = round((first - origin) * rate)
    return np.concatenate([np.zeros(lead, np.float32), audio]) if lead >= 0 else audio[-lead:]


def lag_ms(ours: np.ndarray, theirs: np.ndarray, rate: int, max_lag_sec: float = 2.0) -> tuple[float, float]:
    """How late `ours` plays the sound that `theirs` plays (ms, sub-sample), and the peak's
    normalised correlation."""
    n = len(ours) + len(theirs)
    size = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(ours.astype(np.float64), size) * np.conj(np.fft.rfft(theirs.astype(np.float64), size))
    corr = np.fft.irfft(spec, size)
    limit = int(max_lag_sec * rate)
    lags = np.concatenate([np.arange(0, limit + 1), np.arange(-limit, 0)])
    values = np.concatenate([corr[: limit + 1], corr[-limit:]])
    k = int(np.argmax(values))
    peak, lag = values[k], float(lags[k])
    left, right = corr[int(lags[k] - 1) % size], corr[int(lags[k] + 1) % size]
    denom = left - 2 * peak + right
    if denom < 0:
        lag += 0.5 * (left - right) / denom
    norm = np.sqrt(np.dot(ours, ours) * np.dot(theirs, theirs)) or 1.0
    return lag / rate * 1e3, float(peak / norm)


# ---------------------------------------------------------------------------- avsync, in a child
def child(path: str, out: str, video_sec: float, native_rate: int) -> None:
    """Decode `path` RUNS times through avsync; save the first run's results and every run's hash."""
    import hashlib

    from avsync.media import decode, read_audio, read_clip, read_frames

    try:
        from avsync.detect.decoding import decode_for_model
        from avsync.inputs import InputSpec
    except ImportError:  # an older avsync (measuring it: PYTHONPATH=<old checkout>/src)
        decode_for_model = None

    def refuse(*args, **kwargs):
        raise RuntimeError("decord refused (measurement)")

    real = decode._read_frames_decord
    # within what avsync's probe calls the clip (an older avsync measured the clip from 0 differently)
    video_sec = min(video_sec, np.floor((decode.probe(path).duration_sec - 0.05) * FPS) / FPS)
    results, hashes, seconds = {}, [], []
    for _ in range(RUNS):
        began = time.monotonic()
        fast = read_frames(path, 0.0, video_sec, FPS)
        decode._read_frames_decord = refuse
        try:
            fallback = read_frames(path, 0.0, video_sec, FPS)
        finally:
            decode._read_frames_decord = real
        native = read_audio(path, 0.0, None, native_rate)
        at16k = read_audio(path, 0.0, None, 16000)
        clip = read_clip(path, 1.0, 1.0, 2.0, FPS, 16000)  # what the data modules read
        frames, wav = fast, at16k
        if decode_for_model is not None:  # what detect reads
            try:
                frames, wav = decode_for_model(path, InputSpec(fps=FPS, sample_rate=16000), native_size=True)
                frames, wav = frames.numpy(), wav.numpy()
            except TypeError:  # an older avsync without native_size: not compared
                pass
        seconds.append(time.monotonic() - began)
        n = min(len(frames), len(fast))
        clip_same = bool(np.array_equal(clip["video"], fast[25:75])
                         and np.array_equal(clip["audio"], at16k[16000:48000])
                         and np.array_equal(frames[:n], fast[:n]) and np.array_equal(wav, at16k[:len(wav)]))
        h = hashlib.sha1()
        for a in (fast, fallback, native, at16k):
            h.update(a.tobytes())
        hashes.append(h.hexdigest())
        if not results:
            results = dict(fast=read_stamps(fast[:, :16]), fallback=read_stamps(fallback[:, :16]), native=native,
                           at16k=at16k, same=np.array(np.array_equal(fast, fallback)), clip_same=np.array(clip_same))
    np.savez(out, **results, hashes=np.array(hashes), seconds=np.array(seconds))


def run_child(path: Path, video_sec: float, native_rate: int, folder: Path):
    out = folder / f"{path.stem}.npz"
    began = time.monotonic()
    try:
        subprocess.run([sys.executable, __file__, "--child", str(path), str(out), str(video_sec), str(native_rate)],
                       check=True, timeout=HANG_LIMIT_SEC, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return None, f"HANG (> {HANG_LIMIT_SEC} s for {RUNS} runs)"
    except subprocess.CalledProcessError as err:
        return None, "ERROR " + " ".join(err.stderr.strip().splitlines()[-1:])[:150]
    return dict(np.load(out)), f"{time.monotonic() - began:.0f}"


# ---------------------------------------------------------------------------- one case
def video_errors(stamps: np.ndarray, pts: dict[int, float], origin: float, starts: np.ndarray):
    """Per output frame inside the video stream: error (s) of the shown frame against the output
    time, the limit (half the source frame gap around that time) and whether it is the nearest."""
    times = np.arange(len(stamps)) / FPS
    inside = (times >= starts[0]) & (times <= starts[-1])
    # a stamp shown by several frames (a duplicated picture) counts at its pts nearest the output time
    shown = np.array([min(pts.get(int(s), [np.nan]), key=lambda p: abs(p - origin - t)) - origin
                      for s, t in zip(stamps, times)])
    after = np.clip(np.searchsorted(starts, times), 1, len(starts) - 1)
    gap = starts[after] - starts[after - 1]
    best = np.minimum(np.abs(times - starts[after - 1]), np.abs(starts[after] - times))
    err = shown - times
    return err[inside], gap[inside] / 2, (np.abs(err) <= best + 1e-4)[inside]


def check(ffmpeg: str, case: Case, folder: Path) -> dict:
    ffprobe = ffmpeg.replace("ffmpeg", "ffprobe")
    path = make(ffmpeg, case, folder)
    vstart, astart = ffprobe_starts(ffprobe, path)
    width = 224
    stamps, pts = ffmpeg_frames(ffmpeg, path, width, "")
    rate = int(subprocess.run([ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate",
                               "-of", "csv=p=0", str(path)], capture_output=True, text=True).stdout.split()[0])
    sound = {r: ffmpeg_audio(ffmpeg, path, r) for r in (rate, 16000)}
    # time 0: where FFmpeg's decode starts playing (first picture or first sample, whichever is first)
    origin = min(min(pts), sound[rate][1])
    by_stamp: dict[int, list[float]] = {}
    for stamp, p in zip(stamps.tolist(), pts):
        by_stamp.setdefault(stamp, []).append(p)
    starts = np.array(sorted(p - origin for p in pts))
    video_sec = np.floor((starts[-1] - 0.1) * FPS) / FPS
    fps_stamps, _ = ffmpeg_frames(ffmpeg, path, width, f"fps={FPS:g}:start_time={origin},")
    got, runtime = run_child(path, video_sec, rate, folder)
    row = dict(case=case.name, note=case.note, vstart=min(pts) - origin, astart=sound[rate][1] - origin, rate=rate,
               probe_starts=(vstart, astart), runtime=runtime)
    if got is None:
        return row
    limit_ok = True
    for name in ("fast", "fallback"):
        err, half, nearest = video_errors(got[name], by_stamp, origin, starts)
        ok = bool(np.all(np.abs(err) <= half + 5e-4)) and not np.isnan(err).any()
        limit_ok &= ok
        row[name] = (float(np.nanmax(np.abs(err)) * 1e3), float(half.max() * 1e3), int((~nearest).sum()), len(err), ok)
    n = min(len(fps_stamps), len(got["fast"]))
    differ = got["fast"][:n] != fps_stamps[:n]
    shift = [by_stamp.get(int(a), [np.nan])[0] - by_stamp.get(int(b), [np.nan])[0]
             for a, b in zip(got["fast"][:n][differ], fps_stamps[:n][differ])]
    row["fps_filter"] = (int(differ.sum()), n, float(np.nanmean(shift) * 1e3) if shift else 0.0)
    row["same_paths"] = bool(got["same"])
    row["clip_same"] = bool(got["clip_same"])
    row["repeatable"] = len(set(got["hashes"].tolist())) == 1
    for key, r in (("native", rate), ("at16k", 16000)):
        theirs = on_timeline(*sound[r], origin, r)
        row[key] = lag_ms(got[key], theirs, r)
    row["audio_ok"] = all(abs(row[k][0]) <= 1.0 for k in ("native", "at16k"))
    row["video_ok"] = limit_ok
    return row


def markdown(rows: list[dict]) -> str:
    lines = [
        "| case | ffprobe start_time v / a (s) | decoded starts v / a (s) | "
        "video fast: max err / limit ms, not nearest | fallback: same | ≠ fps filter (mean ms) | "
        "audio lag ms: native rate / 16 kHz | read_clip, detect agree | 10 runs: s, identical | pass |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "fast" not in r:
            lines.append(f"| {r['case']} | {r['probe_starts'][0]:.3f} / {r['probe_starts'][1]:.3f} | "
                         f"{r['vstart']:.3f} / {r['astart']:.3f} | {r['runtime']} | | | | | | **no** |")
            continue
        e, half, bad, n, _ = r["fast"]
        fe, _, fbad, _, _ = r["fallback"]
        d, m, mean = r["fps_filter"]
        ok = r["video_ok"] and r["audio_ok"] and r["repeatable"] and r["clip_same"]
        lines.append(
            f"| {r['case']} | {r['probe_starts'][0]:.3f} / {r['probe_starts'][1]:.3f} | "
            f"{r['vstart']:.3f} / {r['astart']:.3f} | {e:.1f} / {half:.1f}, {bad} of {n} | "
            f"{fe:.1f}, {'yes' if r['same_paths'] else '**no**'} | {d} of {m} ({mean:+.1f}) | "
            f"{r['native'][0]:+.3f} ({r['rate']} Hz) / {r['at16k'][0]:+.3f} | "
            f"{'yes' if r['clip_same'] else '**no**'} | {r['runtime']}, "
            f"{'yes' if r['repeatable'] else '**no**'} | {'yes' if ok else '**no**'} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ffmpeg")
    parser.add_argument("cases", nargs="*")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ffmpeg_crosscheck.md"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="avsync_ffmpeg_") as tmp:
        for case in [c for c in CASES if not args.cases or c.name in args.cases]:
            row = check(args.ffmpeg, case, Path(tmp))
            rows.append(row)
            print(markdown([row]).splitlines()[-1], flush=True)
    version = subprocess.run([args.ffmpeg, "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    text = (f"# avsync decode vs FFmpeg's own decode\n\n`python benchmarks/ffmpeg_crosscheck.py {args.ffmpeg}` "
            f"({version}); source: the LRS3 fixture clip, first {SECONDS:g} s, read at {FPS:g} fps.\n\n"
            + markdown(rows) + "\n")
    if not args.cases:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

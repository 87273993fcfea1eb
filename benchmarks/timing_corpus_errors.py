"""Decode errors per case of the timing corpus (tests/support/timing_corpus.py), fast path and fallback.

Writes the corpus to FOLDER, reads every file at 25 fps from time 0 through `read_frames` (decord
fast path, then with decord refused so PyAV decodes) and `read_audio`, and prints a markdown
row per case: the largest |shown frame time - output time| (ms) of each path, whether the two
paths returned the same frames, and the audio's position error (ms). Run it with another
avsync on PYTHONPATH to measure that one (docs/media-timing.md has both)::

    python benchmarks/timing_corpus_errors.py FOLDER [case ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from timing_corpus import CASES, audio_position, stream_starts, video_errors, write  # noqa: E402

from avsync.media import decode, read_audio, read_frames  # noqa: E402


def _refuse(*args, **kwargs):
    raise RuntimeError("decord refused (measurement)")


def video_cell(case, path, fast: bool, video_start: float):
    real = decode._read_frames_decord
    decode._read_frames_decord = real if fast else _refuse
    try:
        duration = case.seconds - 0.3
        frames = read_frames(path, 0.0, duration, 25)
        errors = video_errors(case, frames, np.arange(round(duration * 25)) / 25, video_start)
        return f"{np.abs(errors).max() * 1e3:.1f}", frames
    except Exception as err:  # a measurement: report what failed and go on
        return f"ERR {type(err).__name__}: {str(err)[-60:]}", None
    finally:
        decode._read_frames_decord = real


def main() -> None:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    wanted = set(sys.argv[2:])
    print("| case | video fast: max abs err ms | video fallback: max abs err ms | fast == fallback | audio err ms |")
    print("|---|---|---|---|---|")
    for case in [c for c in CASES if not wanted or c.name in wanted]:
        path = write(case, folder)
        video_start, _ = stream_starts(path)
        (fast, a), (slow, b) = video_cell(case, path, True, video_start), video_cell(case, path, False, video_start)
        same = "n/a" if a is None or b is None else str(bool(np.array_equal(a, b)))
        try:
            audio = read_audio(path, sample_rate=case.sample_rate)
            expected = video_start - (case.video_start - case.audio_start)
            sound = f"{(audio_position(case, audio) - expected) * 1e3:+.2f}"
        except Exception as err:
            sound = f"ERR {str(err)[-60:]}"
        print(f"| {case.name} | {fast} | {slow} | {same} | {sound} |", flush=True)


if __name__ == "__main__":
    main()

"""``avsync prepare`` on every container of the timing corpus: picture and sound stay where the
source put them, and a worker process that dies costs only its own file."""
import os
from pathlib import Path

import numpy as np
import pytest

import avsync.prepare as prepare_module
from avsync.media import read_audio, read_frames
from avsync.prepare import PrepareOptions, prepare
from support.timing_corpus import CASES, audio_position, frame_times, stream_starts, video_errors, write

NAMES = ["mkv_video_late", "webm_vp9_opus_video_late", "avi_mpeg4_pcm", "ts_mux_delay", "ts_video_late",
         "mts_audio_late_8k", "m2ts_5.1_48k", "mov_video_late_48k_stereo", "mp4_vfr_video_late", "mp4_rotated_90"]
KEEP = PrepareOptions(keep_rates=True, short_side=None)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    raw, out = tmp_path_factory.mktemp("raw"), tmp_path_factory.mktemp("out")
    cases = {c.name: c for c in CASES if c.name in NAMES}
    sources = {name: write(case, raw) for name, case in cases.items()}
    result = prepare(raw, out, KEEP, workers=1, progress=False)
    assert result.failed == [] and len(result.converted) == len(NAMES)
    return cases, sources, out


@pytest.mark.parametrize("name", NAMES)
def test_alignment_kept(converted, name):
    cases, sources, out = converted
    case, source = cases[name], sources[name]
    video_start, _ = stream_starts(source)
    path = out / f"{name}.mp4"
    duration = case.seconds - 0.4
    times = np.arange(round(duration * 25)) / 25
    errors = video_errors(case, read_frames(path, 0.0, duration, 25), times, video_start)
    # resampled twice to a constant rate (prepare, then the reader): each within half a frame
    period = float(np.diff(frame_times(case)).max()) if case.fps == "vfr" else 1 / float(case.fps)
    assert np.abs(errors).max() <= period + 1e-3
    expected = video_start - (case.video_start - case.audio_start)
    audio = read_audio(path, sample_rate=case.sample_rate)
    assert abs(audio_position(case, audio) - expected) <= 1e-3 + 1e-9


_REAL_CONVERT = prepare_module._convert_one


def _crash_on_one(src, dst, options):
    """The worker's job, except that the process dies on a file named crash*."""
    if "crash" in Path(src).name:
        os._exit(3)
    return _REAL_CONVERT(src, dst, options)


def test_dead_worker_costs_only_its_file(converted, tmp_path, monkeypatch):
    _, sources, _ = converted
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("ts_video_late", "mkv_video_late", "avi_mpeg4_pcm"):
        os.link(sources[name], raw / Path(sources[name]).name.replace("mkv_video_late", "crash"))
    monkeypatch.setattr(prepare_module, "_convert_one", _crash_on_one)
    result = prepare(raw, tmp_path / "out", PrepareOptions(short_side=32), workers=2, progress=False)
    assert result.failed == [("crash.mkv", "worker process died while converting this file")]
    assert sorted(result.converted) == ["avi_mpeg4_pcm.avi", "ts_video_late.ts"]

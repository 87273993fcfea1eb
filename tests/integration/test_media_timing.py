"""Every decode path puts frames and samples on the file's presentation timeline.

The corpus (tests/support/timing_corpus.py) is written once per module with PyAV: mp4, mov, mkv, webm, avi
and MPEG-TS (.ts/.mts/.m2ts), streams starting late, early or at MPEG-TS's 1.4 s mux delay,
8-48 kHz, mono/stereo/5.1, 23.976-60 fps and VFR, a rotated picture. Each video frame shows its
index, the audio is known noise: the decoded frame for each output time must be the source frame
nearest to it (within half a source frame period), the audio within 1 ms of where the container
puts it, and the decord fast path and the PyAV fallback must return the same frames.
"""
import time

import numpy as np
import pytest

from avsync.media import MediaError, decode, probe, read_audio, read_frames
from support.timing_corpus import CASES, audio_position, frame_times, stream_starts, video_errors, write

OUT_FPS = 25.0
AUDIO_TOLERANCE = 1e-3  # seconds


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("timing_corpus")
    return {case.name: write(case, folder) for case in CASES}


def source_period(case) -> float:
    return float(np.diff(frame_times(case)).max())


def read_both_paths(path, duration, monkeypatch):
    """(fast, fallback) frames at OUT_FPS from time 0; fast is None where decord is not used."""
    used = []
    real = decode._read_frames_decord

    def spy(*args):
        frames = real(*args)
        used.append(frames is not None)
        return frames

    monkeypatch.setattr(decode, "_read_frames_decord", spy)
    fast = read_frames(path, 0.0, duration, OUT_FPS)
    fast = fast if any(used) else None

    def refuse(*args):
        raise RuntimeError("decord refused (test)")

    monkeypatch.setattr(decode, "_read_frames_decord", refuse)
    fallback = read_frames(path, 0.0, duration, OUT_FPS)
    monkeypatch.setattr(decode, "_read_frames_decord", real)
    return fast, fallback


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_video_on_the_timeline(corpus, case, monkeypatch):
    path = corpus[case.name]
    video_start, _ = stream_starts(path)
    assert probe(path).video_start_sec == pytest.approx(video_start, abs=1e-6)
    duration = case.seconds - 0.4
    times = np.arange(round(duration * OUT_FPS)) / OUT_FPS
    fast, fallback = read_both_paths(path, duration, monkeypatch)
    half = source_period(case) / 2
    errors = video_errors(case, fallback, times, video_start)
    assert np.abs(errors).max() <= half + 1e-3, f"PyAV path: frame off by {np.abs(errors).max() * 1e3:.1f} ms"
    if case.fmt == "mpegts":
        assert fast is None  # decord is not used for MPEG-TS
    else:
        assert fast is not None, "decord was not used"
        np.testing.assert_array_equal(fast, fallback)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_audio_on_the_timeline(corpus, case):
    path = corpus[case.name]
    video_start, audio_start = stream_starts(path)
    audio = read_audio(path, sample_rate=case.sample_rate)
    # source sample 0 plays (video start - audio start, as written) before the first frame
    expected = video_start - (case.video_start - case.audio_start)
    assert abs(audio_position(case, audio) - expected) <= AUDIO_TOLERANCE + 1e-9
    assert audio_start == pytest.approx(probe(path).audio_start_sec, abs=1e-6)


def test_timeline_starts_at_the_earlier_stream(corpus):
    """MPEG-TS clocks start anywhere (1.4 s from FFmpeg's muxer): time 0 is the first stream's start."""
    for name in ("ts_mux_delay", "m2ts_5.1_48k", "mkv_audio_early"):
        info = probe(corpus[name])
        assert min(info.video_start_sec, info.audio_start_sec) == 0.0, name
        assert info.duration_sec < 2.1, name


def test_nearest_frame_rule():
    starts = np.array([0.0, 1 / 30, 2 / 30, 3 / 30])
    times = np.array([0.0, 0.016, 0.017, 0.05, 0.09, 1.0])
    np.testing.assert_array_equal(decode.nearest_frames(starts, times), [0, 0, 1, 1, 3, 3])
    np.testing.assert_array_equal(decode.nearest_frames(np.array([0.0, 0.04]), np.array([0.02])), [0])  # tie
    np.testing.assert_array_equal(decode.nearest_frames(np.array([0.5]), np.array([0.0, 1.0])), [0, 0])


def test_stalled_decoder_is_abandoned(corpus, monkeypatch):
    path = corpus["mp4_in_sync"]

    def stall(*args):
        time.sleep(30)

    monkeypatch.setattr(decode, "DECODE_TIMEOUT_SEC", 0.5)
    monkeypatch.setattr(decode, "_read_frames_decord", stall)
    began = time.monotonic()
    monkeypatch.setattr(decode, "_DECORD_SEC_PER_FRAME", 0.0)
    with pytest.raises(MediaError, match="decoder stalled") as caught:
        read_frames(path, 0.0, 1.0, OUT_FPS)
    assert caught.value.path == str(path) and time.monotonic() - began < 5
    monkeypatch.undo()
    assert read_frames(path, 0.0, 1.0, OUT_FPS).shape[0] == 25  # the next read is not affected


def test_slow_decoder_that_progresses_is_not_abandoned(corpus, monkeypatch):
    """The limit is on time without progress: a long decode that keeps going finishes."""
    real = decode._read_frames_pyav

    def slow(*args):
        for _ in range(8):
            time.sleep(0.2)
            decode.tick()
        return real(*args)

    monkeypatch.setattr(decode, "DECODE_TIMEOUT_SEC", 0.5)
    monkeypatch.setattr(decode, "_read_frames_decord", lambda *a: None)
    monkeypatch.setattr(decode, "_read_frames_pyav", slow)
    assert read_frames(corpus["mp4_in_sync"], 0.0, 1.0, OUT_FPS).shape[0] == 25

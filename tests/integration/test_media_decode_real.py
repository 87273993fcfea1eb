"""The decoders on the real preprocessed clips (../shared/fixtures/real, see its README)."""
import numpy as np
import pytest

from avsync.media import MediaError, probe, read_audio, read_clip, read_frames, write_mp4

FPS, SR = 25, 16000


@pytest.fixture(scope="module")
def clips(real_fixtures):
    paths = sorted(real_fixtures.rglob("*.mp4"))
    assert len(paths) == 4, paths  # 2 LRS3 layouts + 2 VGGSound clips
    return paths


def expected_size(path):
    """(height, width) per the fixtures README; None for a side it leaves open."""
    if "strict_crop" in str(path):
        return 224, 224
    if "lrs3" in str(path):
        return 256, 454
    return 256, None  # VGGSound: short side 256 (landscape)


def test_probe_matches_readme(clips):
    for path in clips:
        info = probe(path)
        height, width = expected_size(path)
        assert (info.height, info.width or None) == (height, width or info.width), path
        assert info.video_fps == FPS and info.audio_sample_rate == SR, path
        assert (info.video_codec, info.audio_codec) == ("h264", "aac"), path
        assert abs(info.num_frames / FPS - (info.duration_sec)) < 0.1, path
        assert abs(info.audio_duration_sec - info.num_frames / FPS) < 0.1, path
        assert info.duration_sec > (15.0 if "lrs3" in str(path) else 9.9), path


def test_five_seconds_of_frames(clips):
    for path in clips:
        info = probe(path)
        frames = read_frames(path, 2.0, 5.0, FPS)
        assert frames.shape == (125, info.height, info.width, 3) and frames.dtype == np.uint8, path
        # consecutive source frames, not one frame repeated
        assert np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3)).min() > 0, path


def test_frames_resized_to_short_side(clips):
    for path in clips:
        info = probe(path)
        frames = read_frames(path, 0.0, 1.0, FPS, size=128)
        height, width = frames.shape[1:3]
        assert frames.shape[0] == 25 and min(height, width) == 128 and width % 2 == 0, path
        assert abs(width / height - info.width / info.height) < 0.02, path


def test_whole_audio(clips):
    for path in clips:
        info = probe(path)
        audio = read_audio(path, reject_silent=True)
        assert audio.dtype == np.float32 and audio.ndim == 1, path
        assert abs(len(audio) - info.audio_duration_sec * SR) <= 0.05 * SR, path
        assert abs(len(audio) / SR - info.num_frames / FPS) < 0.1, path
        assert 0.01 < np.abs(audio).max() < 1.5, path  # AAC may overshoot 1.0 a little


def test_window_past_the_end_names_the_file(clips):
    for path in clips:
        start = probe(path).duration_sec - 1.0
        for read in (
            lambda: read_frames(path, start, 5.0, FPS),
            lambda: read_audio(path, start, 5.0),
            lambda: read_clip(path, start, start, 5.0, FPS, SR),
        ):
            with pytest.raises(MediaError, match="too short") as caught:
                read()
            assert str(path) in str(caught.value)


def test_read_clip_with_offset(clips):
    path = clips[0]
    clip = read_clip(path, video_start_sec=1.0, audio_start_sec=1.2, duration_sec=5.0,
                     fps=FPS, sample_rate=SR)
    assert clip["video"].shape[0] == 125 and clip["audio"].shape == (80000,)
    np.testing.assert_array_equal(clip["video"], read_frames(path, 1.0, 5.0, FPS))
    np.testing.assert_array_equal(clip["audio"], read_audio(path, 1.2, 5.0))


@pytest.mark.parametrize(
    "source_fps, target_fps, expected",
    [
        (25, 10, [int(2.5 * i) for i in range(20)]),  # every 2.5th frame: 0, 2, 5, 7, 10, ...
        (25, 25, list(range(50))),
        (30, 25, [int(1.2 * i + 0.5) for i in range(50)]),  # nearest frame to each time
    ],
)
def test_frames_are_picked_by_timestamp(tmp_path, source_fps, target_fps, expected):
    step = 4  # brightness of source frame k is 4 k
    count = 2 * source_fps
    coded = np.repeat(np.arange(count, dtype=np.uint8) * step, 32 * 32 * 3).reshape(count, 32, 32, 3)
    path = write_mp4(tmp_path / f"coded{source_fps}.mp4", coded, source_fps)
    frames = read_frames(path, 0.0, 2.0, target_fps)
    indices = np.round(frames.reshape(len(frames), -1).mean(axis=1) / step).astype(int)
    np.testing.assert_array_equal(indices, expected)

"""write_mp4 round trips through the decoders: what the toy datasets and codec probes rely on."""
from fractions import Fraction

import av
import numpy as np
import pytest

from avsync.media import decode, probe, read_audio, read_clip, read_frames, shift_audio_copy, write_mp4

SR = 16000
STEP = 8  # brightness of frame i is STEP * i (up to 31 frames), so a decoded frame tells its index


def coded_frames(num_frames, height=48, width=64):
    assert num_frames * STEP <= 256
    return np.repeat(np.arange(num_frames, dtype=np.uint8) * STEP, height * width * 3).reshape(
        num_frames, height, width, 3
    )


def frame_indices(frames):
    return np.round(frames.reshape(len(frames), -1).mean(axis=1) / STEP).astype(int)


def tone(seconds, freq=440.0, amplitude=0.5):
    t = np.arange(round(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(audio):
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return np.argmax(spectrum) * SR / len(audio)


def test_h264_aac_round_trip(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", coded_frames(30), 25, tone(1.2))
    info = probe(path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.num_frames, info.width, info.height, info.video_fps) == (30, 64, 48, 25.0)
    assert info.audio_sample_rate == SR and info.audio_channels == 1
    assert abs(info.audio_duration_sec - 1.2) < 0.01 and abs(info.duration_sec - 1.2) < 0.01

    frames = read_frames(path, 0.0, 1.2, 25)
    assert frames.shape == (30, 48, 64, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frame_indices(frames), np.arange(30))

    audio = read_audio(path)
    assert audio.shape == (19200,) and audio.dtype == np.float32
    assert abs(np.sqrt(np.mean(audio[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.02
    assert abs(peak_frequency(audio) - 440) < 2
    # sample-exact alignment (the edit list hides the AAC priming); the encoder needs ~0.1 s to settle
    np.testing.assert_allclose(audio[2048:-2048], tone(1.2)[2048:-2048], atol=0.01)


def test_fractional_fps(tmp_path):
    fps = 29.97
    path = write_mp4(tmp_path / "ntsc.mp4", coded_frames(30), fps, tone(30 / fps))
    info = probe(path)
    assert abs(info.video_fps - fps) < 1e-6 and info.num_frames == 30
    assert abs(info.audio_duration_sec - 30 / fps) < 0.002
    np.testing.assert_array_equal(frame_indices(read_frames(path, 0.0, 30 / fps, fps)), np.arange(30))


def test_matroska_needs_demuxing_and_keeps_alignment(tmp_path):
    """Matroska has no stream durations or frame counts, and puts the AAC priming before 0."""
    fps = 30000 / 1001
    source = tone(30 / fps)
    path = write_mp4(tmp_path / "clip.mkv", coded_frames(30), fps, source)
    info = probe(path)
    assert info.num_frames == 30 and abs(info.video_fps - fps) < 1e-6
    assert abs(info.duration_sec - 30 / fps) < 0.002
    audio = read_audio(path)
    assert 0 <= len(audio) - len(source) < 1024  # the padding of the last AAC packet stays
    np.testing.assert_allclose(audio[2048 : len(source) - 2048], source[2048:-2048], atol=0.01)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_audio_starting_late_keeps_its_time(tmp_path, suffix):
    """An audio stream that starts 0.2 s into the clip (write_mp4 never makes one) is read with
    0.2 s of silence first, so audio and video times still agree."""
    path = str(tmp_path / f"late{suffix}")
    with av.open(path, "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width = video.height = 32
        sound = container.add_stream("aac", rate=SR)
        for i, rgb in enumerate(coded_frames(30, 32, 32)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        frame = av.AudioFrame.from_ndarray(tone(1.0)[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SR, round(0.2 * SR), Fraction(1, SR)
        container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    audio = read_audio(path)
    assert abs(np.argmax(np.abs(audio) > 0.1) / SR - 0.2) < 0.002
    assert abs(len(audio) / SR - 1.2) < 0.05


def test_mpeg4_keeps_ffmpeg_keyframe_interval(tmp_path):
    path = write_mp4(tmp_path / "part2.mp4", coded_frames(30), 25, tone(1.2), vcodec="mpeg4")
    assert probe(path).video_codec == "mpeg4"
    brightness = read_frames(path, 0.0, 1.2, 25).reshape(30, -1).mean(axis=1)
    assert np.abs(brightness - STEP * np.arange(30)).max() < 6  # 200 kb/s: coarser than H.264
    # a moving texture, as brightness steps look like scene cuts and make every frame a keyframe
    texture = np.random.default_rng(0).integers(0, 200, (48, 64, 3), dtype=np.uint8)
    moving = np.stack([np.roll(texture, i, axis=1) for i in range(30)])
    path = write_mp4(tmp_path / "moving.mp4", moving, 25, vcodec="mpeg4")
    assert decode.decord.VideoReader(str(path)).get_key_indices() == [0, 12, 24]


@pytest.mark.parametrize("suffix", [".mov", ".mkv"])
def test_pcm_audio_is_lossless(tmp_path, suffix):
    source = tone(1.2)
    path = write_mp4(tmp_path / f"pcm{suffix}", coded_frames(30), 25, source, acodec="pcm_s16le")
    assert probe(path).audio_codec == "pcm_s16le"
    np.testing.assert_allclose(read_audio(path), source, atol=1e-4)


def test_stereo_is_averaged_to_mono(tmp_path):
    left = tone(1.2)
    stereo = np.stack([left, -0.2 * left])
    path = write_mp4(tmp_path / "st.mov", coded_frames(30), 25, stereo, acodec="pcm_s16le")
    assert probe(path).audio_channels == 2
    np.testing.assert_allclose(read_audio(path), 0.4 * left, atol=1e-4)


def test_invalid_inputs_raise_and_leave_no_file(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_mp4(tmp_path / "odd.mp4", coded_frames(5, height=47), 25)
    with pytest.raises(ValueError, match="samples"):
        write_mp4(tmp_path / "long.mp4", coded_frames(30), 25, tone(1.3))
    with pytest.raises(ValueError, match="acodec"):
        write_mp4(tmp_path / "codec.mp4", coded_frames(30), 25, tone(1.2), acodec="mp3")
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "clip.mp4"
    write_mp4(path, coded_frames(10), 25)
    write_mp4(path, coded_frames(20), 25)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    assert probe(path).num_frames == 20 and not probe(path).has_audio


def test_resize_and_read_clip(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", coded_frames(30, 48, 64), 25, tone(1.2))
    assert read_frames(path, 0.0, 1.0, 25, size=24).shape == (25, 24, 32, 3)
    assert read_frames(path, 0.0, 1.0, 25, size=(20, 30)).shape == (25, 20, 30, 3)
    clip = read_clip(path, video_start_sec=0.2, audio_start_sec=0.4, duration_sec=0.8, fps=25,
                     sample_rate=8000)
    np.testing.assert_array_equal(frame_indices(clip["video"]), np.arange(5, 25))
    np.testing.assert_array_equal(clip["audio"], read_audio(path, 0.4, 0.8, sample_rate=8000))
    assert clip["audio"].shape == (6400,) and clip["info"] == probe(path)


def test_pyav_fallback_matches_decord(tmp_path, monkeypatch):
    path = write_mp4(tmp_path / "clip.mp4", coded_frames(30), 25, tone(1.2))
    expected = read_frames(path, 0.3, 0.8, 10, size=24)

    def refuse(*args, **kwargs):
        raise decode.decord.DECORDError("refused by the test")

    monkeypatch.setattr(decode.decord, "VideoReader", refuse)
    fallback = read_frames(path, 0.3, 0.8, 10, size=24)
    assert fallback.shape == expected.shape == (8, 24, 32, 3)
    np.testing.assert_array_equal(frame_indices(fallback), frame_indices(expected))


def test_decord_failure_on_narrow_frames_falls_back(tmp_path):
    path = write_mp4(tmp_path / "narrow.mp4", coded_frames(30, 16, 16), 25)  # decord: size mismatch
    np.testing.assert_array_equal(frame_indices(read_frames(path, 0.0, 1.2, 25)), np.arange(30))


def test_shift_audio_copy_moves_the_sound(tmp_path):
    audio = np.zeros(round(1.2 * SR), np.float32)
    audio[9600:11200] = tone(0.1, 1000)  # a 0.1 s beep at 0.6 s
    src = write_mp4(tmp_path / "sync.mp4", coded_frames(30), 25, audio)

    def onset(path):
        heard = np.abs(read_audio(path))
        return np.argmax(heard > 0.25) / SR

    lead = shift_audio_copy(src, tmp_path / "lead.mp4", 0.2)
    assert abs(onset(lead) - 0.4) < 0.005  # heard 0.2 s before its time: the audio leads
    back = shift_audio_copy(lead, tmp_path / "back.mp4", -0.2)
    assert abs(onset(back) - 0.6) < 0.005
    assert probe(back).num_frames == 30
    np.testing.assert_array_equal(frame_indices(read_frames(back, 0.0, 1.2, 25)), np.arange(30))

"""Every bad input raises MediaError naming the file: data modules catch exactly that one type."""
import pickle
import re
from fractions import Fraction

import av
import numpy as np
import pytest

from avsync.media import MediaError, probe, read_audio, read_clip, read_frames, write_mp4

SR = 16000


def frames(seconds, fps=25):
    return np.full((round(seconds * fps), 32, 32, 3), 128, np.uint8)


def tone(seconds, amplitude=0.5):
    t = np.arange(round(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def write_audio_only(path, audio):
    """An .m4a-style file without a video stream (write_mp4 always writes video)."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=SR)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(audio[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SR, 0, Fraction(1, SR)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def faststart_copy(src, dst):
    """Remux with the index (moov) first, as web downloads are: a cut copy still opens."""
    with av.open(str(src)) as source, av.open(str(dst), "w", options={"movflags": "faststart"}) as target:
        streams = {s.index: target.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                target.mux(packet)
    return dst


def raises_for(path, reason=""):
    """pytest.raises for a MediaError about `path` whose message contains `reason`."""
    return pytest.raises(MediaError, match=f"^{re.escape(str(path))}: .*{reason}")


@pytest.fixture
def good(tmp_path):
    return write_mp4(tmp_path / "good.mp4", frames(2.0), 25, tone(2.0))


def test_error_attributes_and_pickling():
    err = MediaError("/data/a.mp4", "silent audio")
    assert (err.path, err.reason, str(err)) == ("/data/a.mp4", "silent audio", "/data/a.mp4: silent audio")
    again = pickle.loads(pickle.dumps(err))  # DataLoader workers send exceptions through pickle
    assert (again.path, again.reason) == (err.path, err.reason)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.mp4"
    for read in (probe, read_audio, lambda p: read_frames(p, 0, 1, 25)):
        with raises_for(path, "no such file"):
            read(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with raises_for(path, "empty"):
        probe(path)


def test_zero_length(tmp_path):
    path = tmp_path / "zero.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 32
        container.start_encoding()  # a header and an empty index, no frames
    with raises_for(path):
        probe(path)


def test_random_bytes_keep_the_decoder_error_as_cause(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with raises_for(path) as caught:
        read_frames(path, 0, 1, 25)
    assert isinstance(caught.value.__cause__, av.FFmpegError)


def test_truncated_file(tmp_path, good):
    data = good.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.3)])
    for read in (probe, read_audio, lambda p: read_clip(p, 0, 0, 1, 25, SR)):
        with raises_for(path):
            read(path)


def test_truncated_file_with_index_first(tmp_path, good):
    """The header promises 2 s; the file ends at the first packet of 0.6 s."""
    fast = faststart_copy(good, tmp_path / "fast.mp4")
    with av.open(str(fast)) as container:
        cut = next(p.pos for p in container.demux() if p.pts is not None and p.pts * p.time_base >= 0.6)
    path = tmp_path / "cut.mp4"
    path.write_bytes(fast.read_bytes()[:cut])
    assert probe(path).duration_sec == 2.0
    with raises_for(path, "truncated"):
        read_audio(path, 0.0, 0.2)
    with raises_for(path, "too short"):
        read_frames(path, 1.0, 0.5, 25)


def test_missing_streams(tmp_path):
    video_only = write_mp4(tmp_path / "mute.mp4", frames(1.0), 25)
    with raises_for(video_only, "no audio stream"):
        read_audio(video_only)
    with raises_for(video_only, "no audio stream"):
        read_clip(video_only, 0, 0, 1, 25, SR)
    audio_only = write_audio_only(tmp_path / "blind.mp4", tone(1.0))
    assert not probe(audio_only).has_video and probe(audio_only).has_audio
    with raises_for(audio_only, "no video stream"):
        read_frames(audio_only, 0, 1, 25)


def test_too_short(good):
    with raises_for(good, r"too short: need 1\.000 s from 1\.500 s, clip has 2\.000 s"):
        read_frames(good, 1.5, 1.0, 25)
    with raises_for(good, "too short"):
        read_audio(good, 1.5, 1.0)
    with raises_for(good, "too short"):
        read_clip(good, 0.0, 1.5, 1.0, 25, SR)


def test_tolerance_at_the_end(good):
    """Up to one frame period (video) or 0.05 s (audio) past the end is padded, not an error."""
    last = read_frames(good, 1.5, 0.5, 25)[-1]
    np.testing.assert_array_equal(read_frames(good, 1.5, 0.54, 25)[-1], last)  # 14th frame repeated
    assert read_audio(good, 1.5, 0.54).shape == (8640,)
    assert not read_audio(good, 1.5, 0.54)[-640:].any()
    with raises_for(good, "too short"):
        read_frames(good, 1.5, 0.6, 25)
    with raises_for(good, "too short"):
        read_audio(good, 1.5, 0.6)


@pytest.mark.parametrize("level", [0.0, 0.3])  # digital silence, and a constant DC offset
def test_silent_audio(tmp_path, level):
    silence = np.full(SR, level, np.float32)
    path = write_mp4(tmp_path / "silent.mov", frames(1.0), 25, silence, acodec="pcm_s16le")
    with raises_for(path, "silent audio"):
        read_audio(path, reject_silent=True)
    with raises_for(path, "silent audio"):
        read_clip(path, 0, 0, 1, 25, SR, reject_silent=True)
    np.testing.assert_allclose(read_audio(path), level, atol=1e-4)  # no error by default


def test_quiet_audio_is_not_silent(tmp_path):
    path = write_mp4(tmp_path / "quiet.mov", frames(1.0), 25, tone(1.0, 0.01), acodec="pcm_s16le")
    assert read_audio(path, reject_silent=True).shape == (SR,)

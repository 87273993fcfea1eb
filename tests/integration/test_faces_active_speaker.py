"""Active speaker per face track over time, through the suite's score-search protocol.

No trained face sync model is reachable here, so the decision is tested with an oracle scorer
that reads the time stamped into the frames and the audio (it scores 1 when a visual window and
an audio window come from the same moment): the face whose frames are in time with the audio
speaks, a face from a time-shifted copy (beyond the ±15-frame search) does not. SyncNet itself
(random init) runs through the same plumbing on real fixture crops of two tracks.
"""
import numpy as np
import pytest
import torch

from avsync.faces.active_speaker import speaking_over_time, track_audio
from avsync.faces.tracks import FaceTrack

FPS, SR = 25.0, 16000
SPF = int(SR / FPS)


class TimeStampOracle:
    """Frames carry their clip frame index in pixel [0, 0, 0]; audio samples carry index / 1000."""

    def pair_scores(self, frames, wav):
        video_t = frames[:, 0, 0, 0, 0].double()
        audio_t = torch.round(wav[:, 0].double() * 1000)
        return (video_t == audio_t).float()


def stamped(n, first, size=8):
    frames = np.zeros((n, size, size, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(first, first + n)
    return frames


def track(first, n):
    return FaceTrack(np.arange(first, first + n), np.zeros((n, 4)), np.ones(n, bool))


def test_in_sync_face_speaks_shifted_face_does_not():
    n_clip = 100
    wav = torch.from_numpy(np.repeat(np.arange(n_clip) / 1000, SPF).astype(np.float64))
    tracks = [track(10, 80), track(10, 80), track(0, 20)]
    crops = [stamped(80, 10), stamped(80, 10 + 50), stamped(20, 0)]  # speaker, time-shifted copy, short
    out = speaking_over_time(TimeStampOracle(), tracks, crops, wav, fps=FPS, sample_rate=SR, window_frames=5,
                             threshold=0.5, context=10)
    speaker, shifted, short = out
    assert speaker.speaking.all() and (speaker.offset_frames == 0).all()
    np.testing.assert_allclose(speaker.confidence, 1.0)
    assert not shifted.speaking.any() and shifted.speaking_share == 0.0
    np.testing.assert_allclose(shifted.confidence, 0.0)
    assert short.reason == "too_short" and len(short.times_sec) == 0
    # windows start at frame 15 of the track (max_shift) and a run spans 10 windows of 5 frames:
    # the first run covers track frames 15-28, centre 22 -> clip frame 32
    assert speaker.times_sec[0] == pytest.approx((10 + 15 + (10 - 1 + 5) / 2) / FPS)
    assert np.all(np.diff(speaker.times_sec) == pytest.approx(1 / FPS))


def test_track_audio_is_the_tracks_span():
    wav = torch.arange(SR, dtype=torch.float32)
    piece = track_audio(wav, track(5, 10), FPS, SR)
    assert len(piece) == 10 * SPF and piece[0] == 5 * SPF
    tail = track_audio(wav, track(20, 10), FPS, SR)  # runs 5 frames past the end: zero-padded
    assert len(tail) == 10 * SPF and tail[-1] == 0


def test_mismatched_inputs():
    with pytest.raises(ValueError, match="tracks but"):
        speaking_over_time(TimeStampOracle(), [track(0, 5)], [], torch.zeros(SR), fps=FPS, sample_rate=SR,
                           window_frames=5, threshold=0.5)
    with pytest.raises(ValueError, match="crops"):
        speaking_over_time(TimeStampOracle(), [track(0, 5)], [stamped(4, 0)], torch.zeros(SR), fps=FPS,
                           sample_rate=SR, window_frames=5, threshold=0.5)


def test_syncnet_scores_two_real_face_tracks(real_fixtures):
    from avsync.faces.crops import crop_track
    from avsync.papers.syncnet.module import SyncNetModule
    from avsync.media.decode import read_audio, read_frames

    torch.manual_seed(0)
    clip = real_fixtures / "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
    frames = read_frames(clip, 0, 1.6, FPS)
    wav = torch.from_numpy(read_audio(clip, 0, 1.6, SR))
    # two tracks with boxes near the speaker's face (hand-placed: the detector is tested elsewhere)
    tracks = [FaceTrack(np.arange(40), np.tile(b, (40, 1)), np.ones(40, bool))
              for b in ([280.0, 37.0, 318.0, 76.0], [100.0, 37.0, 138.0, 76.0])]
    crops = [crop_track(frames, t) for t in tracks]
    model = SyncNetModule(log_figures=False).eval()
    out = speaking_over_time(model, tracks, crops, wav, fps=FPS, sample_rate=SR, window_frames=5,
                             threshold=1.0, context=3)
    for res in out:
        assert res.reason == "" and len(res.times_sec) == len(res.confidence) > 0
        assert np.isfinite(res.confidence).all() and (res.confidence >= 0).all()
        assert (np.abs(res.offset_frames) <= 15).all()

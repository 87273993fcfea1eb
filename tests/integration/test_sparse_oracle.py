"""The toy sparse set's offset is in the pixels and samples at the model's 32 x 32 (issue 22).

An oracle that correlates the small object's reactions with the audio onsets must find the
offset well above chance on in-sync clips and must fall to chance when each clip's audio comes
from another clip (so it is the events, not the window draws, that it reads)."""
from types import SimpleNamespace

import numpy as np

from avsync.toy.generate import clip_rng
from avsync.toy.render import render_clip
from avsync.toy.sparse_oracle import audio_onsets, oracle_accuracy, predict_offset, visual_events, downsample


def _clips(n=8):
    return [render_clip("sparse", clip_rng(0, "test", i), duration_sec=10.0) for i in range(n)]


def test_oracle_finds_the_offset_of_sparse_clips_at_toy_resolution():
    clips = _clips()
    long3 = oracle_accuracy(clips, 7.0, 3, size=32, draws_per_clip=8)
    long21 = oracle_accuracy(clips, 7.0, 21, size=32, draws_per_clip=8)
    short21 = oracle_accuracy(clips, 3.0, 21, size=32, draws_per_clip=8)
    assert long3.acc > 0.8, long3
    assert long21.acc_tol > 0.55, long21
    assert short21.acc_tol < long21.acc_tol  # fewer events fit a shorter window (Table 4's trend)
    swapped = [SimpleNamespace(frames=c.frames, audio=clips[(i + 1) % len(clips)].audio, fps=c.fps,
                               sample_rate=c.sample_rate) for i, c in enumerate(clips)]
    control = oracle_accuracy(swapped, 7.0, 3, size=32, draws_per_clip=8)
    assert control.acc < 0.55, control


def test_event_signals_peak_at_the_rendered_events():
    clip = render_clip("sparse", clip_rng(0, "test", 0), duration_sec=10.0)
    v = visual_events(downsample(clip.frames, 32))
    a = audio_onsets(clip.audio, clip.sample_rate, clip.fps, len(v))
    events = np.round(np.asarray(clip.meta["event_times"]) * clip.fps).astype(int)
    for signal in (v, a):
        top = np.sort(np.argsort(signal)[::-1][: len(events)])
        assert np.all(np.abs(top - events) <= 1), (top, events)
    # a known shift of the audio window is recovered
    n = 125
    k = predict_offset(v[50:50 + n], a[75:75 + n], clip.fps, (-1.0, 0.0, 1.0))
    assert k == 2

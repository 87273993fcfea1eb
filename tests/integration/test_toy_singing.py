"""The toy ``singing`` variant (VocaLiST's Acappella stand-in): the talking head holding long steady
vowels — same mouth-follows-loudness rendering as ``dense``, far fewer onsets, a flat-topped envelope."""
import numpy as np

from avsync.toy import signals as sig
from avsync.toy.generate import clip_rng
from avsync.toy.render import VARIANTS, render_clip
from test_toy import centred_rms, corr, mouth_darkness


def _onsets_per_10s(clip) -> float:
    syl = clip.meta["syllables"]
    duration = len(clip.frames) / clip.fps
    return 10 * ((syl.onset >= 0) & (syl.onset < duration)).sum() / duration


def test_singing_is_registered_deterministic_and_shaped_like_dense():
    assert VARIANTS["singing"].default_size == VARIANTS["dense"].default_size
    a = render_clip("singing", clip_rng(0, "train", 3), duration_sec=2.0)
    b = render_clip("singing", clip_rng(0, "train", 3), duration_sec=2.0)
    assert a.frames.shape == (50, 64, 64, 3) and a.audio.shape == (32000,)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert isinstance(a.meta["syllables"], sig.SustainedNotes)


def test_singing_mouth_and_loudness_follow_the_envelope():
    for seed in range(3):
        clip = render_clip("singing", clip_rng(seed, "train", 0))
        env = clip.meta["envelope"]
        loud = centred_rms(clip.audio, clip.sample_rate, np.arange(len(env)) / clip.fps)
        assert corr(mouth_darkness(clip.frames), env) > 0.9
        assert corr(loud, env) > 0.9
        assert corr(loud, env) > max(corr(loud[1:], env[:-1]), corr(loud[:-1], env[1:]))


def test_singing_holds_notes_where_speech_moves():
    """Few onsets and long plateaus: the envelope barely changes between most frames."""
    sing = [render_clip("singing", clip_rng(s, "train", 0)) for s in range(4)]
    talk = [render_clip("dense", clip_rng(s, "train", 0)) for s in range(4)]
    onsets = lambda clips: np.mean([_onsets_per_10s(c) for c in clips])  # noqa: E731
    steady = lambda clips: np.mean([(np.abs(np.diff(c.meta["envelope"])) < 0.02).mean() for c in clips])  # noqa: E731
    voiced = lambda clips: np.mean([(c.meta["envelope"] > 0.3).mean() for c in clips])  # noqa: E731
    assert onsets(sing) < 0.4 * onsets(talk)
    assert steady(sing) > steady(talk) + 0.15
    assert voiced(sing) > 0.6 > voiced(talk)


def test_sustained_envelope_is_flat_between_its_ramps():
    notes = sig.SustainedNotes(np.array([0.0]), np.array([1.0]), np.array([0.8]), np.array([200.0]),
                               np.array([0.0]), np.array([[500.0, 1500.0]]), ramp=0.2)
    env = notes.envelope(np.array([-0.1, 0.0, 0.1, 0.2, 0.5, 0.8, 0.9, 1.0]))
    np.testing.assert_allclose(env, [0, 0, 0.4, 0.8, 0.8, 0.8, 0.4, 0], atol=1e-9)

"""The synthetic toy set: deterministic, synchronised where it should be, free of leakage, and
written as real mp4 files that read back through the decoders."""
import csv
import json
import time

import numpy as np
import pytest

from avsync.toy import signals as sig
from avsync.toy.generate import clip_rng, generate_toy_set, main, read_index
from avsync.toy.render import VARIANTS, render_clip

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def luma(frames):
    return (frames.astype(np.float32) / 255) @ LUMA


def mouth_darkness(frames):
    """Dark pixels in the lower middle of the face: the measured mouth opening per frame."""
    H, W = frames.shape[1:3]
    return (luma(frames[:, int(0.45 * H) : int(0.9 * H), int(0.3 * W) : int(0.7 * W)]) < 0.2).sum((1, 2))


def centred_rms(audio, sample_rate, times, window=0.04):
    """RMS of the audio in a window centred on each time."""
    half = round(window * sample_rate / 2)
    padded = np.pad(audio, (half, half))
    starts = np.round(np.asarray(times) * sample_rate).astype(int)
    idx = np.clip(starts[:, None] + np.arange(2 * half), 0, len(padded) - 1)
    return np.sqrt((padded[idx] ** 2).mean(1))


def max_secondary_autocorr(x, fps, lo=0.2, hi=2.0):
    """Largest Pearson correlation between x and itself shifted by lo..hi seconds."""
    return max(np.corrcoef(x[:-k], x[k:])[0, 1] for k in range(round(lo * fps), round(hi * fps) + 1))


def corr(a, b):
    return np.corrcoef(a, b)[0, 1]


# ---------------------------------------------------------------------------- rendering
def test_registry_and_unknown_variant():
    assert {"dense", "sparse"} <= set(VARIANTS)
    with pytest.raises(ValueError, match="unknown toy variant"):
        render_clip("nope", np.random.default_rng(0))


@pytest.mark.parametrize("variant", ["dense", "sparse"])
def test_determinism_and_shapes(variant):
    a = render_clip(variant, clip_rng(0, "train", 3), duration_sec=2.0)
    b = render_clip(variant, clip_rng(0, "train", 3), duration_sec=2.0)
    c = render_clip(variant, clip_rng(0, "train", 4), duration_sec=2.0)
    d = render_clip(variant, clip_rng(0, "valid", 3), duration_sec=2.0)
    side = VARIANTS[variant].default_size[0]
    assert a.frames.shape == (50, side, side, 3) and a.frames.dtype == np.uint8
    assert a.audio.shape == (32000,) and a.audio.dtype == np.float32
    assert 0.1 < np.abs(a.audio).max() <= 0.9
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.audio, b.audio)
    for other in (c, d):
        assert not np.array_equal(a.frames, other.frames) and not np.array_equal(a.audio, other.audio)


@pytest.mark.parametrize("variant", ["dense", "sparse"])
def test_same_clip_at_any_frame_rate(variant):
    """Content is a function of continuous time: 50 fps frames 0, 2, 4... are the 25 fps frames."""
    c25 = render_clip(variant, clip_rng(1, "train", 0), duration_sec=2.0, fps=25)
    c50 = render_clip(variant, clip_rng(1, "train", 0), duration_sec=2.0, fps=50)
    np.testing.assert_array_equal(c50.frames[::2], c25.frames)
    np.testing.assert_array_equal(c50.audio, c25.audio)
    for fps in (24, 30, 60):
        assert len(render_clip(variant, clip_rng(1, "train", 0), duration_sec=2.0, fps=fps).frames) == 2 * fps


def test_size_override():
    clip = render_clip("dense", np.random.default_rng(0), duration_sec=1.0, size=(48, 80))
    assert clip.frames.shape == (25, 48, 80, 3)


# ---------------------------------------------------------------------------- dense
def test_dense_mouth_and_loudness_follow_the_envelope():
    for seed in range(3):
        clip = render_clip("dense", clip_rng(seed, "train", 0))
        env = clip.meta["envelope"]
        times = np.arange(len(env)) / clip.fps
        assert corr(mouth_darkness(clip.frames), env) > 0.9
        loud = centred_rms(clip.audio, clip.sample_rate, times)
        assert corr(loud, env) > 0.9
        # and in sync: shifting the audio by one frame either way correlates worse
        assert corr(loud, env) > max(corr(loud[1:], env[:-1]), corr(loud[:-1], env[1:])) + 0.02
        # the mouth opening is a large signal: from ~1 px to ~1/3 of the frame height
        assert clip.meta["mouth_height"].max() > 0.25 * clip.frames.shape[1]


def test_dense_envelope_is_aperiodic():
    fps = 25
    t = np.arange(250) / fps
    envelopes = [sig.syllable_track(np.random.default_rng(s), -3, 13).envelope(t) for s in range(20)]
    worst = max(max_secondary_autocorr(e, fps) for e in envelopes)
    assert worst < 0.5
    # the measure does see a periodic syllable train
    onsets = np.arange(-3, 13, 0.4)
    periodic = sig.bumps(t, onsets, np.full(len(onsets), 0.25))
    assert max_secondary_autocorr(periodic, fps) > 0.9


# ---------------------------------------------------------------------------- sparse
def test_sparse_events_sound_and_show():
    for seed in range(6):
        clip = render_clip("sparse", clip_rng(seed, "train", 0), offscreen_rate=0.0)
        events, fps, sr = clip.meta["event_times"], clip.fps, clip.sample_rate
        assert 2 <= len(events) <= 5 and np.all(np.diff(events) >= 0.6)

        # audio: each event is the loudest thing around; the loudest moments are the events
        hop = sr // 100  # 10 ms frames
        energy = (clip.audio[: len(clip.audio) // hop * hop].reshape(-1, hop) ** 2).mean(1)
        for te in events[events < 9.9]:
            k = int(te * 100)
            assert energy[k : k + 5].max() > 30 * np.median(energy)
        far = np.ones(len(energy), bool)
        for te in events:
            far[max(int(te * 100) - 2, 0) : int(te * 100) + 15] = False
        assert energy[far].max() < 0.2 * energy[~far].max()

        # picture: the object's centre pixel departs from its colour on the first frame at or
        # after each event, and not away from events
        yx = np.round(clip.meta["object_center"]).astype(int)
        H, W = clip.frames.shape[1:3]
        centre = clip.frames[np.arange(len(yx)), yx[:, 0].clip(0, H - 1), yx[:, 1].clip(0, W - 1)] / 255.0
        change = np.abs(centre - clip.meta["object_color"]).max(1)
        t = np.arange(len(centre)) / fps
        first = np.ceil(events * fps - 1e-9).astype(int)
        first = first[first < len(centre)]
        assert np.all(change[first] > 0.25)
        # (the stationary event process also has events just before t = 0, whose reaction can
        # reach into the first frames: judge "away from events" from 0.4 s on)
        quiet = (np.min(np.abs(t[:, None] - events[None]), 1) > 0.4) & (t > 0.4)
        assert np.all(change[quiet] < 0.1)

        # distractors move and never sound (they are not in the audio by construction)
        paths = clip.meta["distractor_centers"]
        assert 2 <= len(paths) <= 3 and np.all(paths.std(1).max(1) > 1.0)


def test_sparse_offscreen_sounds_are_quieter_than_events():
    clip = render_clip("sparse", clip_rng(2, "train", 0), offscreen_rate=0.5)
    assert len(clip.meta["offscreen_times"]) >= 2  # distractors present at this rate
    sr = clip.sample_rate
    ev = max(np.abs(clip.audio[int(te * sr) : int(te * sr) + 800]).max() for te in clip.meta["event_times"])
    off = max(np.abs(clip.audio[int(t * sr) : int(t * sr) + 4000]).max() for t in clip.meta["offscreen_times"])
    assert off < 0.7 * ev


# ---------------------------------------------------------------------------- leakage
@pytest.mark.parametrize("variant", ["dense", "sparse"])
def test_no_trend_over_the_clip(variant):
    """Brightness and loudness of the two halves (and first vs last second) are exchangeable."""
    stats = []
    for i in range(24):
        clip = render_clip(variant, clip_rng(7, "train", i), duration_sec=4.0)
        b, a = luma(clip.frames).mean((1, 2)), clip.audio**2
        T, S = len(b), len(a)
        stats.append(
            [b[: T // 2].mean() - b[T // 2 :].mean(), a[: S // 2].mean() - a[S // 2 :].mean(),
             b[: T // 4].mean() - b[-T // 4 :].mean(), a[: S // 4].mean() - a[-S // 4 :].mean()]
        )
    d = np.array(stats)
    t_stat = d.mean(0) / (d.std(0, ddof=1) / np.sqrt(len(d)))
    assert np.all(np.abs(t_stat) < 3.5), t_stat


# ---------------------------------------------------------------------------- files
def test_sets_of_other_durations_live_side_by_side_in_one_cache(tmp_path):
    """Runs that ask for the same variant at other clip lengths share a cache without deleting
    each other's clips (a shared cache used to hold one set per variant, size and seed)."""
    short = generate_toy_set(tmp_path, "dense", {"test": 1}, seed=3, duration_sec=4.0, progress=False)
    long = generate_toy_set(tmp_path, "dense", {"test": 1}, seed=3, duration_sec=10.0, progress=False)
    assert short != long and short.name == "dense_25fps_64px_4s_seed3"
    assert (short / "test" / "test_00000.mp4").exists() and (long / "test" / "test_00000.mp4").exists()


def test_generate_writes_playable_clips_and_is_a_cache(tmp_path):
    from avsync.media import read_audio, read_frames

    splits = {"train": 2, "test": 1}
    set_dir = generate_toy_set(tmp_path, "dense", splits, seed=3, progress=False)
    assert set_dir.name == "dense_25fps_64px_10s_seed3"
    manifest = json.loads((set_dir / "manifest.json").read_text())
    assert manifest["splits"] == splits and manifest["variant"] == "dense" and "generator_version" in manifest
    with open(set_dir / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = [("train", 0), ("train", 1), ("test", 0)]
    assert [r["path"] for r in rows] == [f"{s}/{s}_{i:05d}.mp4" for s, i in expected]
    assert [r["split"] for r in rows] == ["train", "train", "test"]
    assert all(float(r["duration_sec"]) == 10 and r["variant"] == "dense" for r in rows)
    assert len(read_index(set_dir)) == 3

    # decoded back: 250 frames, 10 s of audio, still the same clip and still in sync
    path = set_dir / rows[2]["path"]
    frames = read_frames(path, 0.0, 10.0, 25)
    audio = read_audio(path, 0.0, None, 16000)
    assert frames.shape == (250, 64, 64, 3) and abs(len(audio) - 160000) <= 800
    clip = render_clip("dense", clip_rng(3, "test", 0))
    assert np.abs(frames.astype(int) - clip.frames).mean() < 4.0  # crf 18 + yuv420p: ~3 levels
    env = json.loads(path.with_suffix(".json").read_text())["envelope"]
    np.testing.assert_allclose(env, clip.meta["envelope"], atol=1e-3)
    mouth = mouth_darkness(frames)
    assert corr(mouth, env) > 0.9
    lags = np.arange(-60, 61, 5) / 1000
    scores = [corr(centred_rms(audio, 16000, np.arange(250) / 25 + lag), mouth) for lag in lags]
    assert abs(lags[int(np.argmax(scores))]) <= 0.01, dict(zip(lags, np.round(scores, 3)))

    # a second call is a no-op; a deleted clip is rewritten alone
    files = sorted(set_dir.rglob("*.mp4"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    start = time.perf_counter()
    assert generate_toy_set(tmp_path, "dense", splits, seed=3, progress=False) == set_dir
    assert time.perf_counter() - start < 0.5
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    files[0].unlink()
    generate_toy_set(tmp_path, "dense", splits, seed=3, progress=False)
    assert files[0].exists()
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in files[1:])


def test_a_smaller_request_keeps_the_larger_set_listed(tmp_path):
    set_dir = generate_toy_set(tmp_path, "dense", {"train": 3, "test": 1}, seed=3, duration_sec=1.0, progress=False)
    generate_toy_set(tmp_path, "dense", {"train": 1, "valid": 1}, seed=3, duration_sec=1.0, progress=False)
    assert json.loads((set_dir / "manifest.json").read_text())["splits"] == {"train": 3, "test": 1, "valid": 1}
    assert [r["split"] for r in read_index(set_dir)].count("train") == 3


def test_cli_and_config_change(tmp_path):
    from avsync.media import probe

    argv = ["--variant", "sparse", "--out", str(tmp_path), "--train", "1", "--valid", "0", "--test", "0"]
    argv.append("--quiet")
    set_dir = main(argv + ["--duration", "2"])
    clip = set_dir / "train" / "train_00000.mp4"
    info = probe(clip)
    assert (info.num_frames, info.width, info.video_codec, info.audio_codec) == (50, 96, "h264", "aac")
    # another duration: a set of its own beside the first, which stays as it was
    longer = main(argv + ["--duration", "3"])
    assert longer != set_dir and probe(longer / "train" / "train_00000.mp4").num_frames == 75
    assert probe(clip).num_frames == 50
    # same folder, other content (an older generator wrote it) -> the stale clip is rewritten
    manifest = json.loads((set_dir / "manifest.json").read_text())
    (set_dir / "manifest.json").write_text(json.dumps({**manifest, "generator_version": 0}))
    clip.write_bytes(b"stale")
    assert main(argv + ["--duration", "2"]) == set_dir
    assert probe(clip).num_frames == 50
    assert json.loads((set_dir / "manifest.json").read_text())["generator_version"] == manifest["generator_version"]

"""The offset convention and the sampling protocol of the papers (docs/conventions.md).

Read top to bottom: the grids, the sign, SparseSync's training crops, the fixed test offsets,
and the official fixed-offset CSV files.
"""
import csv
import os
import random
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch

from avsync.offsets import (
    ACCEPTABILITY_MS,
    DETECTABILITY_MS,
    ClipTooShortError,
    CropPlan,
    FixedOffsets,
    FrameShifts,
    OffsetGrid,
    RandomFrameShiftSampler,
    RandomOffsetSampler,
    frames_to_seconds,
    get_grid,
    item_rng,
    key_for,
    seconds_to_frames,
    stable_hash,
)

EPS = 1e-9


# ---------------------------------------------------------------- grids
def test_grid21_is_minus2_to_plus2_in_steps_of_0_2():
    grid = get_grid(21)
    assert grid.num_classes == 21 and grid.max_offset_sec == 2.0 and grid.step_sec == 0.2
    assert grid.values[0] == -2.0 and grid.values[10] == 0.0 and grid.values[-1] == 2.0
    assert grid.values[:3] == (-2.0, -1.8, -1.6)
    assert np.allclose(np.diff(grid.values), 0.2)


def test_grid3_and_grid41():
    assert get_grid(3).values == (-1.0, 0.0, 1.0)
    g41 = get_grid(41)
    assert len(g41.values) == 41 and g41.step_sec == 0.1
    assert g41.values[19:22] == (-0.1, 0.0, 0.1)


def test_grids_are_values_not_identities():
    assert get_grid(21) == OffsetGrid(21, 2.0)
    assert OffsetGrid(5, 1.0).values == (-1.0, -0.5, 0.0, 0.5, 1.0)


def test_unknown_grid_size_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"\[3, 21, 41\]"):
        get_grid(7)


def test_class_of_and_seconds_of_roundtrip():
    for n in (3, 21, 41):
        grid = get_grid(n)
        for cls in range(n):
            assert grid.class_of(grid.seconds_of(cls)) == cls
    assert get_grid(21).class_of(0.2 + 5e-4) == 11  # float noise from CSVs is fine


def test_class_of_rejects_off_grid_offsets_but_nearest_class_snaps():
    grid = get_grid(21)
    with pytest.raises(ValueError, match="not on the 21-class grid"):
        grid.class_of(0.1)
    assert grid.nearest_class(0.13) == 11
    assert grid.nearest_class(7.0) == 20


def test_frames_of_a_class_at_25fps():
    grid = get_grid(21)
    assert grid.frames_of(grid.class_of(0.2), 25) == 5
    assert grid.frames_of(grid.class_of(-2.0), 25) == -50
    assert grid.frames_of(grid.class_of(0.0), 30) == 0


def test_grid_as_tensor():
    t = get_grid(3).as_tensor()
    assert t.dtype == torch.float32 and torch.equal(t, torch.tensor([-1.0, 0.0, 1.0]))


def test_frame_shifts_are_31_candidates_at_any_fps():
    shifts = FrameShifts()
    assert shifts.values == tuple(range(-15, 16)) and len(shifts) == 31
    assert shifts.seconds(5, 25) == pytest.approx(0.2)
    assert shifts.offsets_sec(30)[-1] == pytest.approx(0.5)
    assert shifts.index_of(-15) == 0


def test_seconds_frames_helpers_are_symmetric():
    assert seconds_to_frames(0.2, 25) == 5
    assert seconds_to_frames(-0.2, 25) == -5
    assert seconds_to_frames(0.02, 25) == 1 and seconds_to_frames(-0.02, 25) == -1  # half → away
    assert seconds_to_frames(1 / 30 * 7, 30) == 7
    assert frames_to_seconds(5, 25) == pytest.approx(0.2)


# ---------------------------------------------------------------- sign convention
def test_positive_offset_means_audio_starts_later_in_the_source():
    plan = CropPlan(video_start_sec=1.0, offset_sec=0.4, duration_sec=5.0)
    assert plan.audio_start_sec == pytest.approx(1.4)  # audio leads: its crop starts later
    jittered = CropPlan(video_start_sec=1.0, offset_sec=0.4, duration_sec=5.0, audio_jitter_sec=-0.03)
    assert jittered.audio_start_sec == pytest.approx(1.37)
    assert jittered.audio_end_sec == pytest.approx(6.37)


def test_itu_windows_read_in_the_audio_leads_sign():
    assert DETECTABILITY_MS == (-125.0, 45.0)
    assert ACCEPTABILITY_MS == (-185.0, 90.0)


# ---------------------------------------------------------------- training sampler (SparseSync)
def _inside(plan: CropPlan, limit: float) -> bool:
    return (
        -EPS <= plan.video_start_sec and plan.video_end_sec <= limit + EPS
        and -EPS <= plan.audio_start_sec and plan.audio_end_sec <= limit + EPS
    )


def test_sparsesync_crops_stay_inside_the_first_9_s_for_both_streams():
    """2000 draws on random durations in [5.2, 12] s: jitter included, nothing leaves the source."""
    sampler = RandomOffsetSampler(get_grid(21))  # 5 s crop, first 9 s, jitter ±0.05 s
    rng = np.random.default_rng(0)
    jitters = []
    for duration in rng.uniform(5.2, 12.0, size=2000):
        plan = sampler.sample(float(duration), rng)
        assert _inside(plan, min(duration, 9.0)), (duration, plan)
        assert abs(plan.audio_jitter_sec) <= 0.05 + EPS
        assert plan.label == get_grid(21).class_of(plan.offset_sec)
        jitters.append(plan.audio_jitter_sec)
    assert min(jitters) < -0.04 and max(jitters) > 0.04  # the jitter is really drawn


def test_offsets_cover_all_21_classes_roughly_uniformly_on_a_10s_clip():
    sampler = RandomOffsetSampler(get_grid(21))
    rng = np.random.default_rng(1)
    counts = Counter(sampler.sample(10.0, rng).label for _ in range(4200))
    assert sorted(counts) == list(range(21))
    assert min(counts.values()) > 140 and max(counts.values()) < 260  # expected 200 each


def test_short_clips_draw_only_the_offsets_that_fit():
    sampler = RandomOffsetSampler(get_grid(21), jitter_sec=0.0)
    rng = np.random.default_rng(2)
    offsets = {sampler.sample(5.4, rng).offset_sec for _ in range(500)}
    assert offsets == {-0.4, -0.2, 0.0, 0.2, 0.4}


def test_a_clip_shorter_than_the_crop_raises_and_says_what_is_needed():
    sampler = RandomOffsetSampler(get_grid(21))
    with pytest.raises(ClipTooShortError, match=r"at least 5\.000 s"):
        sampler.sample(4.9, np.random.default_rng(0))
    assert issubclass(ClipTooShortError, ValueError)
    three = RandomOffsetSampler(get_grid(3))
    assert three.full_duration_sec == 6.0 and three.feasible(5.5) == [1]


def test_start_step_keeps_video_starts_on_frames():
    sampler = RandomOffsetSampler(get_grid(21), start_step_sec=0.04)
    rng = np.random.default_rng(3)
    for _ in range(200):
        v = sampler.sample(10.0, rng).video_start_sec
        assert abs(v / 0.04 - round(v / 0.04)) < 1e-6


def test_frame_shift_sampler_draws_integer_shifts_inside_the_clip():
    sampler = RandomFrameShiftSampler(max_shift=15, fps=25, window_frames=5)
    rng = np.random.default_rng(4)
    shifts = Counter()
    for duration in rng.uniform(1.0, 3.0, size=500):
        plan = sampler.sample(float(duration), rng)
        assert plan.label is None and plan.duration_sec == pytest.approx(0.2)
        assert _inside(plan, duration)
        assert abs(plan.video_start_sec * 25 - round(plan.video_start_sec * 25)) < 1e-6
        shifts[sampler.shift_of(plan)] += 1
    assert set(shifts) == set(range(-15, 16))
    with pytest.raises(ClipTooShortError):
        sampler.sample(0.1, rng)


def test_item_rng_differs_per_epoch_and_item_and_is_reproducible():
    a = item_rng(0, 0, 7).random()
    assert a == item_rng(0, 0, 7).random()
    assert a != item_rng(0, 1, 7).random() and a != item_rng(0, 0, 8).random()


# ---------------------------------------------------------------- fixed evaluation offsets
DURATIONS = {f"pretrain/vid{i:03d}/{i:05d}": 9.0 + (i % 5) * 0.5 for i in range(60)}


def _fixed(durations=DURATIONS, seed=123):
    return FixedOffsets.from_seed(durations, RandomOffsetSampler(get_grid(21)), seed=seed)


def test_fixed_offsets_have_no_jitter_and_stay_inside():
    fixed = _fixed()
    assert len(fixed) == 60
    for key, plan in fixed.items():
        assert plan.audio_jitter_sec == 0.0
        assert _inside(plan, min(DURATIONS[key], 9.0))


def test_fixed_offsets_do_not_depend_on_key_order():
    keys = list(DURATIONS)
    random.Random(0).shuffle(keys)
    shuffled = _fixed({k: DURATIONS[k] for k in keys})
    one_clip = _fixed({keys[0]: DURATIONS[keys[0]]})
    reference = _fixed()
    assert all(shuffled[k] == reference[k] for k in DURATIONS)
    assert one_clip[keys[0]] == reference[keys[0]]  # a shard sees the same plan as the whole set


def test_fixed_offsets_are_the_same_across_epochs_and_processes():
    """Rebuilt in a fresh interpreter with another PYTHONHASHSEED (a DataLoader worker/rank)."""
    key = "pretrain/vid007/00007"
    code = (
        "from avsync.offsets import *;"
        f"f = FixedOffsets.from_seed({{{key!r}: 10.0}}, RandomOffsetSampler(get_grid(21)), seed=123);"
        f"p = f[{key!r}]; print(repr((p.video_start_sec, p.offset_sec, p.label)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "987"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env).stdout
    local = _fixed({key: 10.0})[key]
    assert eval(out) == (local.video_start_sec, local.offset_sec, local.label)
    assert [_fixed()[key] for _epoch in range(3)] == [_fixed()[key]] * 3


def test_fixed_offsets_depend_on_the_seed():
    a, b = _fixed(seed=1), _fixed(seed=2)
    assert sum(a[k] != b[k] for k in DURATIONS) > 50


def test_stable_hash_is_a_fixed_function():
    assert stable_hash("pretrain/C8zY0oAdQrs/00018") == stable_hash("pretrain/C8zY0oAdQrs/00018")
    assert stable_hash("a") != stable_hash("b") and stable_hash("a") >= 0


def test_lookup_by_file_path_or_clip_id():
    fixed = _fixed()
    key = "pretrain/vid003/00003"
    assert "/data/lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/vid003/00003.mp4" in fixed
    assert fixed[f"/data/lrs3/{key}.mp4"] == fixed[key]
    assert "pretrain/nope/00001" not in fixed


def test_synchformer_resampling_n_plans_per_clip():
    """LRS3: 2 offsets per test clip, VGGSound-Sparse: 25; plan 0 is the fixed one."""
    fixed = _fixed()
    key = "pretrain/vid010/00010"
    plans = fixed.plans_for(key, 25)
    assert len(plans) == 25 and plans[0] == fixed[key]
    assert plans == fixed.plans_for(key, 25)
    assert len({(p.offset_sec, p.video_start_sec) for p in plans}) > 20
    again = fixed.resample(2)
    assert again.plans_for(key) == plans[:2]
    assert _fixed(seed=123).resample(25).plans_for(key) == plans


# ---------------------------------------------------------------- key normalisation
@pytest.mark.parametrize("path, key", [
    ("/data/lrs3/pretrain/C8zY0oAdQrs/00018.mp4", "pretrain/C8zY0oAdQrs/00018"),
    ("lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4",
     "pretrain/C8zY0oAdQrs/00018"),
    ("pretrain/C8zY0oAdQrs/00018", "pretrain/C8zY0oAdQrs/00018"),
    ("/vggsound/video/---g-f_I2yQ_1000_11000.mp4", "---g-f_I2yQ_1000_11000"),
    ("/d/mvlrs_v1/main/6330311066473698535/00011.mp4", "6330311066473698535/00011"),
    ("./toy/clip_0001.mp4", "toy/clip_0001"),
])
def test_key_for_strips_roots_and_extensions(path, key):
    assert key_for(path) == key
    assert key_for(key) == key


def test_key_for_with_an_explicit_root():
    assert key_for("/data/set/a/b/c.mp4", root="/data/set") == "a/b/c"


# ---------------------------------------------------------------- the official CSV files
def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_lrs3_size21_csv_lies_on_the_21_grid(real_fixtures):
    path = real_fixtures / "metadata" / "lrs3_test_fixed_offsets_size21_crop5.csv"
    fixed = FixedOffsets.from_csv(path, get_grid(21), duration_sec=5.0)
    rows = _rows(path)
    assert len(fixed) == len(rows) == 5966
    assert "pretrain/-MTRxRO5SRA/00002" in fixed  # key = the `path` column, <split>/<ytid>/<utt>
    labels = Counter()
    for key, plan in fixed.items():
        assert plan.video_start_sec >= 0 and plan.duration_sec == 5.0
        assert plan.audio_start_sec >= -EPS  # the file agrees with audio_start = vstart + Δ
        labels[plan.label] += 1
    assert sorted(labels) == list(range(21))
    first = fixed["pretrain/-MTRxRO5SRA/00002"]
    assert (first.offset_sec, first.video_start_sec, first.label) == (0.2, 2.96, 11)


def test_lrs3_size3_csv_lies_on_the_3_grid(real_fixtures):
    path = real_fixtures / "metadata" / "lrs3_test_fixed_offsets_size3_crop5.csv"
    fixed = FixedOffsets.from_csv(path, get_grid(3))
    assert len(fixed) == 5778
    assert {plan.offset_sec for _, plan in fixed.items()} == {-1.0, 0.0, 1.0}
    assert all(p.video_start_sec >= 0 and p.audio_start_sec >= -EPS for _, p in fixed.items())
    with pytest.raises(ValueError, match="not on the 3-class grid"):
        FixedOffsets.from_csv(real_fixtures / "metadata" / "lrs3_test_fixed_offsets_size21_crop5.csv",
                              get_grid(3))


def test_csv_keys_are_already_normalised(real_fixtures):
    meta = real_fixtures / "metadata"
    for name, column in [("lrs3_test_fixed_offsets_size21_crop5.csv", "path"),
                         ("vggsound_test_fixed_offsets_size21_crop5.csv", "path"),
                         ("vggsound_sparse_clean_fixed_offsets.csv", "video_id")]:
        for row in _rows(meta / name):
            assert key_for(row[column]) == row[column]


def test_vggsound_sparse_clean_has_several_plans_per_video(real_fixtures):
    path = real_fixtures / "metadata" / "vggsound_sparse_clean_fixed_offsets.csv"
    fixed = FixedOffsets.from_csv(path, get_grid(21))  # keyed by the video_id column
    assert len(fixed) == 451 and sum(1 for _ in fixed.items()) == 646
    assert len(fixed.plans_for("-Wsuo4VDwfE_30000_40000")) == 2
    with pytest.raises(ValueError, match="plans_for"):
        fixed["-Wsuo4VDwfE_30000_40000"]
    assert fixed["-7tYmeOmsRg_58000_68000"].offset_sec == -1.0


def test_csv_plans_can_be_resampled_given_durations(real_fixtures, tmp_path):
    rows = (real_fixtures / "metadata" / "lrs3_test_fixed_offsets_size21_crop5.csv").read_text()
    small = tmp_path / "head.csv"
    small.write_text("\n".join(rows.splitlines()[:41]) + "\n")  # header + 40 clips
    fixed = FixedOffsets.from_csv(small, get_grid(21))
    key = "pretrain/-MTRxRO5SRA/00002"
    with pytest.raises(ValueError, match="no sampler"):
        fixed.plans_for(key, 2)
    twice = fixed.resample(2, seed=0, sampler=RandomOffsetSampler(get_grid(21)),
                           durations={k: 10.0 for k in fixed})
    plans = twice.plans_for(key)
    assert plans[0] == fixed[key] and len(plans) == 2  # the official offset stays plan 0
    assert len(twice) == 40 and sum(1 for _ in twice.items()) == 80

"""DiVAS training pairs (§3.1): negatives shifted "as small as 1 video frame and as large as possible,
only limited by the clip length" — drawn by the data layer over the whole clip, not inside a 2 s crop."""
import numpy as np
import pytest
import torch

from avsync.data_modules.base import AVClipDataset, ClipRecord
from avsync.inputs import InputSpec
from avsync.papers.divas.module import DiVASModule
from avsync.offsets import ClipTooShortError, PairShiftSampler

CLIP = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"  # 15.72 s, 393 frames


def test_pair_shifts_reach_the_clip_length_and_half_are_negatives():
    sampler = PairShiftSampler(fps=25.0, window_frames=5, negative_fraction=0.5)
    rng = np.random.default_rng(0)
    plans = [sampler.sample(15.72, rng) for _ in range(4000)]
    shifts = np.array([round(p.offset_sec * 25) for p in plans])
    starts = np.array([round(p.video_start_sec * 25) for p in plans])
    assert 0.47 < (shifts != 0).mean() < 0.53
    assert np.abs(shifts).max() > 300  # far beyond the ±45 frames a 2 s crop allows
    assert np.abs(shifts[shifts != 0]).min() == 1
    assert ((starts >= 0) & (starts + 5 <= 393) & (starts + shifts >= 0) & (starts + shifts + 5 <= 393)).all()
    assert all(p.duration_sec == pytest.approx(0.2) for p in plans[:10])
    assert sampler.feasible(0.2) == [0] and sampler.feasible(0.16) == []
    with pytest.raises(ClipTooShortError):
        sampler.sample(0.16, rng)


def test_pairs_from_the_real_clip_hold_the_shifted_audio(real_fixtures):
    spec = InputSpec(fps=25.0, duration_sec=0.2, frame_size=32, resize_short_side=None, offset_classes=None,
                     max_frame_shift=15, random_crop=False, hflip=False)
    record = ClipRecord(key="clip", path=real_fixtures / CLIP, duration_sec=15.72, split="train")
    data = AVClipDataset([record], spec, True, PairShiftSampler(25.0, 5, 1.0))
    torch.manual_seed(3)
    item = data[0]
    d = int(item["target"])
    assert d != 0 and item["video"].shape == (5, 32, 32, 3) and item["audio"].shape == (3200,)
    assert item["audio_start_sec"] == pytest.approx(item["video_start_sec"] + d / 25)


def test_divas_takes_the_delivered_pairs_in_data_mode():
    torch.manual_seed(0)
    module = DiVASModule(arch="divas_toy", negatives="data")
    video = torch.randint(0, 255, (4, 6, 32, 32, 3), dtype=torch.uint8)
    audio = torch.randn(4, 4000)
    target = torch.tensor([0, 212, -3, 0])
    frames, wav, in_sync = module.training_pairs({"video": video, "audio": audio, "target": target})
    assert torch.equal(frames, video[:, :5]) and torch.equal(wav, audio[:, :3200])
    assert in_sync.tolist() == [True, False, False, True]
    with pytest.raises(ValueError, match="duration_sec"):
        module.training_pairs({"video": video[:, :4], "audio": audio, "target": target})
    with pytest.raises(ValueError, match="negatives"):
        DiVASModule(arch="divas_toy", negatives="batch")

"""Whole-frame resize (AVST App. A: frames "resized to 224x224 without cropping") and the training
crop / flip switches, on the real full-frame LRS3 clip (454x256)."""
import numpy as np
import pytest
import torch

from avsync.data_modules.base import AVClipDataset, ClipRecord
from avsync.inputs import InputSpec
from avsync.media import read_clip
from avsync.offsets import RandomFrameShiftSampler

CLIP = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
SIZE = 64


def _dataset(path, **spec_fields):
    spec = InputSpec(fps=25.0, duration_sec=0.4, frame_size=SIZE, resize_short_side=None,
                     offset_classes=None, max_frame_shift=0, **spec_fields)
    sampler = RandomFrameShiftSampler(max_shift=0, fps=25.0, window_frames=spec.num_frames)
    record = ClipRecord(key="clip", path=path, duration_sec=15.72, split="train")
    return AVClipDataset([record], spec, True, sampler)


def _strips(native: np.ndarray) -> np.ndarray:
    """(T, SIZE, SIZE, 3): the native frames averaged over SIZE equal column strips and row bands."""
    t, h, w, c = native.shape
    rows = np.array_split(np.arange(h), SIZE)
    cols = np.array_split(np.arange(w), SIZE)
    out = np.empty((t, SIZE, SIZE, c))
    for i, r in enumerate(rows):
        band = native[:, r].mean(1)
        for j, k in enumerate(cols):
            out[:, i, j] = band[:, k].mean(1)
    return out


def test_whole_frame_resize_keeps_the_full_width(real_fixtures):
    path = real_fixtures / CLIP
    torch.manual_seed(0)
    item = _dataset(path, keep_aspect=False, hflip=False)[0]
    frames = item["video"].numpy().astype(np.float64)
    assert frames.shape == (10, SIZE, SIZE, 3)  # 454x256 squeezed to 64x64, nothing cut
    start = item["video_start_sec"]
    native = read_clip(path, start, start, 0.4, 25.0, 16000, size=None)["video"].astype(np.float64)
    assert native.shape[1:3] == (256, 454)
    ref = _strips(native)  # what a stretch of the whole frame shows, column strip by column strip
    for col in (0, SIZE - 1):  # the source's left and right edges appear as the first and last columns
        assert np.abs(frames[:, :, col] - ref[:, :, col]).mean() < 12
    # a short-side resize + centre crop (the default) starts ~22 % of the width in: its left column
    # is the source's column ~99 of 454, not the edge
    cropped = _dataset(path, hflip=False)._crop(
        read_clip(path, start, start, 0.4, 25.0, 16000, size=SIZE)["video"], None).astype(np.float64)
    assert cropped.shape == (10, SIZE, SIZE, 3)
    assert np.abs(cropped[:, :, 0] - ref[:, :, 0]).mean() > 2 * np.abs(frames[:, :, 0] - ref[:, :, 0]).mean()


def test_keep_aspect_false_is_for_whole_frames_only():
    assert InputSpec(frame_size=224, keep_aspect=False).decode_size == (224, 224)
    assert InputSpec(frame_size=224, resize_short_side=256).decode_size == 256
    with pytest.raises(ValueError, match="keep_aspect"):
        InputSpec(frame_size=96, crop="face", keep_aspect=False).decode_size


def test_training_crop_is_centred_and_unflipped_when_switched_off():
    video = np.random.default_rng(0).integers(0, 255, (3, 80, 120, 3), dtype=np.uint8)
    spec = dict(keep_aspect=True)
    plain = _dataset("unused.mp4", random_crop=False, hflip=False, **spec)
    rng = np.random.default_rng(1)
    for _ in range(5):  # a training generator, yet always the evaluation crop
        np.testing.assert_array_equal(plain._crop(video, rng), plain.centre_crop(video))
    random = _dataset("unused.mp4", **spec)
    crops = {random._crop(video, np.random.default_rng(i)).tobytes() for i in range(8)}
    assert len(crops) > 1  # the default still draws crops (and flips)

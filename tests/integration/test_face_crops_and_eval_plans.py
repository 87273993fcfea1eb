"""Face-box crops (LRS3 ``.txt``) and Synchformer's repeated evaluation offsets, on the real fixtures."""
import csv

import numpy as np
import pytest

from avsync.data_modules import LRS3DataModule, VGGSoundDataModule
from avsync.data_modules.face_boxes import crop_faces, read_face_boxes, window_boxes
from avsync.inputs import InputSpec
from avsync.media import MediaError

LRS3_KEY = "pretrain/C8zY0oAdQrs/00018"
FACE_DIR = "h264_orig_strict_crop_25fps_224side_16000hz_aac"
VGG_KEY = "3qesirWAGt4_20000_30000"


def corr(a, b) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def lrs3(real_fixtures, tmp_path, variant, spec, **kw):
    meta = real_fixtures / "metadata"
    dm = LRS3DataModule(root=str(real_fixtures / "lrs3"), variant=variant, input_spec=spec, num_workers=0,
                        split_files={"test": str(meta / "lrs3_test.txt")},
                        fixed_offsets_csv={"test": str(meta / "lrs3_test_fixed_offsets_size21_crop5.csv")},
                        probe_cache_dir=str(tmp_path / "cache"), report_dir=str(tmp_path / "r"), **kw)
    dm.setup("test")
    return dm


# ---------------------------------------------------------------------------- box maths
def test_box_file_rows_and_window_lookup(real_fixtures):
    boxes = read_face_boxes(real_fixtures / "lrs3" / FACE_DIR / (LRS3_KEY + ".txt"))
    assert boxes.shape == (393, 4)  # one box per frame of the 393-frame clip
    np.testing.assert_allclose(boxes[0], [0.616, 0.146, 0.085, 0.151], atol=1e-6)
    np.testing.assert_allclose(boxes[-1], [0.649, 0.113, 0.140, 0.249], atol=1e-6)
    rows = window_boxes(np.arange(400, dtype=np.float32)[:, None].repeat(4, 1), 2.0, 25, 25.0)
    assert rows[:, 0].tolist() == list(range(50, 75))
    at_50fps = window_boxes(np.arange(400, dtype=np.float32)[:, None].repeat(4, 1), 2.0, 4, 50.0)
    assert at_50fps[:, 0].tolist() == [50, 50, 51, 51]  # the box on screen at each output time
    tail = window_boxes(np.arange(10, dtype=np.float32)[:, None].repeat(4, 1), 0.3, 5, 25.0)
    assert tail[:, 0].tolist() == [7, 8, 9, 9, 9]


def test_crop_follows_the_box_and_stays_inside_the_frame():
    frames = np.zeros((2, 100, 200, 3), np.uint8)
    frames[0, 20:40, 100:120] = 255  # a 20 px "face" at x 0.5, y 0.2 of a 200x100 frame
    frames[1, 60:80, 180:200] = 255  # at the right edge in the second frame
    boxes = np.array([[0.5, 0.2, 0.1, 0.2], [0.9, 0.6, 0.1, 0.2]], np.float32)
    out = crop_faces(frames, boxes, 20)
    assert out.shape == (2, 20, 20, 3) and (out == 255).all()
    wide = crop_faces(frames, boxes, 40, scale=2.0)  # 40 px around the centre: face in the middle
    assert (wide[0, 10:30, 10:30] == 255).all() and wide[0, :10].max() == 0
    with pytest.raises(MediaError, match="FRAME"):
        read_face_boxes(__file__)


# ---------------------------------------------------------------------------- real clip
def test_face_box_crop_of_the_full_frame_clip_is_the_distributed_face_crop(real_fixtures, tmp_path):
    face_spec = InputSpec(frame_size=224, resize_short_side=256, crop="face")
    from_boxes = lrs3(real_fixtures, tmp_path, "full_frame", face_spec).datasets["test"][0]
    distributed = lrs3(real_fixtures, tmp_path, "face_crop",
                       InputSpec(frame_size=224, resize_short_side=224, crop="face")).datasets["test"][0]
    centre = lrs3(real_fixtures, tmp_path, "full_frame", InputSpec(frame_size=224, resize_short_side=256)).datasets["test"][0]
    assert from_boxes["video_start_sec"] == distributed["video_start_sec"]
    assert from_boxes["video"].shape == distributed["video"].shape == (125, 224, 224, 3)
    face_corr = corr(from_boxes["video"].numpy(), distributed["video"].numpy())
    assert face_corr > 0.9, face_corr  # 0.96 when measured
    assert corr(centre["video"].numpy(), distributed["video"].numpy()) < 0.5

    mouth = lrs3(real_fixtures, tmp_path, "full_frame",
                 InputSpec(frame_size=96, resize_short_side=256, crop="mouth")).datasets["test"][0]
    face96 = lrs3(real_fixtures, tmp_path, "full_frame",
                  InputSpec(frame_size=96, resize_short_side=256, crop="face")).datasets["test"][0]
    assert tuple(mouth["video"].shape) == (125, 48, 96, 3)  # VocaLiST's lower half
    assert (mouth["video"] == face96["video"][:, 48:]).all()


# ---------------------------------------------------------------------------- Synchformer protocol
@pytest.mark.parametrize("n", [2, 25])
def test_repeated_eval_offsets_keep_the_official_row_and_are_fixed(real_fixtures, tmp_path, n):
    meta = real_fixtures / "metadata"
    csv_path = meta / "vggsound_test_fixed_offsets_size21_crop5.csv"
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / f"{VGG_KEY}.mp4").symlink_to(real_fixtures / "vggsound" / "h264_video_25fps_256side_16000hz_aac"
                                          / f"{VGG_KEY}.mp4")
    (tmp_path / "vggsound.csv").write_text("3qesirWAGt4,20,dog barking,test\n")

    def module(seed=1337):
        dm = VGGSoundDataModule(root=str(clips), meta_csv=str(tmp_path / "vggsound.csv"), input_spec=InputSpec(),
                                num_workers=0, fixed_offsets_csv={"test": str(csv_path)}, eval_plans_per_clip=n,
                                probe_durations=False, seed=seed)
        dm.setup("test")
        return dm.datasets["test"]

    ds = module()
    plans = [ds.plan_for(i) for i in range(len(ds))]
    assert len(ds) == n and all(ds.record_of(i).key == VGG_KEY for i in range(n))
    row = next(r for r in csv.DictReader(open(csv_path)) if r["path"] == VGG_KEY)
    assert (plans[0].offset_sec, plans[0].video_start_sec) == (float(row["offset_sec"]), float(row["vstart_sec"]))
    again, other_seed = module(), module(seed=7)
    assert plans == [again.plan_for(i) for i in range(n)]  # fixed across builds
    assert plans[1:] != [other_seed.plan_for(i) for i in range(1, n)]  # ... and drawn from the seed
    assert len({p.offset_sec for p in plans}) > 1
    assert all(0 <= p.video_start_sec and p.audio_start_sec + 5.0 <= 9.0 + 1e-9 for p in plans)
    item = ds[n - 1]
    assert item["offset_sec"] == plans[-1].offset_sec and item["index"] == n - 1

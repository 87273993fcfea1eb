"""The dataset modules on tiny layouts written into tmp dirs (LRS2, LRS3 subsets and multfps,
VGGSound-Sync, AudioSet, Acappella): which clips form which split, what a partial copy reports,
and that an item of each loads. One short clip is encoded per frame rate and copied around."""
import csv
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from avsync.data_modules import (
    AcappellaDataModule,
    AudioSetDataModule,
    LRS2DataModule,
    LRS3DataModule,
    VGGSoundSyncDataModule,
)
from avsync.data_modules.audioset import read_segments_csv
from avsync.data_modules.vggsound import SPARSE_CLASSES_CSV, read_class_list
from avsync.media import write_mp4
from support.input_specs import tiny_spec

SPEC = tiny_spec(duration_sec=2.0)
MOUTH = tiny_spec(duration_sec=0.2, crop="mouth", offset_classes=None, max_frame_shift=5)


def _clip(path: Path, fps: float, seconds: float = 4.0) -> Path:
    rng = np.random.default_rng(0)
    n = int(round(seconds * fps))
    frames = rng.integers(0, 255, (n, 32, 48, 3), dtype=np.uint8)
    audio = rng.uniform(-0.5, 0.5, int(round(seconds * 16000))).astype(np.float32)
    return write_mp4(path, frames, fps, audio, 16000, preset="ultrafast")


@pytest.fixture(scope="session")
def clip25(tmp_path_factory) -> Path:
    return _clip(tmp_path_factory.mktemp("clips") / "c25.mp4", 25.0)


@pytest.fixture(scope="session")
def clip60(tmp_path_factory) -> Path:
    return _clip(tmp_path_factory.mktemp("clips") / "c60.mp4", 60.0)


def place(src: Path, root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / rel)


def common(tmp_path, **kw):
    return dict(input_spec=SPEC, num_workers=0, batch_size=1, max_source_sec=None,
                probe_cache_dir=str(tmp_path / "cache"), report_dir=str(tmp_path / "report"), **kw)


def keys(dm, split):
    return [r.key for r in dm.list_records(split)]


# ---------------------------------------------------------------------------- LRS2
def test_lrs2_lists_subsets_missing_and_mouth_crop(clip25, tmp_path, caplog):
    root = tmp_path / "lrs2"
    place(clip25, root / "mvlrs_v1", "pretrain/111/00001.mp4", "main/222/00002.mp4", "main/333/00003.mp4")
    (root / "pretrain.txt").write_text("111/00001\n999/00009\n")
    (root / "train.txt").write_text("222/00002\n")
    (root / "val.txt").write_text("222/00002\n")
    (root / "test.txt").write_text("333/00003 NF\n444/00004 MV\n")
    dm = LRS2DataModule(root=str(root), **common(tmp_path))
    with caplog.at_level(logging.WARNING):
        assert keys(dm, "train") == ["111/00001"] and keys(dm, "test") == ["333/00003"]
        keys(dm, "test")
    assert dm.missing == {"train": 1, "test": 1}
    assert len([r for r in caplog.records if "444/00004" in r.getMessage()]) == 1  # reported once
    assert keys(LRS2DataModule(root=str(root / "mvlrs_v1"), train_list="train", **common(tmp_path)), "train") \
        == ["222/00002"]

    mouth = LRS2DataModule(root=str(root), **{**common(tmp_path), "input_spec": MOUTH})
    mouth.setup("test")
    item = mouth.datasets["test"][0]
    assert tuple(item["video"].shape) == (5, 16, 32, 3)  # the lower half of the 32 px face
    with pytest.raises(FileNotFoundError, match="mvlrs_v1"):
        LRS2DataModule(root=str(tmp_path), **common(tmp_path)).list_records("test")


# ---------------------------------------------------------------------------- LRS3
def test_lrs3_subset_splits(clip25, tmp_path):
    root = tmp_path / "lrs3" / "h264_uncropped_25fps_256side_16000hz_aac"
    place(clip25, root, "pretrain/aaaaaaaaaaa/00001.mp4", "trainval/bbbbbbbbbbb/00001.mp4",
          "test/ccccccccccc/00001.mp4")
    dm = LRS3DataModule(root=str(root.parent), subset_splits={"train": ["pretrain", "trainval"], "test": ["test"]},
                        **common(tmp_path))
    assert keys(dm, "train") == ["pretrain/aaaaaaaaaaa/00001", "trainval/bbbbbbbbbbb/00001"]
    assert keys(dm, "test") == ["test/ccccccccccc/00001"]
    dm.setup("fit")  # 4 s clips survive: subset splits have no 9 s filter
    assert len(dm.datasets["train"]) == 2
    with pytest.raises(ValueError, match="unknown LRS3 subset"):
        LRS3DataModule(root=str(root.parent), subset_splits={"test": ["val"]})


def test_lrs3_multfps_keeps_high_rates_as_a_separate_test_split(clip25, clip60, tmp_path):
    root = tmp_path / "lrs3m" / "h264_orig_strict_crop_origfps_aac"
    place(clip25, root, *[f"pretrain/{c * 11}/00001.mp4" for c in "abcdefghij"])
    place(clip60, root, "pretrain/kkkkkkkkkkk/00001.mp4", "pretrain/kkkkkkkkkkk/00002.mp4")
    kw = common(tmp_path, variant="multfps", min_duration_sec=None)
    normal = LRS3DataModule(root=str(root.parent), **kw)
    every = [k for s in ("train", "valid", "test") for k in keys(normal, s)]
    assert len(every) == 10 and not any("kkkkkkkkkkk" in k for k in every)

    high = LRS3DataModule(root=str(root.parent), high_fps_test=True, **kw)
    test = high.list_records("test")
    assert [r.key for r in test] == ["pretrain/kkkkkkkkkkk/00001", "pretrain/kkkkkkkkkkk/00002"]
    assert [r.extra["fps"] for r in test] == [pytest.approx(60.0)] * 2
    # train and valid are drawn from the normal-rate clips only, and share all of them
    assert sorted(keys(high, "train") + keys(high, "valid")) == sorted(every)
    with pytest.raises(ValueError, match="multfps"):
        LRS3DataModule(root=str(root.parent), high_fps_test=True)


# ---------------------------------------------------------------------------- VGGSound-Sync
def test_vggsound_sync_has_the_160_avst_classes(clip25, tmp_path):
    classes = read_class_list()
    assert len(classes) == 160 and classes[0] == "female singing" and classes[-1] == "snake rattling"
    assert set(classes) <= _all_vggsound_classes()
    clips = tmp_path / "vgg"
    place(clip25, clips, "aaaaaaaaaaa_0_10000.mp4", "bbbbbbbbbbb_0_10000.mp4")
    meta = tmp_path / "vggsound.csv"
    with open(meta, "w", newline="") as f:
        csv.writer(f).writerows([("aaaaaaaaaaa", 0, "female speech, woman speaking", "test"),
                                 ("bbbbbbbbbbb", 0, "air horn", "test")])
    dm = VGGSoundSyncDataModule(root=str(clips), meta_csv=str(meta), **common(tmp_path))
    assert dm.classes == sorted(classes)
    test = dm.list_records("test")
    assert [(r.key, r.label) for r in test] == [("aaaaaaaaaaa_0_10000", "female speech, woman speaking")]
    assert dm.classes[test[0].extra["class_index"]] == test[0].label


def _all_vggsound_classes() -> set[str]:
    """picked_sparse_classes.csv lists every VGGSound class (flagged sparse or not)."""
    with open(SPARSE_CLASSES_CSV, newline="") as f:
        return {row[0] for row in csv.reader(f, delimiter="\t")}


# ---------------------------------------------------------------------------- AudioSet
def test_audioset_segment_lists_holdout_and_missing(clip25, tmp_path):
    root = tmp_path / "audioset"
    ids = [f"v{i:010d}" for i in range(20)]
    place(clip25, root, *[f"unbalanced/{v}_30000_40000.mp4" for v in ids[:18]], f"eval/{ids[18]}_0_10000.mp4")
    header = "# Segments csv\n# num_ytids=3\n# YTID, start_seconds, end_seconds, positive_labels\n"
    (root / "unbalanced_train_segments.csv").write_text(
        header + "".join(f'{v}, 30.000, 40.000, "/m/09x0r,/m/05zppz"\n' for v in ids[:18]))
    (root / "eval_segments.csv").write_text(header + f'{ids[18]}, 0.000, 10.000, "/m/04rlf"\n'
                                            f'{ids[19]}, 0.000, 10.000, "/m/04rlf"\n')
    assert read_segments_csv(root / "eval_segments.csv")[f"{ids[18]}_0_10000"] == "/m/04rlf"
    dm = AudioSetDataModule(root=str(root), valid_fraction=0.1, **common(tmp_path))
    train, valid, test = (dm.list_records(s) for s in ("train", "valid", "test"))
    assert len(valid) == 1 and len(train) == 17 and {r.key for r in train}.isdisjoint({r.key for r in valid})
    assert [r.key for r in test] == [f"{ids[18]}_0_10000"] and dm.missing["test"] == 1
    assert train[0].extra["labels"] == "/m/09x0r,/m/05zppz"
    dm.setup("test")
    assert tuple(dm.datasets["test"][0]["audio"].shape) == (32000,)

    no_lists = AudioSetDataModule(root=str(root), segment_csvs={}, **common(tmp_path))
    drawn = {s: keys(no_lists, s) for s in ("train", "valid", "test")}
    assert sorted(sum(drawn.values(), [])) == sorted([f"{v}_30000_40000" for v in ids[:18]] + [f"{ids[18]}_0_10000"])
    assert (len(drawn["train"]), len(drawn["valid"]), len(drawn["test"])) == (17, 1, 1)


# ---------------------------------------------------------------------------- Acappella
def test_acappella_split_folders_and_languages(clip25, tmp_path):
    root = tmp_path / "acappella"
    place(clip25, root, "train/English/p1.mp4", "train/Hindi/p2.mp4", "val_seen/English/p3.mp4",
          "test_unseen/Spanish/p4.mp4")
    dm = AcappellaDataModule(root=str(root), **common(tmp_path))
    train = dm.list_records("train")
    assert [(r.key, r.extra["language"]) for r in train] == [("train/English/p1", "English"), ("train/Hindi/p2", "Hindi")]
    assert keys(dm, "test") == ["test_unseen/Spanish/p4"]
    listed = tmp_path / "test.txt"
    listed.write_text("test_unseen/Spanish/p4\ntest_unseen/Others/p9\n")
    part = AcappellaDataModule(root=str(root), split_files={"test": str(listed)}, **common(tmp_path))
    assert keys(part, "test") == ["test_unseen/Spanish/p4"] and part.missing["test"] == 1

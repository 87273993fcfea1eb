"""The real-dataset data modules (LRS3, VGGSound, VGGSound-Sparse) on the read-only real fixtures.

The clips stay in ../shared/fixtures/real (never copied); split files, vggsound.csv files and the
duration cache are written to tmp_path. Each test decodes at most one 5 s clip per variant.
"""
import csv
import logging
import random
from pathlib import Path

import pytest

from avsync.data_modules.lrs3 import LRS3DataModule, ProbeCache, read_split_file, seeded_split
from avsync.data_modules.vggsound import (
    PACKAGE_DATA,
    VGGSoundDataModule,
    VGGSoundRow,
    VGGSoundSparseDataModule,
    read_sparse_classes,
    read_sparse_clean,
    valid_holdout,
)
from avsync.offsets import get_grid
from support.input_specs import PAPER_SPEC

SPEC = PAPER_SPEC
LRS3_KEY = "pretrain/C8zY0oAdQrs/00018"
VGG_KEYS = ("3qesirWAGt4_20000_30000", "ZYc410CE4Rg_0_10000")


def official_rows(path: Path, key_column: str = "path") -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row[key_column], []).append(row)
    return rows


def first_batch(dm, split="test"):
    loader = {"test": dm.test_dataloader, "valid": dm.val_dataloader}[split]()
    return next(iter(loader))


def check_item(batch, key, row):
    grid = get_grid(21)
    assert batch["key"] == [key]
    assert batch["offset_sec"].item() == pytest.approx(float(row["offset_sec"]))
    assert batch["video_start_sec"].item() == pytest.approx(float(row["vstart_sec"]))
    assert batch["target"].item() == grid.class_of(float(row["offset_sec"]))
    assert tuple(batch["video"].shape) == (1, 125, 224, 224, 3)
    assert tuple(batch["audio"].shape) == (1, 80000)


# --------------------------------------------------------------------------------------------
# LRS3
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["full_frame", "face_crop"])
def test_lrs3_official_test_list_yields_the_clip_at_its_official_offset(real_fixtures, tmp_path, caplog, variant):
    """The official lrs3_test.txt (5965 clips, one of them on disk) as the test split."""
    split_file = real_fixtures / "metadata" / "lrs3_test.txt"
    offsets_csv = real_fixtures / "metadata" / "lrs3_test_fixed_offsets_size21_crop5.csv"
    listed = read_split_file(split_file)
    assert LRS3_KEY in listed and all(k.startswith("pretrain/") for k in listed)
    row = official_rows(offsets_csv)[LRS3_KEY]
    assert len(row) == 1

    dm = LRS3DataModule(root=str(real_fixtures / "lrs3"), variant=variant, split_files={"test": str(split_file)},
                        fixed_offsets_csv={"test": str(offsets_csv)}, input_spec=SPEC, batch_size=1,
                        num_workers=0, probe_cache_dir=str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="avsync.data_modules.lrs3"):
        dm.prepare_data()
        dm.setup("test")
        dm.list_records("test")  # listing again does not warn again
    assert dm.missing["test"] == len(listed) - 1
    assert dm.dropped["test"]["missing"] == len(listed) - 1
    warnings = [r for r in caplog.records if "not under" in r.getMessage()]
    assert len(warnings) == 1 and str(len(listed) - 1) in warnings[0].getMessage()
    assert [r.key for r in dm.datasets["test"].records] == [LRS3_KEY]
    assert dm.datasets["test"].records[0].path.parent.parent.parent.name == (
        "h264_uncropped_25fps_256side_16000hz_aac" if variant == "full_frame"
        else "h264_orig_strict_crop_25fps_224side_16000hz_aac")
    check_item(first_batch(dm), LRS3_KEY, row[0])


def test_lrs3_split_file_with_absent_clips(real_fixtures, tmp_path, caplog):
    """A hand-written split file: tags, comments, a bare <ytid>/<utt>, clips that are not on disk."""
    split_file = tmp_path / "test.txt"
    split_file.write_text("# my test split\npretrain/C8zY0oAdQrs/00018.mp4  NF\n"
                          "C8zY0oAdQrs/00001\npretrain/aaaaaaaaaaa/00002\n\n")
    assert read_split_file(split_file, "pretrain") == [LRS3_KEY, "pretrain/C8zY0oAdQrs/00001",
                                                       "pretrain/aaaaaaaaaaa/00002"]
    offsets_csv = real_fixtures / "metadata" / "lrs3_test_fixed_offsets_size21_crop5.csv"
    dm = LRS3DataModule(root=str(real_fixtures / "lrs3" / "h264_orig_strict_crop_25fps_224side_16000hz_aac"),
                        variant="face_crop", split_files={"test": str(split_file)},
                        fixed_offsets_csv={"test": str(offsets_csv)}, input_spec=SPEC, batch_size=1,
                        num_workers=0, probe_cache_dir=str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="avsync.data_modules.lrs3"):
        dm.setup("test")
        dm.setup("test")
    assert dm.missing["test"] == 2
    assert len([r for r in caplog.records if "not under" in r.getMessage()]) == 1
    check_item(first_batch(dm), LRS3_KEY, official_rows(offsets_csv)[LRS3_KEY][0])


def test_lrs3_drawn_split_probe_cache_and_min_duration(real_fixtures, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    kw = dict(root=str(real_fixtures / "lrs3"), input_spec=SPEC, num_workers=0, probe_cache_dir=str(cache))
    dm = LRS3DataModule(**kw)
    # one video on disk: int(0.1 * 1) = 0 ids for test and valid, the video goes to train
    train = dm.list_records("train")
    assert [r.key for r in train] == [LRS3_KEY]
    assert train[0].duration_sec == pytest.approx(15.72, abs=0.05)
    assert train[0].extra == {"subset": "pretrain", "ytid": "C8zY0oAdQrs", "face_boxes": str(
        real_fixtures / "lrs3" / "h264_orig_strict_crop_25fps_224side_16000hz_aac" / (LRS3_KEY + ".txt"))}
    assert dm.list_records("valid") == [] and dm.list_records("test") == []
    assert len(list(cache.glob("*.json"))) == 1

    # a second module reads the durations from the cache: nothing is probed again
    def no_probe(path):
        raise AssertionError(f"probed {path} again")
    monkeypatch.setattr("avsync.data_modules.listing.probe", no_probe)
    again = LRS3DataModule(**kw).list_records("train")
    assert again[0].duration_sec == train[0].duration_sec
    assert ProbeCache(dm.data_dir, cache).durations([LRS3_KEY + ".mp4", "pretrain/x/1.mp4"]) == {
        LRS3_KEY + ".mp4": train[0].duration_sec}

    # a video named by a split file never lands in a drawn split
    split_file = tmp_path / "test.txt"
    split_file.write_text(LRS3_KEY + "\n")
    assert LRS3DataModule(split_files={"test": str(split_file)}, **kw).list_records("train") == []

    # drawn splits keep only clips longer than min_duration_sec (9 s in the papers)
    short = LRS3DataModule(min_duration_sec=20.0, **kw)
    with pytest.raises(RuntimeError, match="no usable training clips"):
        short.setup("fit")
    assert short.dropped["train"]["shorter_than_min_duration"] == 1


def test_lrs3_bad_root_and_variant(real_fixtures, tmp_path):
    with pytest.raises(ValueError, match="variant"):
        LRS3DataModule(root=str(tmp_path), variant="mouth")
    with pytest.raises(FileNotFoundError, match="is the variant='face_crop' folder"):
        LRS3DataModule(root=str(real_fixtures / "lrs3" / "h264_orig_strict_crop_25fps_224side_16000hz_aac"),
                       variant="full_frame").data_dir
    (tmp_path / "h264_orig_strict_crop_25fps_224side_16000hz_aac").mkdir()
    with pytest.raises(FileNotFoundError, match=r"present: variant=\['face_crop'\]"):
        LRS3DataModule(root=str(tmp_path), variant="full_frame").data_dir


def test_seeded_split_is_the_official_8_1_1_cut():
    ids = [f"vid{i:04d}" for i in range(103)]
    parts = seeded_split(reversed(ids), 1337, {"train": 8, "valid": 1, "test": 1})
    # Synchformer's dataset/lrs.py make_split_files, verbatim in effect
    official = sorted(ids)
    random.Random(1337).shuffle(official)
    hold = int(len(official) * 0.1)
    assert parts == {"test": official[:hold], "valid": official[hold:2 * hold], "train": official[2 * hold:]}
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [83, 10, 10]
    assert seeded_split(ids, 1, {"train": 8, "valid": 1, "test": 1}) != parts
    # test given by a file: the rest is split train:valid = 8:1
    two = seeded_split(ids, 1337, {"train": 8, "valid": 1, "test": 1}, ("train", "valid"))
    assert len(two["valid"]) == int(103 / 9) and sorted(two["train"] + two["valid"]) == ids


# --------------------------------------------------------------------------------------------
# VGGSound
# --------------------------------------------------------------------------------------------
def write_meta(path: Path, rows) -> Path:
    with open(path, "w", newline="") as f:  # the official file has no header
        csv.writer(f, quoting=csv.QUOTE_MINIMAL).writerows(rows)
    return path


def test_vggsound_records_labels_and_official_offsets(real_fixtures, tmp_path, caplog):
    meta = write_meta(tmp_path / "vggsound.csv", [
        ("3qesirWAGt4", 20, "dog barking", "test"),
        ("ZYc410CE4Rg", 0, "playing tennis", "train"),
        ("abcdefghijk", 30, "male speech, man speaking", "test"),  # not on disk
    ])
    offsets_csv = real_fixtures / "metadata" / "vggsound_test_fixed_offsets_size21_crop5.csv"
    table = official_rows(offsets_csv)
    assert VGG_KEYS[0] in table and VGG_KEYS[1] not in table  # what the official file holds

    dm = VGGSoundDataModule(root=str(real_fixtures / "vggsound"), meta_csv=str(meta),
                            fixed_offsets_csv={"test": str(offsets_csv)}, input_spec=SPEC, batch_size=1,
                            num_workers=0, probe_cache_dir=str(tmp_path / "cache"))
    assert dm.data_dir.name == "h264_video_25fps_256side_16000hz_aac"
    assert dm.classes == ["dog barking", "male speech, man speaking", "playing tennis"]
    with caplog.at_level(logging.WARNING, logger="avsync.data_modules.lrs3"):
        test = dm.list_records("test")
        dm.setup("test")
    assert [(r.key, r.label, r.extra["class_index"]) for r in test] == [(VGG_KEYS[0], "dog barking", 0)]
    assert test[0].duration_sec == pytest.approx(10.0, abs=0.1)
    assert dm.missing["test"] == 1
    assert len([r for r in caplog.records if "abcdefghijk_30000_40000" in r.getMessage()]) == 1
    train = dm.list_records("train")
    assert [(r.key, r.label, r.extra["class_index"]) for r in train] == [(VGG_KEYS[1], "playing tennis", 2)]
    assert dm.list_records("valid") == []  # no test clip of "playing tennis": nothing held out
    check_item(first_batch(dm), VGG_KEYS[0], table[VGG_KEYS[0]][0])


def test_vggsound_valid_holdout_follows_test_class_counts():
    rows = [VGGSoundRow(f"a{i:010d}", 0, "A", "train") for i in range(6)]
    rows += [VGGSoundRow(f"b{i:010d}", 0, "B", "train") for i in range(3)]
    rows += [VGGSoundRow(f"t{i:010d}", 0, "A", "test") for i in range(2)]
    held = valid_holdout(rows, 1337)
    official = sorted(r.ytid for r in rows if r.label == "A" and r.split == "train")
    random.Random(1337).shuffle(official)
    assert held == set(official[:2])
    assert valid_holdout(list(reversed(rows)), 1337) == held


def test_shipped_sparse_metadata(real_fixtures):
    for name in ("picked_sparse_classes.csv", "vggsound_sparse_clean.csv", "vggsound_sparse_clean_fixed_offsets.csv"):
        assert (PACKAGE_DATA / name).read_bytes() == (real_fixtures / "metadata" / name).read_bytes()
    classes = read_sparse_classes()
    assert len(classes) == 12 and "dog barking" in classes and "air horn" not in classes
    clean = read_sparse_clean()
    assert len(clean) == 457 and "3qesirWAGt4_20000_30000" in clean


def test_vggsound_sparse_keeps_the_12_classes_and_clean_test(real_fixtures, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    source = real_fixtures / "vggsound" / "h264_video_25fps_256side_16000hz_aac" / f"{VGG_KEYS[0]}.mp4"
    rows = [
        ("aaaaaaaaaaa", 0, "dog barking", "train"),
        ("eeeeeeeeeee", 0, "dog barking", "train"),
        ("bbbbbbbbbbb", 0, "air horn", "train"),
        ("3qesirWAGt4", 20, "dog barking", "test"),
        ("ccccccccccc", 0, "chopping wood", "test"),
        ("ddddddddddd", 0, "air conditioning noise", "test"),
        ("z7yGkGnLjg8", 134, "playing tennis", "test"),
    ]
    for ytid, start, _, _ in rows:  # links to one real clip under the names of the csv
        (clips / f"{ytid}_{start * 1000}_{start * 1000 + 10000}.mp4").symlink_to(source)
    meta = write_meta(tmp_path / "vggsound.csv", rows)
    kw = dict(root=str(clips), meta_csv=str(meta), input_spec=SPEC, num_workers=0, probe_durations=False)

    dm = VGGSoundSparseDataModule(**kw)
    assert dm.classes == read_sparse_classes() and len(dm.classes) == 12
    train, valid, test = (dm.list_records(s) for s in ("train", "valid", "test"))
    # "dog barking" has one test video, so one of its two train videos is held out for valid
    assert {r.key for r in train + valid} == {"aaaaaaaaaaa_0_10000", "eeeeeeeeeee_0_10000"}
    assert len(train) == len(valid) == 1
    assert [r.key for r in test] == ["3qesirWAGt4_20000_30000", "ccccccccccc_0_10000", "z7yGkGnLjg8_134000_144000"]
    assert all(r.label in dm.classes and dm.classes[r.extra["class_index"]] == r.label for r in train + test)
    assert test[0].duration_sec == 10.0  # nominal, from the name

    clean = VGGSoundSparseDataModule(clean=True, **kw)
    clean.setup("test")
    assert [r.key for r in clean.datasets["test"].records] == ["3qesirWAGt4_20000_30000", "z7yGkGnLjg8_134000_144000"]
    # the annotated offsets: only the is_sync == 1 row of each clip
    fixed = clean.fixed["test"]
    assert fixed.plans_for("z7yGkGnLjg8_134000_144000") == [fixed["z7yGkGnLjg8_134000_144000"]]
    assert (fixed["z7yGkGnLjg8_134000_144000"].offset_sec, fixed["z7yGkGnLjg8_134000_144000"].video_start_sec) == (-0.2, 0.4)
    assert (fixed["3qesirWAGt4_20000_30000"].offset_sec, fixed["3qesirWAGt4_20000_30000"].video_start_sec) == (1.4, 2.8)
    assert clean.datasets["test"][0]["target"].item() == get_grid(21).class_of(1.4)

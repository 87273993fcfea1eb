"""Bad media never stops a run: a folder of every awkward case (written with PyAV) goes through a
data module; unusable clips are dropped at setup or replaced at load time, deterministically,
and every one is listed once in the report file and the log."""
import logging
from pathlib import Path

import pytest
import torch

from avsync.data_modules import AcappellaDataModule, BadMediaReport

from support.media_cases import write_all
from support.input_specs import tiny_spec

SPEC = tiny_spec(hflip=False)
READABLE = {"good", "rate_8k", "rate_44k_stereo", "rate_48k_stereo", "fps_30", "vfr"}
AT_SETUP = {"truncated", "corrupt", "zero_length", "single_frame", "short"}  # unreadable header / too short
AT_LOAD = {"no_audio", "no_video", "silent", "constant", "still"}


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    write_all(root / "clips")
    return root


def module(media_dir, tmp_path, **kw):
    kw = dict(root=str(media_dir), split_dirs={s: "clips" for s in ("train", "valid", "test")}, input_spec=SPEC,
              batch_size=3, num_workers=0, probe_cache_dir=str(tmp_path / "cache"),
              report_dir=str(tmp_path / "report"), **{"reject_silent": True, "reject_still": True, **kw})
    return AcappellaDataModule(**kw)


def keys_of(batches):
    return [Path(k).name for b in batches for k in b["key"]]


def test_every_bad_case_is_skipped_reported_once_and_batches_stay_full(media_dir, tmp_path, caplog):
    dm = module(media_dir, tmp_path)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
        assert {Path(r.key).name for r in dm.datasets["train"].records} == READABLE | AT_LOAD
        torch.manual_seed(0)
        epochs = [list(dm.train_dataloader()) for _ in range(2)]
        valid = [list(dm.val_dataloader()) for _ in range(2)]
    for batches in epochs:  # drop_last: full batches of 3 only
        assert all(tuple(b["video"].shape) == (3, 25, 32, 32, 3) for b in batches)
    for batches in epochs + valid:
        assert set(keys_of(batches)) <= READABLE
    assert keys_of(valid[0]) == keys_of(valid[1])  # the same replacements on every pass
    assert len(keys_of(valid[0])) == len(READABLE | AT_LOAD)

    report = BadMediaReport(tmp_path / "report" / "bad_media.tsv")
    entries = {Path(e.key).name: e.reason for e in report.read()}
    assert set(entries) == AT_SETUP | AT_LOAD
    assert entries["no_audio"] == "no audio stream" and entries["no_video"] == "no video stream"
    assert entries["silent"].startswith("silent audio") and entries["constant"].startswith("silent audio") and entries["still"].startswith("still video")
    assert entries["short"].startswith("shorter than the crop") and entries["zero_length"] == "empty file"
    warned = [r.getMessage() for r in caplog.records if "bad media skipped" in r.getMessage()]
    assert len(warned) == len(AT_SETUP | AT_LOAD)  # one line per file, however often it is met


def test_training_replacements_are_reproducible(media_dir, tmp_path):
    def epoch_keys():
        dm = module(media_dir, tmp_path)
        dm.setup("fit")
        torch.manual_seed(3)
        return keys_of(dm.train_dataloader()), [b["target"].tolist() for b in dm.train_dataloader()]

    assert epoch_keys() == epoch_keys()


def test_odd_but_usable_media_loads_without_rejection_and_filter_lists_drop_clips(media_dir, tmp_path):
    listed = tmp_path / "filtered_examples_mine.txt"
    listed.write_text(f"# the authors' format: one clip per line\n{media_dir / 'clips' / 'vfr.mp4'}\nclips/fps_30\n")
    dm = module(media_dir, tmp_path, reject_silent=False, reject_still=False, skip_list=[str(listed)])
    dm.setup("test")
    test = dm.datasets["test"]
    names = [Path(r.key).name for r in test.records]
    assert "vfr" not in names and "fps_30" not in names and dm.dropped["test"]["skip_list"] == 2
    for name in ("silent", "still", "rate_48k_stereo"):
        item = test[names.index(name)]
        assert Path(item["key"]).name == name and tuple(item["audio"].shape) == (16000,)

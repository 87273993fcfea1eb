"""LRS3-multfps delivered per rate bucket (DiVAS Table 2 at full scale), on a fake LRS3-multfps root of
real mp4 files written with PyAV at 15, 23.976, 24, 25, 29.97, 30, 59.94 and 60 fps: which clips land
in which bucket, frames per second of input at each rate, rate-tagged batches, the held-out 60 fps
test split, and a corrupt file skipped and reported once."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from avsync.data_modules.lrs3_multirate import MultiRateLRS3DataModule, nearest_rate
from avsync.media import read_frames, write_mp4
from support.input_specs import tiny_spec
from avsync.reproduce import config_args

SECONDS = 1.6
# 1 s windows: 24 / 25 / 30 / 60 frames; score-search targets (integer frame shifts at the bucket's rate)
SPEC = tiny_spec(offset_classes=None, max_frame_shift=3, hflip=False)
FOLDER = "h264_orig_strict_crop_origfps_aac"
LAYOUT = {  # clip -> native rate; subsets: pretrain = train (and the held-out > 30 fps), trainval, test
    "pretrain/aaaaaaaaaaa/00001": 24.0, "pretrain/aaaaaaaaaaa/00002": 24000 / 1001,
    "pretrain/bbbbbbbbbbb/00001": 25.0,
    "pretrain/ccccccccccc/00001": 30.0, "pretrain/ccccccccccc/00002": 30000 / 1001,
    "pretrain/ddddddddddd/00001": 60.0, "pretrain/ddddddddddd/00002": 60000 / 1001,
    "pretrain/eeeeeeeeeee/00001": 15.0,  # a rate no bucket takes
    "trainval/fffffffffff/00001": 24.0, "trainval/fffffffffff/00002": 25.0, "trainval/fffffffffff/00003": 29.97,
    "test/ggggggggggg/00001": 24.0, "test/ggggggggggg/00002": 25.0, "test/ggggggggggg/00003": 29.97,
}
CORRUPT = "pretrain/zzzzzzzzzzz/00001"
SUBSETS = {"train": ["pretrain"], "valid": ["trainval"], "test": ["test"]}


def _write(path: Path, fps: float) -> Path:
    """A flat-grey clip whose frame i has level 20 + 2 i, so decoded frames tell which source frame they are."""
    n = int(round(SECONDS * fps))
    frames = np.broadcast_to((20 + 2 * np.arange(n, dtype=np.uint8))[:, None, None, None], (n, 32, 48, 3))
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, int(round(SECONDS * 16000))).astype(np.float32)
    return write_mp4(path, np.ascontiguousarray(frames), fps, audio, 16000, preset="ultrafast")


@pytest.fixture(scope="module")
def lrs3_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lrs3")
    sources = {}
    for rate in sorted(set(LAYOUT.values())):
        sources[rate] = _write(root / f"source_{rate:.3f}.mp4", rate)
    for key, rate in LAYOUT.items():
        (root / FOLDER / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[rate], root / FOLDER / f"{key}.mp4")
    (root / FOLDER / CORRUPT).parent.mkdir(parents=True)
    (root / FOLDER / f"{CORRUPT}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    return root


def module(root, tmp_path, **kw):
    return MultiRateLRS3DataModule(root=str(root), input_spec=SPEC, subset_splits=SUBSETS, min_duration_sec=None,
                                   max_source_sec=None, batch_size=1, num_workers=0,
                                   probe_cache_dir=str(tmp_path / "probe"), report_dir=str(tmp_path / "report"), **kw)


def keys(dm, rate, split):
    dataset = dm.children_by_rate[rate].datasets[split]
    return sorted(r.key for r in dataset.records)


def test_nearest_rate_takes_ntsc_rates_into_their_nominal_bucket():
    rates = (24.0, 25.0, 30.0, 60.0)
    assert [nearest_rate(f, rates, 0.01) for f in (23.976, 24.0, 25.0, 29.97, 30.0, 59.94, 60.0)] == \
        [24.0, 24.0, 25.0, 30.0, 30.0, 60.0, 60.0]
    assert nearest_rate(15.0, rates, 0.01) is None and nearest_rate(50.0, rates, 0.01) is None


def test_training_buckets_deliver_each_rate_at_its_own_rate(lrs3_root, tmp_path):
    dm = module(lrs3_root, tmp_path)
    dm.setup("fit")
    # 23.976 fps joins 24, 29.97 joins 30; 59.94 / 60 fps are never trained or validated on
    assert keys(dm, 24.0, "train") == ["pretrain/aaaaaaaaaaa/00001", "pretrain/aaaaaaaaaaa/00002"]
    assert keys(dm, 25.0, "train") == ["pretrain/bbbbbbbbbbb/00001"]
    assert keys(dm, 30.0, "train") == ["pretrain/ccccccccccc/00001", "pretrain/ccccccccccc/00002"]
    assert dm.clips_per_rate("valid") == {"24": 1, "25": 1, "30": 1}
    assert 60.0 not in dm.children_by_rate
    assert dm.dropped["24"]["train"]["rate_outside_buckets"] == 1  # the 15 fps clip

    batch = next(iter(dm.train_dataloader()))
    parts = batch[0] if isinstance(batch, tuple) else batch
    assert set(parts) == {"24", "25", "30"}  # one batch per rate per training step
    for name, part in parts.items():
        rate = float(name)
        assert part["fps"].tolist() == [rate]
        assert part["video"].shape == (1, int(rate), 32, 32, 3)  # 1 s of frames at the bucket's rate
        assert part["audio"].shape == (1, 16000) and abs(int(part["target"])) <= 3

    val = dm.val_dataloader()
    assert [next(iter(loader))["fps"].tolist() for loader in val] == [[24.0], [25.0], [30.0]]


def test_an_ntsc_clip_read_at_its_nominal_rate_gives_its_own_consecutive_frames(lrs3_root, tmp_path):
    dm = module(lrs3_root, tmp_path)
    dm.setup("fit")
    dataset = dm.children_by_rate[30.0].datasets["train"]
    index = [r.key for r in dataset.records].index("pretrain/ccccccccccc/00002")  # 29.97 fps
    assert dataset.records[index].extra["fps"] == pytest.approx(30000 / 1001, rel=1e-3)
    item = dataset._load(index, dataset.records[index], dataset.sampler.sample(SECONDS, np.random.default_rng(1)), None)
    native_fps = 30000 / 1001  # the same window read at the clip's exact rate: frame k is source frame k
    native = read_frames(dataset.records[index].path, item["video_start_sec"], 30 / native_fps, native_fps, size=32)
    nominal = item["video"].float().mean(dim=(1, 2, 3)).numpy()
    native = native.mean(axis=(1, 2, 3))
    assert len(nominal) == len(native) == 30
    # read at 30 fps the clip lags its 29.97 fps frames by 0.1 %: the same frames in order, at most
    # one of them shown twice (where the lag crosses a frame boundary), none skipped
    assert any(np.array_equal(nominal, np.concatenate([native[:p], native[p - 1 : -1]])) for p in range(1, 31))


def test_sixty_fps_is_the_held_out_test_split(lrs3_root, tmp_path):
    dm = module(lrs3_root, tmp_path, test_rates=[60])
    assert dm.children_by_rate[60.0].served_splits == {"test"}
    dm.setup("test")
    assert keys(dm, 60.0, "test") == ["pretrain/ddddddddddd/00001", "pretrain/ddddddddddd/00002"]
    (loader,) = dm.test_dataloader()
    batch = next(iter(loader))
    assert batch["fps"].tolist() == [60.0] and batch["video"].shape[1] == 60
    assert dm.children_by_rate[24.0].datasets.get("test") is None  # a training rate is not tested here
    # the seen-rate test split is LRS3's test subset, bucketed like training
    seen = module(lrs3_root, tmp_path)
    seen.setup("test")
    assert seen.clips_per_rate("test") == {"24": 1, "25": 1, "30": 1}


def test_a_corrupt_clip_is_skipped_and_reported_once(lrs3_root, tmp_path):
    dm = module(lrs3_root, tmp_path)
    dm.setup("fit")
    every = [k for rate in (24.0, 25.0, 30.0) for split in ("train", "valid") for k in keys(dm, rate, split)]
    assert CORRUPT not in every
    bad = dm.report.read()
    assert [(e.key, e.stage, e.count) for e in bad] == [(CORRUPT, "setup:train", 1)]
    lines = (tmp_path / "report" / "bad_media.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines[1:]] == [CORRUPT]  # one line, not one per bucket
    assert dm.dropped["24"]["train"]["unreadable"] == 1 and dm.dropped["25"]["train"]["unreadable"] == 0


def test_a_training_rate_without_clips_is_an_error_that_names_it(lrs3_root, tmp_path):
    only_24 = tmp_path / "train.txt"
    only_24.write_text("pretrain/aaaaaaaaaaa/00001\n")
    dm = module(lrs3_root, tmp_path, split_files={"train": str(only_24)})
    with pytest.raises(RuntimeError, match="25 fps bucket: .*no usable training clips"):
        dm.setup("fit")

def test_bad_rates_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="separate test split"):
        MultiRateLRS3DataModule(train_rates=[24, 60])
    with pytest.raises(ValueError, match="overlap"):
        MultiRateLRS3DataModule(train_rates=[24, 24.1])
    with pytest.raises(ValueError, match="rate_tolerance"):
        MultiRateLRS3DataModule(rate_tolerance=0.05)


@pytest.mark.slow
def test_full_table2_configs_train_on_three_rates_and_test_at_unseen_60_fps(repo_root_cwd, tmp_path):
    """The full-scale DiVAS configs, unchanged but for what a CPU and a 14-clip root force: the paper's
    4.8M face model takes one step on 24/25/30 fps batches together, then its checkpoint is tested on
    the held-out 60 fps clips, decoded at 60 fps (2 s = 120 frames)."""
    from avsync.cli import cli_main

    root = tmp_path / "lrs3"
    sources = {rate: _write_long(tmp_path / f"src_{rate:.2f}.mp4", rate) for rate in (24000 / 1001, 25.0, 29.97, 60.0)}
    for pattern, rate in {"pretrain/aaaaaaaaaaa": 24000 / 1001, "pretrain/bbbbbbbbbbb": 25.0, "pretrain/ccccccccccc": 29.97,
                          "pretrain/ddddddddddd": 60.0, "trainval/eeeeeeeeeee": 25.0, "test/fffffffffff": 29.97}.items():
        for utt in ("00001", "00002"):
            (root / FOLDER / pattern).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sources[rate], root / FOLDER / pattern / f"{utt}.mp4")
    divas = Path("reproductions/divas")
    configs = config_args(["../trainer.yaml#divas_full", "configs/model.yaml#full_model",
                           "configs/data.yaml#full_lrs3_multfps"], divas)
    common = ["--data.init_args.root", str(root), "--data.init_args.subset_splits", str(SUBSETS),
              "--data.init_args.min_duration_sec", "null", "--data.init_args.batch_size", "2",
              "--data.init_args.num_workers", "0", "--data.init_args.pin_memory", "false",
              "--data.init_args.report_dir", str(tmp_path), "--data.init_args.probe_cache_dir", str(tmp_path / "probe"),
              "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.enable_progress_bar", "false",
              "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false"]
    cli = cli_main(["fit", *configs, *common, "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1"])
    assert cli.trainer.global_step == 1 and sum(p.numel() for p in cli.model.net.parameters()) == 4_838_568
    assert cli.datamodule.clips_per_rate("train") == {"24": 2, "25": 2, "30": 2}

    cli60 = cli_main(["test", *configs, *config_args(["configs/data.yaml#full_lrs3_multfps_60"], divas), *common,
                      "--ckpt_path", str(next(tmp_path.rglob("last.ckpt")))])
    (loader,) = cli60.datamodule.test_dataloader()
    batch = next(iter(loader))
    # Table 2 tests whole clips (eval_whole_clips): a list of each clip's frames, all at 60 fps
    assert len(batch["video"]) == 2 and all(v.shape[0] >= 120 for v in batch["video"])
    assert batch["fps"].tolist() == [60.0, 60.0]
    assert cli60.datamodule.clips_per_rate("test") == {"60": 2}


def _write_long(path: Path, fps: float) -> Path:
    """3 s of changing frames: room for 2 s windows shifted by ±15 frames at 24 fps."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (int(round(3.0 * fps)), 32, 48, 3), dtype=np.uint8)
    return write_mp4(path, frames, fps, rng.uniform(-0.5, 0.5, 48000).astype(np.float32), 16000, preset="ultrafast")

"""The shared data layer: what an item holds, where its windows come from, the offset sign, the
fixed evaluation plans, bad media, and the toy data module. One tiny toy set per session."""
import csv
import logging
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avsync.data_modules import (
    AVClipDataset,
    AVSyncDataModule,
    BadMediaReport,
    ClipRecord,
    ToyAVDataModule,
)
from avsync.inputs import InputSpec
from avsync.media import read_clip
from avsync.offsets import CropPlan, FixedOffsets, RandomOffsetSampler, get_grid, key_for
from avsync.toy.generate import read_index
from support.input_specs import PAPER_SPEC

SPEC = replace(PAPER_SPEC, frame_size=48, resize_short_side=64)
SPLITS = {"train": 6, "valid": 3, "test": 0}
TOY = dict(num_train=6, num_valid=3, num_test=0)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
LRS3_CLIP = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
LRS3_CSV = "metadata/lrs3_test_fixed_offsets_size21_crop5.csv"


@pytest.fixture(scope="session")
def dense_root(toy_set) -> Path:
    return toy_set("dense", SPLITS, seed=0, duration_sec=10.0, size=64)


@pytest.fixture(scope="session")
def toy_dir(dense_root) -> Path:
    return next(dense_root.glob("dense_*"))


def records(toy_dir, split):
    return [ClipRecord(key_for(r["path"], root=toy_dir), r["path"], r["duration_sec"], split)
            for r in read_index(toy_dir) if r["split"] == split]


def sampler(spec=SPEC):
    return RandomOffsetSampler(get_grid(21), spec.duration_sec, 9.0, 0.05, start_step_sec=1 / spec.fps)


def eval_set(recs, plans, spec=SPEC, **kw):
    fixed = FixedOffsets({r.key: [p] for r, p in zip(recs, plans)})
    return AVClipDataset(recs, spec, False, sampler(spec), fixed, **kw)


def plan(vstart, offset, duration=5.0):
    return CropPlan(video_start_sec=vstart, offset_sec=offset, duration_sec=duration)


def toy_module(dense_root, **kw):
    kw = {"root": str(dense_root), "batch_size": 2, "num_workers": 0, "input_spec": SPEC,
          "report_dir": str(dense_root / "reports"), **TOY, **kw}
    return ToyAVDataModule(**kw)


def direct(path, item, size=64):
    """read_clip for the item's own windows, uncropped."""
    return read_clip(path, item["video_start_sec"], item["audio_start_sec"], SPEC.duration_sec,
                     SPEC.fps, SPEC.sample_rate, size=size)


def assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if torch.is_tensor(x[k]):
                assert torch.equal(x[k], y[k]), k
            else:
                assert x[k] == y[k], k


# ---------------------------------------------------------------------------- items
def test_eval_item_shapes_and_windows_match_the_plan(toy_dir):
    recs = records(toy_dir, "valid")
    ds = eval_set(recs, [plan(1.2, 0.4), plan(2.04, -1.6), plan(0.0, 0.0)])
    assert len(ds) == 3
    for i, (offset, cls) in enumerate([(0.4, 12), (-1.6, 2), (0.0, 10)]):
        item = ds[i]
        assert item["video"].shape == (125, 48, 48, 3) and item["video"].dtype == torch.uint8
        assert item["audio"].shape == (80000,) and item["audio"].dtype == torch.float32
        assert item["target"].dtype == torch.int64 and item["target"].item() == cls
        assert item["offset_sec"] == offset and item["key"] == recs[i].key and item["index"] == i
        assert item["audio_start_sec"] == pytest.approx(item["video_start_sec"] + offset, abs=1e-9)
        ref = direct(recs[i].path, item)
        np.testing.assert_array_equal(item["video"].numpy(), ref["video"][:, 8:56, 8:56])  # centre crop
        np.testing.assert_array_equal(item["audio"].numpy(), ref["audio"])
    assert ds[0]["video_start_sec"] == 1.2 and ds[1]["audio_start_sec"] == pytest.approx(0.44)


def test_train_items_are_random_crops_and_flips_of_the_planned_windows(toy_dir):
    recs = records(toy_dir, "train")
    ds = AVClipDataset(recs, SPEC, True, sampler())
    torch.manual_seed(0)
    flips = []
    for i in range(len(ds)):
        item = ds[i]
        ref = direct(recs[i].path, item)
        np.testing.assert_array_equal(item["audio"].numpy(), ref["audio"])
        frame = item["video"][0].numpy()
        found = [(y, x, f) for y in range(17) for x in range(17) for f in (False, True)
                 if np.array_equal(frame, (lambda c: c[:, ::-1] if f else c)(ref["video"][0, y:y + 48, x:x + 48]))]
        assert found, f"item {i} is no 48 px crop of its planned window"
        y, x, f = found[0]
        crop = ref["video"][:, y:y + 48, x:x + 48]
        np.testing.assert_array_equal(item["video"].numpy(), crop[:, :, ::-1] if f else crop)
        flips.append(f)
    assert True in flips and False in flips


def test_training_plans_stay_inside_the_first_9_seconds(toy_dir):
    recs = records(toy_dir, "train")
    short = ClipRecord("short", recs[0].path, 6.3, "train")  # only offsets within ±1.3 s fit
    ds = AVClipDataset(recs[:1] + [short], SPEC, True, sampler())
    rng = np.random.default_rng(0)
    grid = get_grid(21).values
    for index, usable in ((0, 9.0), (1, 6.3)):
        seen = set()
        for _ in range(1500):
            p = ds.plan_for(index, rng)
            for start in (p.video_start_sec, p.audio_start_sec):
                assert -1e-9 <= start and start + 5.0 <= usable + 1e-9
            assert p.offset_sec in grid and abs(p.audio_jitter_sec) <= 0.05
            assert abs(p.video_start_sec * 25 - round(p.video_start_sec * 25)) < 1e-6  # frame grid
            seen.add(p.offset_sec)
        assert seen == ({o for o in grid} if usable == 9.0 else {o for o in grid if abs(o) <= 1.3 + 1e-9})
    # real fetches: inside too, reproducible under one torch seed, different on the next fetch
    torch.manual_seed(3)
    first = [(ds[0]["offset_sec"], ds[0]["video_start_sec"]) for _ in range(3)]
    torch.manual_seed(3)
    again = [(ds[0]["offset_sec"], ds[0]["video_start_sec"]) for _ in range(3)]
    assert first == again and len(set(first)) > 1


def test_valid_loader_is_fixed_across_passes_and_workers(dense_root):
    dm = toy_module(dense_root)
    dm.prepare_data()
    dm.setup("validate")
    loader = dm.val_dataloader()
    one, two = list(loader), list(loader)
    assert_batches_equal(one, two)
    assert [k for b in one for k in b["key"]] == [f"valid/valid_{i:05d}" for i in range(3)]
    dm2 = toy_module(dense_root, num_workers=2, persistent_workers=False)
    dm2.setup("validate")
    assert_batches_equal(one, list(dm2.val_dataloader()))
    # the fixed plans depend on the seed only: another seed moves them
    dm3 = toy_module(dense_root, seed=7)
    dm3.setup("validate")
    p1 = [dm.fixed["valid"].plans_for(k, 1)[0] for k in dm.fixed["valid"]]
    p3 = [dm3.fixed["valid"].plans_for(k, 1)[0] for k in dm3.fixed["valid"]]
    assert p1 != p3


# ---------------------------------------------------------------------------- sign (docs/conventions.md)
def mouth_darkness(video):
    v = video.numpy().astype(np.float32) / 255 @ LUMA
    H, W = v.shape[1:3]
    return (v[:, int(0.45 * H):, int(0.2 * W):int(0.8 * W)] < 0.2).sum((1, 2)).astype(float)


def audio_rms_at_frames(audio, fps=25, sr=16000, window=0.04):
    a = np.pad(audio.numpy(), (int(window * sr / 2),) * 2)
    starts = (np.arange(int(len(audio) / sr * fps)) * sr / fps).astype(int)
    return np.sqrt((a[starts[:, None] + np.arange(int(window * sr))] ** 2).mean(1))


def lag_of_mouth_behind_audio(item, max_lag=20):
    """k maximising corr(audio_rms[t], mouth[t + k]): the audio event comes k frames earlier."""
    e, d = audio_rms_at_frames(item["audio"]), mouth_darkness(item["video"])
    e, d = (e - e.mean()) / e.std(), (d - d.mean()) / d.std()
    n = len(e)
    score = {k: np.mean(e[max(0, -k):n - max(0, k)] * d[max(0, k):n - max(0, -k)])
             for k in range(-max_lag, max_lag + 1)}
    return max(score, key=score.get)


@pytest.mark.parametrize("offset", [0.4, -0.4, 0.0])
def test_audio_leads_by_offset_in_the_returned_window(toy_dir, offset):
    """Δ > 0 (audio leads): each sound comes Δ earlier in the audio window than its mouth movement."""
    recs = records(toy_dir, "valid")
    ds = eval_set(recs, [plan(2.0, offset)] * len(recs))
    for i in range(len(ds)):
        item = ds[i]
        assert get_grid(21).values[item["target"].item()] == offset
        assert abs(lag_of_mouth_behind_audio(item) - round(offset * 25)) <= 1, recs[i].key


# ---------------------------------------------------------------------------- bad media
@pytest.fixture
def bad_records(toy_dir, tmp_path):
    good = records(toy_dir, "train")[:4]
    broken = tmp_path / "train" / "broken.mp4"
    broken.parent.mkdir()
    data = Path(good[0].path).read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    bad = [ClipRecord("train/broken", broken, 10.0, "train"),
           ClipRecord("train/missing", tmp_path / "train" / "missing.mp4", 10.0, "train")]
    return good, bad


def test_bad_media_is_skipped_reported_once_and_batches_stay_full(bad_records, tmp_path, caplog):
    good, bad = bad_records
    report = BadMediaReport(tmp_path / "report" / "bad_media.tsv")
    ds = AVClipDataset(good[:2] + bad[:1] + good[2:] + bad[1:], SPEC, True, sampler(), report=report)
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING):
        for epoch in range(2):
            batches = list(DataLoader(ds, batch_size=2, shuffle=True, drop_last=True))
            assert len(batches) == 3 and all(b["video"].shape == (2, 125, 48, 48, 3) for b in batches)
            assert all(k not in ("train/broken", "train/missing") for b in batches for k in b["key"])
    # a 3rd epoch in worker processes: they report into the same file
    batches = list(DataLoader(ds, batch_size=2, shuffle=True, drop_last=True, num_workers=2))
    assert len(batches) == 3 and all(b["audio"].shape == (2, 80000) for b in batches)
    entries = {e.key: e for e in report.read()}
    assert set(entries) == {"train/broken", "train/missing"}
    assert all(e.count >= 3 for e in entries.values())  # met in every epoch, listed once
    assert "no such file" in entries["train/missing"].reason and entries["train/missing"].stage == "train"
    warnings = [r for r in caplog.records if "bad media" in r.getMessage()]
    assert len(warnings) == 2  # one per file, not per occurrence
    assert "2 bad media file(s)" in report.summary()


def test_bad_eval_items_are_replaced_the_same_way_every_pass(bad_records):
    good, bad = bad_records
    recs = good[:2] + bad
    ds = eval_set(recs, [plan(1.0, 0.2)] * len(recs))
    first = [(ds[i]["key"], ds[i]["index"]) for i in range(len(ds))]
    assert first == [(ds[i]["key"], ds[i]["index"]) for i in range(len(ds))]
    assert [k for k, _ in first[:2]] == [good[0].key, good[1].key]
    assert all(k in (good[0].key, good[1].key) for k, _ in first[2:])
    assert len(ds.report.read()) == 2  # in memory without a path


def test_all_bad_media_raises_a_clear_error(bad_records):
    _, bad = bad_records
    ds = AVClipDataset(bad, SPEC, True, sampler(), max_replacements=3)
    with pytest.raises(RuntimeError, match=r"(?s)3 replacement\(s\) all failed to load.*missing.mp4: no such file"):
        ds[0]


# ---------------------------------------------------------------------------- score search
def test_score_search_spec_gives_integer_frame_shifts(dense_root):
    spec = InputSpec(fps=25.0, duration_sec=0.2, frame_size=48, resize_short_side=64, offset_classes=None)
    dm = toy_module(dense_root, input_spec=spec, batch_size=4)
    dm.setup("fit")
    assert dm.sampler.jitter_sec == 0.0
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 5, 48, 48, 3) and batch["audio"].shape == (4, 3200)
    assert batch["target"].dtype == torch.int64
    assert torch.equal(batch["target"], torch.round(batch["offset_sec"] * 25).long())
    assert torch.allclose(batch["audio_start_sec"] - batch["video_start_sec"], batch["offset_sec"])
    ds, rng = dm.datasets["train"], np.random.default_rng(0)
    shifts = {ds.target_of(ds.plan_for(0, rng)) for _ in range(2000)}
    assert shifts == set(range(-15, 16))
    val = dm.datasets["valid"][0]
    assert -15 <= val["target"].item() <= 15 and val["video"].shape == (5, 48, 48, 3)


# ---------------------------------------------------------------------------- data modules
def test_toy_module_with_explicit_spec_yields_batches(dense_root):
    dm = toy_module(dense_root)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 6 and len(dm.datasets["valid"]) == 3
    loader = dm.train_dataloader()
    assert len(loader) == 3
    batch = next(iter(loader))
    assert batch["video"].shape == (2, 125, 48, 48, 3) and batch["target"].shape == (2,)


def test_module_without_spec_or_trainer_raises_a_clear_error(dense_root):
    dm = toy_module(dense_root, input_spec=None)
    with pytest.raises(RuntimeError, match=r"no trainer is attached.*input_spec=InputSpec"):
        dm.setup("fit")
    dm.trainer = SimpleNamespace(lightning_module=torch.nn.Linear(1, 1), log_dir=None)
    with pytest.raises(RuntimeError, match="Linear declares no `input_spec`"):
        dm.setup("fit")


def test_module_takes_the_spec_from_the_model_and_reports_into_log_dir(dense_root, tmp_path):
    model = torch.nn.Linear(1, 1)
    model.input_spec = SPEC
    dm = toy_module(dense_root, input_spec=None, report_dir=None)
    dm.trainer = SimpleNamespace(lightning_module=model, log_dir=str(tmp_path))
    dm.setup("validate")
    assert dm.spec == SPEC and dm.report.path == tmp_path / "bad_media.tsv"
    assert "train" not in dm.datasets and dm.val_dataloader().dataset[0]["video"].shape == (125, 48, 48, 3)


class ListedModule(AVSyncDataModule):
    def __init__(self, listed, **kw):
        super().__init__(**kw)
        self.listed = listed

    def list_records(self, split):
        return [r for r in self.listed if r.split == split]


def test_skip_list_short_clips_csv_offsets_and_plans_per_clip(toy_dir, tmp_path):
    train, valid = records(toy_dir, "train"), records(toy_dir, "valid")
    short = ClipRecord("train/short", train[0].path, 4.9, "train")  # a 5 s crop cannot fit
    skip = tmp_path / "skip.txt"
    skip.write_text(f"# filtered by hand\n{train[1].key}.mp4\n{valid[2].path}\n")
    table = tmp_path / "valid.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerows([["path", "offset_sec", "vstart_sec"], [valid[0].key, -2.0, 2.96],
                     [valid[1].key, 0.2, 0.4], ["not/on_disk", 0.0, 1.0]])
    dm = ListedModule(train + [short] + valid, input_spec=SPEC, batch_size=2, num_workers=0,
                      skip_list=str(skip), fixed_offsets_csv={"valid": str(table)},
                      eval_plans_per_clip=2, report_dir=str(tmp_path / "r"))
    dm.setup("fit")
    assert dm.dropped["train"] == {"skip_list": 1, "unreadable": 0, "too_short": 1}
    assert [r.key for r in dm.datasets["train"].records] == [r.key for r in train if r is not train[1]]
    ds = dm.datasets["valid"]
    assert [r.key for r in ds.records] == [valid[0].key, valid[1].key] and len(ds) == 4
    assert dm.dropped["valid"]["skip_list"] == 1
    items = [ds[i] for i in range(4)]
    assert (items[0]["offset_sec"], items[0]["video_start_sec"], items[0]["target"].item()) == (-2.0, 2.96, 0)
    assert (items[2]["offset_sec"], items[2]["video_start_sec"]) == (0.2, 0.4)
    for extra in (items[1], items[3]):  # the 2nd plan of each clip: a seeded draw inside 9 s
        assert 0 <= extra["video_start_sec"] and extra["video_start_sec"] + 5 <= 9 + 1e-9
        assert 0 <= extra["audio_start_sec"] and extra["audio_start_sec"] + 5 <= 9 + 1e-9
    assert dm.report.path == tmp_path / "r" / "bad_media.tsv"


# ---------------------------------------------------------------------------- real clip
def test_real_lrs3_clip_with_its_official_fixed_offset(real_fixtures):
    path = real_fixtures / LRS3_CLIP
    key = key_for(path)
    assert key == "pretrain/C8zY0oAdQrs/00018"
    with open(real_fixtures / LRS3_CSV, newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["path"] == key)
    spec = InputSpec()  # SparseSync: 25 fps, 5 s, 224 crop from 256, 16 kHz, 21 classes
    fixed = FixedOffsets.from_csv(real_fixtures / LRS3_CSV, get_grid(21), spec.duration_sec)
    ds = AVClipDataset([ClipRecord(key, path, 15.7, "test")], spec, False, sampler(spec), fixed)
    item = ds[0]
    assert item["offset_sec"] == float(row["offset_sec"]) == -0.8
    assert item["video_start_sec"] == float(row["vstart_sec"]) == 3.2
    assert item["audio_start_sec"] == pytest.approx(2.4)
    assert item["target"].item() == get_grid(21).class_of(-0.8) == 6
    assert item["video"].shape == (125, 224, 224, 3) and item["audio"].shape == (80000,)
    ref = read_clip(path, 3.2, 2.4, 5.0, 25.0, 16000, size=256)
    h, w = ref["video"].shape[1:3]
    y0, x0 = (h - 224) // 2, (w - 224) // 2
    np.testing.assert_array_equal(item["video"].numpy(), ref["video"][:, y0:y0 + 224, x0:x0 + 224])
    np.testing.assert_allclose(item["audio"].numpy(), ref["audio"])


# ---------------------------------------------------------------------------- with a Trainer
def test_trainer_draws_are_reproducible_new_each_epoch_and_unique_across_workers(dense_root, tmp_path):
    import lightning as L

    class Probe(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.input_spec = SPEC  # the model declares its inputs; the data module reads them
            self.layer = torch.nn.Linear(1, 1)
            self.seen = []

        def training_step(self, batch, _):
            self.seen += [(self.current_epoch, k, o, v) for k, o, v in zip(
                batch["key"], batch["offset_sec"].tolist(), batch["video_start_sec"].tolist())]
            return self.layer(batch["audio"][:, :1]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), 0.1)

    def fit():
        L.seed_everything(5, workers=True)
        model, dm = Probe(), toy_module(dense_root, input_spec=None, num_workers=2, report_dir=None)
        trainer = L.Trainer(max_epochs=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
        trainer.fit(model, dm)
        assert dm.report.path == tmp_path / "bad_media.tsv"
        return model.seen

    seen = fit()
    assert len(seen) == 12 and fit() == seen
    epochs = [[s[1:] for s in seen if s[0] == e] for e in (0, 1)]
    assert all(sorted(k for k, _, _ in ep) == [f"train/train_{i:05d}" for i in range(6)] for ep in epochs)
    plans = [{(o, v) for _, o, v in ep} for ep in epochs]
    assert len(plans[0]) == 6 and plans[0] != plans[1]  # no two workers drew alike; new each epoch


# -- decoded-clip cache and variable-length training ------------------------------------------
def test_cached_decoding_gives_the_same_items_as_direct_reads(toy_dir):
    recs = records(toy_dir, "valid")
    plans = [plan(1.0, -0.4), plan(2.2, 0.0), plan(0.4, 1.8)]
    direct_set, cached_set = eval_set(recs, plans), eval_set(recs, plans, cache_decoded=True)
    for i in range(len(recs)):
        a, b = direct_set[i], cached_set[i]
        assert torch.equal(a["video"], b["video"]), "cached frames differ from a direct read"
        assert torch.allclose(a["audio"], b["audio"], atol=1e-6)
        assert a["target"] == b["target"]


def test_variable_length_batches_keep_the_offset(dense_root):
    spec = InputSpec(fps=25.0, duration_sec=7.0, frame_size=48, resize_short_side=64, offset_classes=21,
                     train_durations=(2.0, 3.0, 7.0))
    dm = toy_module(dense_root, input_spec=spec, batch_size=3)
    dm.prepare_data()
    dm.setup("fit")
    torch.manual_seed(0)
    lengths = set()
    batches = [b for _ in range(5) for b in dm.train_dataloader()]  # 5 epochs of 2 batches
    for batch in batches:
        frames, samples = batch["video"].shape[1], batch["audio"].shape[1]
        assert samples == frames * 640, "video and audio cut to different lengths"
        lengths.add(frames)
    assert lengths <= {50, 75, 175} and len(lengths) > 1
    # evaluation keeps the spec's length
    assert next(iter(dm.val_dataloader()))["video"].shape[1] == 175

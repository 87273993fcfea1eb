"""Feature bank: cached frozen-extractor outputs stand in exactly for decoding every step.

The claim that makes the bank legitimate is that, for frozen extractors, a bank example (video
window at v, audio window at v + Δ) gives the model the same logits as the decoded example with
that plan. The tests check it on real toy mp4 files, then the sampler's labels, the on-disk cache
and a short fit through a Trainer.
"""
import lightning as L
import numpy as np
import pytest
import torch

from avsync.data_modules.base import AVClipDataset, ClipRecord
from avsync.data_modules.feature_bank import (FeatureBank, FeatureBankDataModule, FeatureBankPairs,
                                              build_feature_bank)
from avsync.data_modules.feature_cache import INDEX, FeatureStore
from avsync.data_modules.toy import ToyAVDataModule
from avsync.papers.sparsesync.module import SparseSyncModule
from avsync.offsets import CropPlan, FixedOffsets, RandomOffsetSampler, get_grid, key_for
from avsync.toy.generate import read_index

TOY_INPUTS = {"frame_size": 32, "resize_short_side": 32}


@pytest.fixture(scope="module")
def bank_root(toy_set):
    return toy_set("dense", {"train": 3, "valid": 2, "test": 0}, seed=0, duration_sec=10.0, size=32)


@pytest.fixture(scope="module")
def module():
    torch.manual_seed(0)
    return SparseSyncModule(arch="sparsesync_toy", input_overrides=TOY_INPUTS, freeze_extractors=True,
                            log_figures=False).eval()


def train_records(root):
    set_dir = next(root.glob("dense_*"))
    return [ClipRecord(key_for(r["path"], root=set_dir), r["path"], r["duration_sec"], "train")
            for r in read_index(set_dir) if r["split"] == "train"]


def sampler(spec, step=None, jitter=0.0):
    return RandomOffsetSampler(get_grid(21), spec.duration_sec, 9.0, jitter, start_step_sec=step or 1 / spec.fps)


def test_bank_examples_give_the_logits_of_decoded_examples(bank_root, module):
    spec = module.input_spec
    records = train_records(bank_root)
    train_set = AVClipDataset(records, spec, True, sampler(spec))
    bank = build_feature_bank(train_set, *module.frozen_encoders(), start_step_sec=0.2, max_source_sec=9.0,
                              jitter_sec=0.0, seed=0, device=torch.device("cpu"), dtype=torch.float32,
                              progress=False)
    assert len(bank) == 3 and bank.clips[0].video.shape[0] == 21  # starts 0, 0.2, ..., 4.0 s

    pairs = [(0, 3, 13), (1, 20, 10), (2, 0, 10), (0, 10, 0)]  # (clip, video start idx, audio start idx)
    plans = {records[c].key: [CropPlan(video_start_sec=v * 0.2, offset_sec=round((a - v) * 0.2, 6),
                                       duration_sec=5.0)] for c, v, a in pairs[:3]}
    decoded = AVClipDataset([records[c] for c, _, _ in pairs[:3]], spec, False, sampler(spec),
                            FixedOffsets(plans))
    for i, (c, v, a) in enumerate(pairs[:3]):
        item = decoded[i]
        batch_decoded = {"video": item["video"][None], "audio": item["audio"][None]}
        batch_bank = {"vfeat": bank.clips[c].video[v][None], "afeat": bank.clips[c].audio[a][None]}
        with torch.no_grad():
            torch.testing.assert_close(module(batch_bank), module(batch_decoded), rtol=1e-4, atol=1e-4)


def test_pairs_follow_the_sampler_and_label_the_offset(bank_root, module):
    spec = module.input_spec
    train_set = AVClipDataset(train_records(bank_root)[:1], spec, True, sampler(spec))
    bank = build_feature_bank(train_set, *module.frozen_encoders(), start_step_sec=0.2, max_source_sec=9.0,
                              jitter_sec=0.05, seed=0, device=torch.device("cpu"), progress=False)
    jitter = bank.clips[0].audio_starts - bank.clips[0].video_starts
    assert jitter.abs().max() <= 0.05 + 1e-9 and jitter.abs().max() > 0  # one fixed jitter per audio window
    pairs = FeatureBankPairs(bank, sampler(spec, step=0.2))
    grid = get_grid(21)
    torch.manual_seed(0)
    labels = []
    for _ in range(300):
        item = pairs[0]
        nominal = round(item["audio_start_sec"] / 0.2) * 0.2 - item["video_start_sec"]
        assert grid.class_of(round(nominal, 6)) == int(item["target"]) == grid.class_of(item["offset_sec"])
        assert 0.0 <= item["video_start_sec"] <= 4.0 and -0.05 <= item["audio_start_sec"] - nominal - item["video_start_sec"] <= 0.05
        labels.append(int(item["target"]))
    assert set(labels) == set(range(21))  # every class drawn


def test_trainer_builds_the_bank_once_and_reuses_it(bank_root, tmp_path):
    def fit():
        torch.manual_seed(0)
        model = SparseSyncModule(arch="sparsesync_toy", input_overrides=TOY_INPUTS, freeze_extractors=True,
                                 lr=1e-3, warmup_steps=1, log_figures=False)
        source = ToyAVDataModule(root=str(bank_root), source_size=32, num_train=3, num_valid=2, num_test=0, batch_size=2,
                                 num_workers=0, cache_decoded=True, report_dir=str(tmp_path))
        data = FeatureBankDataModule(source, cache_dir=str(tmp_path / "banks"), progress=False)
        trainer = L.Trainer(max_steps=2, limit_val_batches=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
        trainer.fit(model, data)
        return trainer, data

    trainer, data = fit()
    assert trainer.global_step == 2
    assert np.isfinite(float(trainer.callback_metrics["val/loss"]))
    saved = list((tmp_path / "banks").glob("feature_bank_*"))
    assert len(saved) == 1 and len(FeatureBank.from_store(FeatureStore.open(saved[0]))) == 3
    files = sorted((saved[0] / "train").glob("*.pt"))
    assert len(files) == 3
    written = {p: p.stat().st_mtime_ns for p in [saved[0] / INDEX, *files]}

    _, data2 = fit()
    assert {p: p.stat().st_mtime_ns for p in written} == written  # loaded, not rebuilt
    for a, b in zip(data.bank.clips, data2.bank.clips):
        assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)

    # a truncated clip file is detected by its checksum and recomputed, not read
    files[1].write_bytes(files[1].read_bytes()[:100])
    _, data3 = fit()
    assert FeatureStore.open(saved[0]).verify() == [] and files[0].stat().st_mtime_ns == written[files[0]]
    for a, b in zip(data.bank.clips, data3.bank.clips):
        assert a.key == b.key and torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)

    # a run killed before the index was written leaves no index: the bank is built again
    (saved[0] / INDEX).unlink()
    _, data4 = fit()
    assert (saved[0] / INDEX).is_file()
    assert all(torch.equal(a.audio, b.audio) for a, b in zip(data.bank.clips, data4.bank.clips))


def test_bank_refuses_trainable_extractors(module):
    trainable = SparseSyncModule(arch="sparsesync_toy", input_overrides=TOY_INPUTS, freeze_extractors=False)
    with pytest.raises(RuntimeError, match="freeze_extractors=True"):
        trainable.frozen_encoders()
    batch = {"vfeat": torch.zeros(1, 128, 16, 1, 1), "afeat": torch.zeros(1, 64, 9, 20)}
    with pytest.raises(RuntimeError, match="frozen extractors"):
        trainable(batch)


def test_three_and_twentyone_class_stages_share_one_bank(bank_root, module, tmp_path):
    """The 3 -> 21 class curriculum keeps the same frozen extractors: the bank key ignores the labels."""
    paths = []
    for classes in (3, 21):
        model = SparseSyncModule(arch="sparsesync_toy", arch_overrides={"num_classes": classes},
                                 input_overrides=TOY_INPUTS, freeze_extractors=True)
        model.net.vfeat_extractor.load_state_dict(module.net.vfeat_extractor.state_dict())
        model.net.afeat_extractor.load_state_dict(module.net.afeat_extractor.state_dict())
        source = ToyAVDataModule(root=str(bank_root), source_size=32, num_train=3, num_valid=2, num_test=0,
                                 input_spec=model.input_spec, num_workers=0)
        source.setup("fit")
        paths.append(FeatureBankDataModule(source, cache_dir=str(tmp_path))._cache_folder(model, source.datasets["train"]))
    assert paths[0] == paths[1]
    with torch.no_grad():
        model.net.afeat_extractor.conv1.weight.add_(1e-3)  # other extractor weights: another bank
    assert FeatureBankDataModule(source, cache_dir=str(tmp_path))._cache_folder(model, source.datasets["train"]) != paths[0]

"""Synchformer synchronizability (§4.2, Fig. 4): the 0.5 rule of the BCE labels, non-overlapping
examples, the AUC and filtered-accuracy functions, the module's fine-tuning and a tiny toy fit."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from avsync.data_modules.synchronizability import NO_OFFSET_CLASS, SynchronizabilityDataModule
from avsync.data_modules.toy import ToyAVDataModule
from avsync.papers.synchformer.stage2 import SynchformerStage2Module
from avsync.papers.synchformer.synchronizability import SynchformerSynchronizabilityModule
from avsync.media import read_clip
from avsync.papers.synchformer.synchronizability_metrics import FilteredAccuracyCurve, filtered_accuracy_curve, roc_auc

TOY_INPUTS = {"resize_short_side": 32}
TOY = dict(source_size=32, num_train=3, num_valid=3, num_test=0, batch_size=2, num_workers=0, cache_decoded=True)


@pytest.fixture(scope="module")
def sync_root(toy_set):
    return toy_set("dense", {"train": 3, "valid": 3}, seed=0, duration_sec=10.0, size=32)


@pytest.fixture(scope="module")
def stage2_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    module = SynchformerStage2Module(arch="synchformer_toy", input_overrides=TOY_INPUTS)
    path = tmp_path_factory.mktemp("stage2") / "stage2.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


def _module(stage2_ckpt, **kw) -> SynchformerSynchronizabilityModule:
    return SynchformerSynchronizabilityModule(arch="synchformer_toy", input_overrides=TOY_INPUTS,
                                              init_from=str(stage2_ckpt), **kw)


def _data(sync_root, stage2_ckpt, prob=0.5) -> SynchronizabilityDataModule:
    spec = _module(stage2_ckpt).input_spec
    dm = SynchronizabilityDataModule(ToyAVDataModule(root=str(sync_root), input_spec=spec, **TOY), prob)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _batch(b: int = 4) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"video": torch.randint(0, 256, (b, 120, 32, 32, 3), generator=g, dtype=torch.uint8),
            "audio": torch.randn(b, 76800, generator=g) * 0.1,
            "target": torch.tensor([3, NO_OFFSET_CLASS, 12, NO_OFFSET_CLASS])[:b],
            "sync_target": torch.tensor([1.0, 0.0, 1.0, 0.0])[:b]}


# -- Fig. 4 as numbers ------------------------------------------------------------------------------
def test_filtered_accuracy_curve_on_hand_made_scores():
    curve = filtered_accuracy_curve(torch.tensor([0.9, 0.1, 0.8, 0.8]), torch.tensor([True, False, False, True]))
    assert curve.thresholds.tolist() == pytest.approx([0.9, 0.8, 0.1])          # ties kept together
    assert curve.kept_fraction.tolist() == pytest.approx([0.25, 0.75, 1.0])
    assert curve.accuracy.tolist() == pytest.approx([1.0, 2 / 3, 0.5])
    assert curve.accuracy_at_fraction(0.5) == pytest.approx(2 / 3)
    metric = FilteredAccuracyCurve()
    metric.update(torch.tensor([0.9, 0.1]), torch.tensor([1, 0]))
    metric.update(torch.tensor([0.8, 0.8]), torch.tensor([0, 1]))
    assert metric.compute().as_dict() == curve.as_dict()
    with pytest.raises(ValueError, match="differ in length"):
        filtered_accuracy_curve(torch.rand(3), torch.ones(2, dtype=torch.bool))


def test_roc_auc_on_hand_made_scores():
    labels = torch.tensor([1, 0, 1, 0])
    assert roc_auc(torch.tensor([0.9, 0.8, 0.3, 0.1]), labels) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert roc_auc(torch.tensor([0.9, 0.2, 0.7, 0.1]), labels) == pytest.approx(1.0)
    assert roc_auc(torch.tensor([0.1, 0.9, 0.2, 0.7]), labels) == pytest.approx(0.0)


# -- the examples ------------------------------------------------------------------------------------
def test_labels_follow_the_half_rule_and_unsynchronisable_pairs_do_not_overlap(sync_root, stage2_ckpt):
    dm = _data(sync_root, stage2_ckpt)
    train, spec = dm.datasets["train"], dm.clips_module.spec
    torch.manual_seed(0)
    items = [train[i % len(train)] for i in range(240)]
    unsync = [it for it in items if it["sync_target"] == 0]
    assert 0.40 < len(unsync) / len(items) < 0.60                                 # Bernoulli(0.5), 240 draws
    for it in items:
        if it["sync_target"] == 1:
            assert 0 <= int(it["target"]) < 21 and abs(it["offset_sec"]) <= 2.0 + 1e-9
        else:
            assert int(it["target"]) == NO_OFFSET_CLASS
            assert abs(it["offset_sec"]) == pytest.approx(spec.duration_sec)     # offset = input length
            video = (it["video_start_sec"], it["video_start_sec"] + spec.duration_sec)
            audio = (it["audio_start_sec"], it["audio_start_sec"] + spec.duration_sec)
            assert audio[0] >= video[1] - 1e-9 or audio[1] <= video[0] + 1e-9   # no shared moment
    # the audio really comes from the non-overlapping window of the source
    it = unsync[0]
    path = next(r.path for r in train.synced.records if r.key == it["key"])
    whole = read_clip(path, 0.0, 0.0, 10.0, spec.fps, spec.sample_rate, size=32)["audio"]
    a0 = round(it["audio_start_sec"] * spec.sample_rate)
    np.testing.assert_allclose(it["audio"].numpy(), whole[a0:a0 + spec.num_samples], atol=1e-6)


def test_evaluation_examples_are_fixed_and_the_probability_is_honoured(sync_root, stage2_ckpt):
    valid = _data(sync_root, stage2_ckpt).datasets["valid"]
    first = [(float(it["sync_target"]), it["audio_start_sec"]) for it in (valid[i] for i in range(len(valid)))]
    second = [(float(it["sync_target"]), it["audio_start_sec"]) for it in (valid[i] for i in range(len(valid)))]
    assert first == second
    assert sum(t == 0.0 for t, _ in first) == round(0.5 * len(valid))          # a balanced, fixed share
    for prob, expected in ((0.0, 1.0), (1.0, 0.0)):
        train = _data(sync_root, stage2_ckpt, prob).datasets["train"]
        assert {float(train[i]["sync_target"]) for i in range(len(train))} == {expected}
    with pytest.raises(ValueError, match="prob_unsynchronisable"):
        SynchronizabilityDataModule(ToyAVDataModule(**TOY), 1.5)


def test_reads_the_stage2_feature_cache(sync_root, stage2_ckpt, tmp_path):
    from types import SimpleNamespace

    from avsync.data_modules.synchformer_features import SynchformerFeatureDataModule
    from avsync.papers.synchformer.feature_cache import write_cache

    module = _module(stage2_ckpt).eval()
    toy = {**TOY, "num_train": 2, "num_valid": 2}
    store = write_cache(module, ToyAVDataModule(root=str(sync_root), **toy), tmp_path, ("train", "valid"), hop_frames=4)
    key = store.keys("valid")[1]
    written = store.get("valid", key)
    broken = tmp_path / store.entries["valid"][key]["file"]
    broken.write_bytes(broken.read_bytes()[:-1])                    # a partial file: recomputed, not read
    dm = SynchronizabilityDataModule(SynchformerFeatureDataModule(ToyAVDataModule(root=str(sync_root), **toy),
                                                                  str(tmp_path)))
    dm.trainer = SimpleNamespace(lightning_module=module, log_dir=None)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.data.store.verify() == [] and torch.equal(dm.data.store.get("valid", key).video, written.video)
    valid = [dm.datasets["valid"][i] for i in range(2)]
    assert sorted(float(it["sync_target"]) for it in valid) == [0.0, 1.0]
    unsync = next(it for it in valid if it["sync_target"] == 0)
    assert abs(unsync["offset_sec"]) == pytest.approx(4.8) and "video" not in unsync
    batch = next(iter(dm.train_dataloader()))
    assert batch["vis_feats"].shape == (2, 14, 8, 64) and batch["aud_feats"].shape == (2, 14, 6, 64)
    assert torch.isfinite(module._step(batch, "train"))


# -- the module ------------------------------------------------------------------------------------
def test_fine_tuning_keeps_extractors_and_the_stage2_offsets(stage2_ckpt):
    torch.manual_seed(0)
    stage2 = SynchformerStage2Module(arch="synchformer_toy", input_overrides=TOY_INPUTS)
    stage2.load_state_dict(torch.load(stage2_ckpt, weights_only=True)["state_dict"])
    module = _module(stage2_ckpt, lr=1e-2)
    batch = _batch()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-2)
    module.train()
    module._step(batch, "train").backward()
    opt.step()
    changed = {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}
    assert any(k.startswith("sync_head.") for k in changed) and any(k.startswith("net.transformer.") for k in changed)
    assert not any(k.startswith(("net.vfeat_extractor.", "net.afeat_extractor.", "reference.")) for k in changed)
    stage2.eval(), module.eval()
    with torch.no_grad():
        torch.testing.assert_close(module(batch), stage2(batch))            # offsets: the stage-II model's
        assert module.synchronizability(batch).shape == (4,)
    head_only = _module(stage2_ckpt, tune="head")
    assert {n for n, p in head_only.named_parameters() if p.requires_grad} == {"sync_head.sync_head.weight",
                                                                              "sync_head.sync_head.bias"}


def test_init_from_must_hold_the_whole_stage2_model(stage2_ckpt, tmp_path):
    state = torch.load(stage2_ckpt, weights_only=True)
    del state["state_dict"]["net.transformer.off_head.weight"]
    torch.save(state, tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match="off_head.weight"):
        _module(tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match="tune"):
        _module(stage2_ckpt, tune="everything")


def test_head_fits_one_batch(stage2_ckpt):
    torch.manual_seed(0)
    module = _module(stage2_ckpt, lr=1e-3)
    batch = _batch()
    with torch.no_grad():
        vis, aud = module.segment_features(batch)
    feats = {"vis_feats": vis, "aud_feats": aud, "target": batch["target"], "sync_target": batch["sync_target"]}
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    module.train()
    losses = []
    for _ in range(25):
        loss = module._step(feats, "train")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert math.isfinite(float(module.auroc["train_auroc"].compute()))


def test_tiny_toy_fit_logs_fig4(sync_root, stage2_ckpt, tmp_path, repo_root_cwd):
    from avsync.cli import main
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    inner = "--data.init_args.data.init_args."
    main(["fit", "--config", "experiments/synchformer_toy_synchronizability.yaml",
          "--model.init_args.init_from", str(stage2_ckpt), f"{inner}root", str(sync_root),
          f"{inner}source_size", "32", f"{inner}num_train", "2", f"{inner}num_valid", "2", f"{inner}num_test", "0",
          f"{inner}batch_size", "2", "--trainer.max_steps", "2", "--trainer.val_check_interval", "2",
          "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path),
          "--trainer.logger.init_args.save_dir", str(tmp_path)])
    log_dir = next(tmp_path.rglob("synchronizability_val.json")).parent
    record = json.loads((log_dir / "synchronizability_val.json").read_text())
    assert record["global_step"] == 2 and "filtered_accuracy" in record
    assert record["filtered_accuracy"]["kept_fraction"][-1] == pytest.approx(1.0)
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    events.Reload()
    assert {"val/filtered_accuracy", "val/auroc", "val/binary_acc"} <= set(events.Tags()["images"]) | set(
        events.Tags()["scalars"])
    assert torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=True)["global_step"] == 2

"""AVST's curriculum data option on the toy set: in-sync training pairs, one-video batches, eval plans."""
import pytest
import torch

from avsync.data_modules.batching import SameClipBatches
from avsync.data_modules.sync_curriculum import ToySyncCurriculumDataModule
from avsync.training.resume import EpochOrder
from avsync.inputs import InputSpec

SPEC = InputSpec(fps=25.0, duration_sec=44 / 25, frame_size=64, resize_short_side=None, offset_classes=None,
                 max_frame_shift=15, train_durations=(5 / 25, 9 / 25))


def _module(toy_root, **kwargs) -> ToySyncCurriculumDataModule:
    dm = ToySyncCurriculumDataModule(root=toy_root, num_train=3, num_valid=2, num_test=0, clip_duration_sec=4.0,
                                     batch_size=4, num_workers=0, input_spec=SPEC, cache_decoded=True,
                                     report_dir=toy_root, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_same_clip_batches_give_one_clip_per_batch_in_an_order_of_seed_and_epoch():
    batches = SameClipBatches(batch_size=3).batches(EpochOrder(5, seed=0))
    assert len(batches) == 5 and all(len(set(b)) == 1 and len(b) == 3 for b in batches)
    assert sorted(b[0] for b in batches) == list(range(5))  # every clip once per epoch
    assert SameClipBatches(3).batches(EpochOrder(5, seed=0)) == batches  # a pure function of (seed, epoch)
    next_epoch = EpochOrder(5, seed=0)
    next_epoch.set_epoch(1)
    assert SameClipBatches(3).batches(next_epoch) != batches
    assert len(SameClipBatches(3, num_batches=5).batches(EpochOrder(2, seed=0))) == 5
    with pytest.raises(ValueError, match="at least 2 pairs"):
        SameClipBatches(1)


def test_stage_2_batches_hold_in_sync_windows_of_one_video(toy_root):
    torch.manual_seed(0)
    dm = _module(toy_root, curriculum_stage=2)
    batch = next(iter(dm.train_dataloader()))
    assert len(set(batch["key"])) == 1                       # one video
    assert (batch["target"] == 0).all()                      # every pair in sync
    torch.testing.assert_close(batch["audio_start_sec"], batch["video_start_sec"])
    assert batch["video"].shape[1] in (5, 9)                 # variable length, cut per batch
    assert len(set(batch["video_start_sec"].tolist())) > 1   # the video at different times


def test_stage_1_batches_come_from_different_videos(toy_root):
    torch.manual_seed(0)
    dm = _module(toy_root, curriculum_stage=1)
    dm.batch_size = 3
    batch = next(iter(dm.train_dataloader()))
    assert len(set(batch["key"])) == 3 and (batch["target"] == 0).all()


def test_eval_both_gives_each_clip_in_sync_and_at_a_random_offset(toy_root):
    dm = _module(toy_root, eval_offsets="both")
    valid = dm.datasets["valid"]
    assert len(valid) == 2 * 2
    plans = [valid.plan_for(i) for i in range(len(valid))]
    assert [p.offset_sec for p in plans[0::2]] == [0.0, 0.0]
    assert any(p.offset_sec != 0 for p in plans[1::2])
    assert all(abs(p.offset_sec) <= 15 / 25 + 1e-9 for p in plans)
    in_sync_only = _module(toy_root, eval_offsets="in_sync").datasets["valid"]
    assert len(in_sync_only) == 2 and all(in_sync_only.plan_for(i).offset_sec == 0 for i in range(2))


def test_bad_options_are_refused(toy_root):
    with pytest.raises(ValueError, match="curriculum_stage"):
        ToySyncCurriculumDataModule(root=toy_root, curriculum_stage=3)
    with pytest.raises(ValueError, match="eval_offsets"):
        ToySyncCurriculumDataModule(root=toy_root, eval_offsets="some")
    with pytest.raises(ValueError, match="eval_plans_per_clip"):
        ToySyncCurriculumDataModule(root=toy_root, eval_plans_per_clip=2)


def test_real_data_variants_take_the_curriculum_options(tmp_path):
    from avsync.data_modules.sync_curriculum import LRS3SyncCurriculumDataModule, VGGSoundSyncCurriculumDataModule

    lrs3 = LRS3SyncCurriculumDataModule(root=str(tmp_path), curriculum_stage=2, eval_offsets="in_sync")
    vgg = VGGSoundSyncCurriculumDataModule(root=str(tmp_path), curriculum_stage=1)
    assert (lrs3.curriculum_stage, lrs3.eval_offsets) == (2, "in_sync")
    assert (vgg.curriculum_stage, vgg.eval_plans_per_clip) == (1, 2)

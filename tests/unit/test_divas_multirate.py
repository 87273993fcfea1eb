"""DiVAS at several frame rates: rate-tagged batches, mixed-rate training steps, evaluation at a
batch's own rate, the 21-class grid protocol, and the multi-rate toy data module."""
import dataclasses

import pytest
import torch

from avsync.data_modules.multirate import MultiRateToyDataModule, RateTaggedCollate
from avsync.papers.divas.module import DiVASModule, batch_fps


def toy_module(**kwargs):
    torch.manual_seed(0)
    return DiVASModule(arch="divas_toy", log_figures=False, **kwargs)


def clip_batch(fps, n=4, seconds=1.6, sr=16000, size=32, shift=0):
    t = int(round(seconds * fps))
    return {"video": torch.randint(0, 255, (n, t, size, size, 3), dtype=torch.uint8),
            "audio": torch.randn(n, int(seconds * sr)), "target": torch.full((n,), shift),
            "fps": torch.full((n,), float(fps), dtype=torch.float64)}


def test_batch_fps_reads_the_tag_or_falls_back_and_rejects_mixed_rates():
    assert batch_fps({}, 25.0) == 25.0
    assert batch_fps({"fps": torch.tensor([30.0, 30.0])}, 25.0) == 30.0
    with pytest.raises(ValueError, match="one frame rate"):
        batch_fps({"fps": torch.tensor([24.0, 30.0])}, 25.0)


def test_rate_tagged_collate_adds_one_rate_per_clip():
    batch = RateTaggedCollate(None, 24.0)([{"target": torch.tensor(1)}, {"target": torch.tensor(-2)}])
    assert batch["fps"].tolist() == [24.0, 24.0] and batch["target"].tolist() == [1, -2]


def test_training_pairs_cut_0_2_s_windows_at_the_batch_rate():
    module = toy_module()
    frames, wav, _ = module.training_pairs(clip_batch(30.0))
    assert frames.shape[1] == 6 and wav.shape[1] == 3200  # 0.2 s at 30 fps and 16 kHz
    frames, wav, _ = module.training_pairs(clip_batch(24.0))
    assert frames.shape[1] == 5 and wav.shape[1] == 3333  # round(4.8) frames; the audio covers those 5 frames


def test_mixed_rate_step_pads_windows_into_one_batch_with_per_item_rates():
    module = toy_module(audio_gain=10.0)
    seen = {}
    embed = module.embed

    def spy(frames, wav, fps, sample_rate, num_frames=None, num_samples=None):
        seen.update(frames=frames.shape, fps=fps, num_frames=num_frames)
        return embed(frames, wav, fps, sample_rate, num_frames, num_samples)

    module.embed = spy
    loss = module.training_step({"24": clip_batch(24.0, n=3), "30": clip_batch(30.0, n=2)}, 0)
    assert torch.isfinite(loss) and loss.requires_grad
    assert seen["frames"][:2] == (5, 6)  # 5 windows, padded to the longest (6 frames at 30 fps)
    assert seen["fps"].tolist() == [24.0] * 3 + [30.0] * 2
    assert seen["num_frames"].tolist() == [5, 5, 5, 6, 6]


def test_evaluation_reads_offsets_at_the_batch_rate():
    module = toy_module()
    batch = clip_batch(60.0, shift=6)
    assert module.true_offsets_sec(batch).tolist() == pytest.approx([0.1] * 4)  # 6 frames at 60 fps
    results = module._evaluate(clip_batch(60.0, n=1, seconds=1.0), "test")
    assert results[0]["distances"].shape[1] == 31  # ±15 frames at 60 fps
    assert int(module.evaluators["test"].metrics()["test/acc@±40ms"].count.sum()) == 1


def test_grid_protocol_maps_classes_to_seconds_and_needs_a_search_that_reaches_them():
    module = toy_module(max_shift=50, input_overrides={"duration_sec": 5.0, "offset_classes": 21})
    batch = {"target": torch.tensor([0, 10, 20, 11])}
    assert module.true_offsets_sec(batch).tolist() == pytest.approx([-2.0, 0.0, 2.0, 0.2])
    with pytest.raises(ValueError, match="21-class grid needs ±2 s"):
        toy_module(max_shift=15, input_overrides={"offset_classes": 21})


def test_grid_accuracy_snaps_the_searched_offset_to_the_nearest_class(monkeypatch):
    module = toy_module(max_shift=50, input_overrides={"duration_sec": 5.0, "offset_classes": 21})
    predictions = iter([0.24, -1.0, 0.55])  # seconds: class 0.2 (right), −1.0 (right), 0.6 (±1 class off)
    monkeypatch.setattr(module, "predict_clip", lambda v, a, fps=None: {
        "pred_sec": next(predictions), "confidence": 1.0, "distances": None})
    batch = {"video": torch.zeros(3, 1), "audio": torch.zeros(3, 1), "target": torch.tensor([11, 5, 12])}
    module._evaluate(batch, "test")
    metrics = module.evaluators["test"].metrics()
    assert float(metrics["test/acc@1"].compute()) == pytest.approx(2 / 3)
    assert float(metrics["test/acc_tol"].compute()) == 1.0


def test_multirate_data_module_delivers_each_set_at_its_own_rate(tmp_path):
    spec = dataclasses.replace(toy_module().input_spec, duration_sec=1.0, max_frame_shift=3)
    dm = MultiRateToyDataModule(train_rates=[24, 30], test_rates=[60], input_spec=spec, root=str(tmp_path),
                                num_train=2, num_valid=1, num_test=1, clip_duration_sec=1.5, batch_size=2,
                                num_workers=0)
    assert {r: c.num_clips for r, c in dm.children_by_rate.items()} == {
        24.0: {"train": 2, "valid": 1, "test": 0}, 30.0: {"train": 2, "valid": 1, "test": 0},
        60.0: {"train": 0, "valid": 0, "test": 1}}  # the held-out rate is written for its test split only
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    parts = batch[0] if isinstance(batch, tuple) else batch
    assert set(parts) == {"24", "30"}
    assert parts["24"]["video"].shape[1] == 24 and parts["30"]["video"].shape[1] == 30  # 1 s each
    assert parts["30"]["fps"].tolist() == [30.0, 30.0]
    assert len(dm.val_dataloader()) == 2
    dm.setup("test")
    (test_loader,) = dm.test_dataloader()
    test_batch = next(iter(test_loader))
    assert test_batch["video"].shape[1] == 60 and test_batch["fps"].tolist() == [60.0]


def test_multirate_rates_must_be_distinct_and_positive():
    with pytest.raises(ValueError, match="train_rates"):
        MultiRateToyDataModule(train_rates=[25, 25])
    with pytest.raises(ValueError, match="test_rates"):
        MultiRateToyDataModule(test_rates=[0])


def test_window_accuracy_judges_each_row_of_the_distance_matrix(monkeypatch):
    module = toy_module(max_shift=2)
    distances = torch.ones(4, 5)  # 4 windows x offsets −2..2 frames; true offset +1 frame
    distances[[0, 1, 2], 3] = 0.0  # three windows find +1 frame (right)
    distances[3, 0] = -1.0         # one finds −2 frames (3 frames = 120 ms off)
    monkeypatch.setattr(module, "predict_clip", lambda v, a, fps=None: {
        "pred_sec": 1 / 25, "confidence": 1.0, "distances": distances})
    module._evaluate({"video": torch.zeros(1, 1), "audio": torch.zeros(1, 1), "target": torch.tensor([1])}, "test")
    metrics = module.evaluators["test"].metrics()
    assert float(metrics["test/acc@±40ms"].compute()) == 1.0  # the clip is right
    assert float(metrics["test/window_acc@±40ms"].compute()) == 0.75  # 3 of 4 windows


def test_eval_contexts_answer_per_run_of_windows_in_the_same_pass(monkeypatch):
    """eval_contexts (frames): a 5-frame context is one window (= the per-window accuracy), a context
    covering every window of the clip is the clip's own answer (= the clip accuracy)."""
    module = toy_module(max_shift=2, eval_contexts=[5, 8])
    distances = torch.ones(4, 5)  # 4 windows x offsets −2..2 frames; true offset +1 frame
    distances[[0, 1, 2], 3] = 0.0  # three windows find +1 frame (right)
    distances[3, 0] = -2.5         # one finds −2 frames, strongly enough to win the clip's average
    monkeypatch.setattr(module, "predict_clip", lambda v, a, fps=None: {
        "pred_sec": float(distances.mean(0).argmin() - 2) / 25, "confidence": 1.0, "distances": distances})
    module._evaluate({"video": torch.zeros(1, 1), "audio": torch.zeros(1, 1), "target": torch.tensor([1])}, "test")
    metrics = {k: float(m.compute()) for k, m in module.evaluators["test"].metrics().items()}
    assert metrics["test/acc@±40ms_5f"] == metrics["test/window_acc@±40ms"] == 0.75
    assert metrics["test/acc@±40ms_8f"] == metrics["test/acc@±40ms"] == 0.0
    with pytest.raises(ValueError, match="eval_contexts"):
        toy_module(eval_contexts=[4])

"""OffsetAccuracy: exact and tolerant counts, the asymmetric ITU window, and DDP reduction (a real
two-process run: tests/integration/test_metrics_ddp.py)."""
import math

import pytest
import torch

from avsync.evaluation.metrics import OffsetAccuracy
from avsync.offsets import ACCEPTABILITY_MS, FrameShifts, get_grid
from support.offset_accuracy_cases import GRID21, assert_same_results, random_batches


# ---------------------------------------------------------------- tolerance kinds
def test_classes_tolerance_counts_plus_minus_one_class():
    m = OffsetAccuracy(GRID21, classes=1)
    target = torch.tensor([10, 10, 10, 0, 20])
    preds = torch.tensor([10, 11, 12, 1, 18])  # exact, ±1, ±2, ±1, ±2
    m.update(preds, target)
    r = m.compute()
    assert r["acc@1"].item() == pytest.approx(1 / 5)
    assert r["acc_tol"].item() == pytest.approx(3 / 5)


def test_frames_tolerance_on_score_search_candidates():
    offsets = FrameShifts(15).offsets_sec(25)  # index i ↔ shift i − 15
    m = OffsetAccuracy(offsets, frames=(1, 25))
    target = torch.tensor([15, 15, 15, 0])
    preds = torch.tensor([15, 16, 13, 1])  # 0, +1, −2, +1 frames
    m.update(preds, target)
    r = m.compute()
    assert r["acc@1"].item() == pytest.approx(1 / 4)
    assert r["acc_tol"].item() == pytest.approx(3 / 4)


def test_frames_tolerance_on_a_coarse_grid():
    """0.2 s at 25 fps is 5 frames: ±5 frames accepts one class off, ±4 does not."""
    target, preds = torch.tensor([10]), torch.tensor([11])
    five, four = OffsetAccuracy(GRID21, frames=(5, 25)), OffsetAccuracy(GRID21, frames=(4, 25))
    five.update(preds, target)
    four.update(preds, target)
    assert five.compute()["acc_tol"] == 1 and four.compute()["acc_tol"] == 0


def test_window_edges_are_inclusive():
    offsets = FrameShifts(15).offsets_sec(25)  # 40 ms per frame
    m = OffsetAccuracy(offsets, window_ms=(-40, 40))
    target = torch.tensor([15, 15, 15, 15])
    preds = torch.tensor([14, 16, 13, 17])  # residuals +40, −40, +80, −80 ms
    m.update(preds, target)
    assert m.compute()["acc_tol"].item() == pytest.approx(0.5)


def test_window_is_asymmetric_residual_is_true_minus_predicted():
    """ITU acceptability (−185, +90) ms: under-estimating an audio lead by 100 ms leaves the
    audio leading by 100 ms — beyond +90, rejected; over-estimating it by 100 ms leaves the audio
    lagging by 100 ms — within −185, accepted."""
    offsets = [-0.1, 0.0, 0.1]
    too_early = OffsetAccuracy(offsets, window_ms=ACCEPTABILITY_MS)
    too_late = OffsetAccuracy(offsets, window_ms=ACCEPTABILITY_MS)
    too_early.update(torch.tensor([0]), torch.tensor([1]))  # predicted −0.1, true 0 → residual +100
    too_late.update(torch.tensor([2]), torch.tensor([1]))  # predicted +0.1, true 0 → residual −100
    assert too_early.compute()["acc_tol"] == 0
    assert too_late.compute()["acc_tol"] == 1


def test_float32_offsets_still_hit_window_edges_exactly():
    """0.2 s held as float32 is 0.2000000030: a one-class miss must still sit on a ±200 ms edge."""
    m = OffsetAccuracy(get_grid(21).as_tensor(), window_ms=(-200, 200))
    m.update(torch.tensor([9, 11]), torch.tensor([10, 10]))
    assert m.compute()["acc_tol"] == 1


def test_exactly_one_tolerance_is_required():
    with pytest.raises(ValueError, match="exactly one"):
        OffsetAccuracy(GRID21)
    with pytest.raises(ValueError, match="exactly one"):
        OffsetAccuracy(GRID21, classes=1, window_ms=(-40, 40))


# ---------------------------------------------------------------- inputs
def test_argmax_is_taken_from_logits():
    m = OffsetAccuracy([-1.0, 0.0, 1.0], classes=0)
    logits = torch.tensor([[0.1, 2.0, -1.0], [5.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    m.update(logits, torch.tensor([1, 2, 2]))
    r = m.compute()
    assert r["acc@1"].item() == pytest.approx(2 / 3)
    assert r["confusion"].tolist() == [[0, 0, 0], [0, 1, 0], [1, 0, 1]]


def test_bad_shapes_are_rejected():
    m = OffsetAccuracy([-1.0, 0.0, 1.0], classes=0)
    with pytest.raises(ValueError, match="3 offsets"):
        m.update(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="outside"):
        m.update(torch.tensor([0, 3]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        m.update(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]))


def test_forward_returns_the_batch_value_and_accumulates():
    m = OffsetAccuracy([-1.0, 0.0, 1.0], classes=0)
    batch = m(torch.tensor([0, 1]), torch.tensor([0, 0]))  # what ``metric(preds, target)`` gives
    assert batch["acc@1"] == 0.5
    m(torch.tensor([2]), torch.tensor([2]))
    assert m.compute()["acc@1"].item() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="either"):
        m.update(torch.tensor([0]), torch.tensor([0]), pred_sec=torch.tensor([0.0]))


def test_update_seconds_bins_by_nearest_candidate_and_judges_on_seconds():
    """DiVAS at 30 fps scored on 25 fps candidates: tolerance uses the seconds themselves."""
    m = OffsetAccuracy(FrameShifts(15).offsets_sec(25), window_ms=(-40, 40))
    true_s = torch.tensor([1 / 30, 1 / 30, 0.0, -0.1])
    pred_s = torch.tensor([1 / 30, 2 / 30, 2 / 30, -0.1])  # exact, −33 ms, −67 ms, exact
    m.update_seconds(pred_s, true_s)
    r = m.compute()
    assert r["acc@1"].item() == pytest.approx(2 / 4)
    assert r["acc_tol"].item() == pytest.approx(3 / 4)
    assert r["confusion"].sum() == 4
    assert r["confusion"][15 + 1, 15 + 1] == 1  # 1/30 s is binned with the +1 frame (40 ms) candidate


# ---------------------------------------------------------------- per offset and confusion
def test_per_offset_accuracy_and_confusion():
    m = OffsetAccuracy([-1.0, 0.0, 1.0], classes=1)
    m.update(torch.tensor([0, 1, 2, 0]), torch.tensor([0, 0, 2, 2]))
    r = m.compute()
    per, per_tol = r["per_offset_acc@1"], r["per_offset_acc_tol"]
    assert per.shape == (3,) and per[0] == 0.5 and math.isnan(per[1]) and per[2] == 0.5
    assert per_tol[0] == 1.0 and math.isnan(per_tol[1]) and per_tol[2] == 0.5
    assert r["confusion"].tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 1]]  # rows: true, cols: pred


def test_reset_clears_everything():
    m = OffsetAccuracy(GRID21, classes=1)
    m.update(torch.tensor([1]), torch.tensor([1]))
    m.reset()
    m.update(torch.tensor([1]), torch.tensor([2]))
    assert m.compute()["acc@1"] == 0 and m.compute()["confusion"].sum() == 1


# ---------------------------------------------------------------- DDP safety
def test_merge_state_of_two_ranks_equals_one_metric_on_all_data():
    logits, target = random_batches()
    whole = OffsetAccuracy(GRID21, classes=1)
    whole.update(logits, target)
    rank0, rank1 = OffsetAccuracy(GRID21, classes=1), OffsetAccuracy(GRID21, classes=1)
    rank0.update(logits[0::2], target[0::2])  # DistributedSampler-style interleaved shards
    rank1.update(logits[1::2], target[1::2])
    rank0.merge_state(rank1)
    assert_same_results(rank0.compute(), whole.compute())


def test_sync_with_a_simulated_all_gather_equals_one_metric_on_all_data():
    """Runs torchmetrics' own DDP path (sync inside compute) with an all_gather over two ranks."""
    logits, target = random_batches(seed=1)
    window = dict(window_ms=(-125, 45))
    whole = OffsetAccuracy(GRID21, **window)
    whole.update(logits, target)
    rank1 = OffsetAccuracy(GRID21, **window)
    rank1.update(logits[120:], target[120:])
    other = iter([getattr(rank1, name) for name in rank1._reductions])

    def all_gather(tensor, group=None):
        return [tensor, next(other)]

    rank0 = OffsetAccuracy(GRID21, **window, dist_sync_fn=all_gather, distributed_available_fn=lambda: True)
    rank0.update(logits[:120], target[:120])
    assert_same_results(rank0.compute(), whole.compute())
    assert rank0.count.sum() == 120  # local state restored after the sync


def test_a_metric_built_with_a_score_computes_that_scalar_and_results_keep_every_number():
    """score=...: what a module logs as the metric object; results() is the full dict either way."""
    offsets = [-0.4, -0.2, 0.0, 0.2, 0.4]
    preds, target = torch.tensor([2, 0, 0, 4, 4]), torch.tensor([2, 3, 1, 4, 2])  # index 2: offset 0
    full = OffsetAccuracy(offsets, classes=1)
    full.update(preds, target)
    expected = full.compute()
    got = {}
    for score in ("acc@1", "acc_tol", "acc_tol_in_sync", "acc_tol_random_offset"):
        m = OffsetAccuracy(offsets, classes=1, score=score)
        m.update(preds, target)
        got[score] = m.compute()
        assert got[score].ndim == 0 and got[score].dtype == torch.float64
        assert torch.equal(m.results()["confusion"], expected["confusion"])
    assert got["acc@1"] == expected["acc@1"] == 0.4 and got["acc_tol"] == expected["acc_tol"] == 0.6
    assert got["acc_tol_in_sync"] == 0.5          # true offset 0: clips 0 (right) and 4 (2 classes off)
    assert got["acc_tol_random_offset"] == 2 / 3  # the shifted clips 1 (3 classes off), 2 and 3
    with pytest.raises(ValueError, match="score"):
        OffsetAccuracy(offsets, classes=1, score="f1")
    with pytest.raises(ValueError, match="in-sync offset 0"):
        OffsetAccuracy([-0.2, 0.2], classes=1, score="acc_tol_in_sync")

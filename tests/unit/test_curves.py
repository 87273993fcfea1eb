"""The reproduction's learning-curve figures: one per group of stages of one family that log the same
metrics, so every panel has a curve (a stage that logs no accuracy gets no empty accuracy panel) and
a figure holds one part of the plan."""
from __future__ import annotations

from torch.utils.tensorboard import SummaryWriter

from avsync.evaluation.curves import plot_learning_curves


def _log(folder, tags):
    writer = SummaryWriter(str(folder))
    for step in range(5):
        for tag in tags:
            writer.add_scalar(tag, 1.0 / (step + 1), step)
    writer.close()
    return folder


def test_stages_logging_other_metrics_get_figures_of_their_own(tmp_path):
    runs = {"pretrain": _log(tmp_path / "a", ["train/loss_step", "val/segment_acc"]),
            "dense": _log(tmp_path / "b", ["train/loss_step", "val/acc@1", "val/acc_tol"]),
            "dense_21cls": _log(tmp_path / "c", ["train/loss_step", "val/acc@1", "val/acc_tol"]),
            "sparse_len5": _log(tmp_path / "d", ["train/loss_step", "val/acc@1", "val/acc_tol"]),
            "sparse_len5_nosel": _log(tmp_path / "e", ["train/loss_step", "val/acc@1", "val/acc_tol"]),
            "sparse_scores": _log(tmp_path / "f", ["train/loss_step"]),
            "empty": tmp_path / "missing"}
    written = plot_learning_curves(runs, tmp_path / "curves.png")
    assert written == {tmp_path / "curves.png": ["pretrain"],
                       tmp_path / "curves_dense.png": ["dense", "dense_21cls"],
                       tmp_path / "curves_sparse_len5.png": ["sparse_len5", "sparse_len5_nosel"],
                       tmp_path / "curves_sparse_scores.png": ["sparse_scores"]}
    assert all(path.stat().st_size > 0 for path in written)

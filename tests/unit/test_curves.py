"""The reproduction's learning-curve figures: one per group of stages that log the same metrics,
so every panel has a curve (a stage that logs no accuracy gets no empty accuracy panel)."""
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
            "sparse": _log(tmp_path / "c", ["train/loss_step", "val/acc@1", "val/acc_tol"]),
            "empty": tmp_path / "missing"}
    written = plot_learning_curves(runs, tmp_path / "curves.png")
    assert written == {tmp_path / "curves.png": ["pretrain"], tmp_path / "curves_dense.png": ["dense", "sparse"]}
    assert all(path.stat().st_size > 0 for path in written)

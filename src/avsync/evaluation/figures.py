"""Figures the papers show, drawn from OffsetAccuracy states: confusion over offsets, per-offset
accuracy; and :func:`log_figures`, the one way every module puts a figure into TensorBoard."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def _labels(offsets_sec: Sequence[float]) -> list[str]:
    return [f"{o:+.1f}" for o in offsets_sec]


def confusion_figure(confusion: torch.Tensor, offsets_sec: Sequence[float], title: str = "") -> plt.Figure:
    """Rows: true offset, columns: predicted offset; each row normalised to sum to 1."""
    conf = confusion.float().cpu()
    conf = conf / conf.sum(1, keepdim=True).clamp_min(1)
    size = max(4.0, 0.28 * len(offsets_sec) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(conf.numpy(), cmap="viridis", vmin=0, vmax=1)
    ticks = range(len(offsets_sec))
    ax.set_xticks(ticks, _labels(offsets_sec), rotation=90, fontsize=7)
    ax.set_yticks(ticks, _labels(offsets_sec), fontsize=7)
    ax.set_xlabel("predicted offset (s, + = audio leads)")
    ax.set_ylabel("true offset (s)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def per_offset_figure(acc1: torch.Tensor, acc_tol: torch.Tensor, offsets_sec: Sequence[float],
                      title: str = "") -> plt.Figure:
    """Bars of acc@1 and tolerant accuracy for each true offset (SparseSync Fig. 3 style)."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.3 * len(offsets_sec) + 2), 3.2))
    x = torch.arange(len(offsets_sec)).float()
    ax.bar((x - 0.2).numpy(), acc1.nan_to_num(0).cpu().numpy(), width=0.4, label="acc@1")
    ax.bar((x + 0.2).numpy(), acc_tol.nan_to_num(0).cpu().numpy(), width=0.4, label="tolerant")
    ax.set_xticks(x.numpy(), _labels(offsets_sec), rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_xlabel("true offset (s)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


FigureSource = Callable[[], "plt.Figure | None"]


def log_figures(module, figures: Mapping[str, FigureSource]) -> None:
    """Log ``{tag: make_figure}`` to the module's TensorBoard writer at its global step, then close them.

    Only on global rank 0, and only when the module's logger has an ``add_figure`` writer
    (TensorBoard): without one nothing is drawn (each entry is a callable, called only then). A
    callable may return ``None`` (nothing to draw this time). A torchmetrics metric's own ``plot``
    serves as a source too: ``lambda: metric.plot()[0]``.
    """
    from avsync.training.attached import attached_trainer

    trainer = attached_trainer(module)
    if trainer is None or not trainer.is_global_zero:
        return
    writer = getattr(module.logger, "experiment", None)
    if writer is None or not hasattr(writer, "add_figure"):
        return
    for tag, make in figures.items():
        fig = make()
        if fig is None:
            continue
        writer.add_figure(tag, fig, global_step=module.global_step)
        plt.close(fig)

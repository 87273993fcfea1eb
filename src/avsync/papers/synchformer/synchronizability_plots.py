"""Synchformer Fig. 4 (right) as a TensorBoard figure: the offset accuracy of the clips kept by a
synchronizability threshold. The ROC curve (left) is torchmetrics' ``BinaryROC.plot``."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from avsync.papers.synchformer.synchronizability_metrics import FilteredAccuracy  # noqa: E402

__all__ = ["filtered_accuracy_figure"]


def filtered_accuracy_figure(curve: FilteredAccuracy, title: str = "") -> plt.Figure:
    """Offset accuracy of the clips whose synchronizability >= threshold, against the threshold
    (left) and against the share of clips kept (right)."""
    fig, (by_t, by_kept) = plt.subplots(1, 2, figsize=(7, 3.2), sharey=True)
    acc = curve.accuracy.cpu().numpy()
    by_t.step(curve.thresholds.cpu().numpy(), acc, where="post")
    by_t.set_xlabel("synchronizability threshold")
    by_t.set_ylabel("offset accuracy of kept clips")
    by_kept.plot(curve.kept_fraction.cpu().numpy(), acc, ".-", ms=3)
    by_kept.set_xlabel("fraction of clips kept")
    by_kept.invert_xaxis()
    for ax in (by_t, by_kept):
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    fig.suptitle(title or "offset accuracy filtered by synchronizability", fontsize=9)
    fig.tight_layout()
    return fig

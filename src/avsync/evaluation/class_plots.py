"""Per-class accuracy as sorted bars (AVST Fig. 3/6, SparseSync Fig. 3): one bar per dataset class."""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["per_class_figure"]


def per_class_figure(class_names: Sequence[str], acc_tol: Sequence[float | None],
                     acc1: Sequence[float | None] | None = None, counts: Sequence[int] | None = None,
                     title: str = "") -> plt.Figure:
    """Horizontal bars of the tolerant accuracy per class, best class on top (classes without a
    test clip are left out); acc@1 as a thinner bar inside, the clip count after each name."""
    acc_tol = np.array([np.nan if v is None else float(v) for v in acc_tol], dtype=float)
    acc1 = None if acc1 is None else np.array([np.nan if v is None else float(v) for v in acc1], dtype=float)
    keep = np.flatnonzero(~np.isnan(acc_tol))
    order = keep[np.argsort(-acc_tol[keep], kind="stable")]
    labels = [f"{class_names[i]} ({counts[i]})" if counts is not None else str(class_names[i]) for i in order]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.18 * len(order) + 1.2)))
    y = np.arange(len(order))
    ax.barh(y, acc_tol[order], height=0.8, color="tab:orange", label="tolerant")
    if acc1 is not None:
        ax.barh(y, np.nan_to_num(acc1[order]), height=0.4, color="tab:blue", label="acc@1")
    ax.set_yticks(y, labels, fontsize=6 if len(order) > 40 else 8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.set_title(title or "accuracy per class")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig

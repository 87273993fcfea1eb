"""The detect command's figures: the score over the candidate offsets, and the sync-score timeline
of a long clip under a moving window (AVST Fig. 7)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from avsync.detect.detectors import OffsetScores  # noqa: E402
from avsync.detect.result import Detection  # noqa: E402

__all__ = ["score_curve_figure", "moving_average", "timeline_figure", "save"]


def score_curve_figure(scores: OffsetScores, detection: Detection) -> plt.Figure:
    """File-level score (mean over windows) against the candidate offset, the chosen one marked."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    curve = scores.file_curve()
    ax.plot(scores.offsets_sec, curve, "o-", ms=3)
    ax.axvline(detection.offset_sec, color="tab:red", lw=1, label=detection.verdict)
    ax.axvline(0.0, color="k", lw=0.5)
    ax.set_xlabel("offset (s, + = audio leads)")
    ax.set_ylabel("mean probability" if scores.kind == "probability" else "mean score (higher = in sync)")
    ax.set_title(f"{Path(detection.path).name}: {detection.verdict}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def moving_average(rows: np.ndarray, width: int) -> np.ndarray:
    """Mean of ``width`` consecutive rows (stride 1): (N − width + 1, O)."""
    width = max(1, min(int(width), len(rows)))
    kernel = np.cumsum(np.vstack([np.zeros((1, rows.shape[1])), rows]), axis=0)
    return (kernel[width:] - kernel[:-width]) / width


def timeline_figure(times_sec: np.ndarray, rows: np.ndarray, scores: OffsetScores, detection: Detection,
                    window_sec: float) -> plt.Figure:
    """Top: score of every candidate offset along the clip; bottom: the sync score — the score of the
    file's offset — and the window's own best offset, for a moving window of ``window_sec``."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    half = 0.5 * (scores.offsets_sec[1] - scores.offsets_sec[0]) if len(scores.offsets_sec) > 1 else 0.5
    extent = (times_sec[0], times_sec[-1], scores.offsets_sec[0] - half, scores.offsets_sec[-1] + half)
    top.imshow(rows.T, aspect="auto", origin="lower", extent=extent, cmap="viridis", interpolation="nearest")
    top.plot(times_sec, scores.offsets_sec[rows.argmax(1)], "w.", ms=3, label="best offset of the window")
    top.axhline(detection.offset_sec, color="tab:red", lw=1, label=f"file: {detection.verdict}")
    top.set_ylabel("offset (s, + = audio leads)")
    top.legend(fontsize=7, loc="upper right")
    column = int(np.argmin(np.abs(scores.offsets_sec - detection.offset_sec)))
    bottom.plot(times_sec, rows[:, column], color="tab:blue")
    bottom.set_xlabel("time (s, window centre)")
    bottom.set_ylabel("sync score" if scores.kind == "score" else "probability of the file's offset")
    top.set_title(f"{Path(detection.path).name}: {window_sec:g} s moving window")
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

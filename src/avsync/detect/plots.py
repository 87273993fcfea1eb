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
from avsync.detect.timeline import Timeline  # noqa: E402

__all__ = ["score_curve_figure", "timeline_figure", "save"]


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


def timeline_figure(line: Timeline, detection: Detection) -> plt.Figure:
    """Top: the score of every candidate offset (colour) along the clip, each window's best offset
    (white) and the file's (red); bottom: each window's confidence and the score of the file's offset."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=(3, 2),
                                      layout="constrained")
    offsets, centres = line.offsets_sec, line.centres_sec
    half_offset = 0.5 * (offsets[1] - offsets[0]) if len(offsets) > 1 else 0.5
    half_hop = 0.5 * line.hop_sec
    extent = (centres[0] - half_hop, centres[-1] + half_hop, offsets[0] - half_offset, offsets[-1] + half_offset)
    image = top.imshow(line.rows.T, aspect="auto", origin="lower", extent=extent, cmap="viridis",
                       interpolation="nearest")
    # one colour bar beside both panels keeps their time axes aligned
    fig.colorbar(image, ax=[top, bottom], pad=0.01, label="probability" if line.kind == "probability" else "score")
    top.plot(centres, line.best_sec, "w.-", lw=1, ms=4, label="best offset of the window")
    top.axhline(detection.offset_sec, color="tab:red", lw=1, ls="--", label=f"file: {detection.verdict}")
    top.set_ylabel("offset (s, + = audio leads)")
    top.legend(fontsize=7, loc="upper right")
    top.set_title(f"{Path(detection.path).name}: {line.window_sec:g} s window every {line.hop_sec:g} s")
    bottom.plot(centres, line.confidence, "o-", ms=3, color="tab:green", label="confidence of the window")
    bottom.set_ylabel("mean probability" if line.kind == "probability" else "max - median score", fontsize=8)
    bottom.set_xlabel("time in the clip (s, window centre)")
    column = int(np.argmin(np.abs(offsets - detection.offset_sec)))
    twin = bottom.twinx()
    twin.plot(centres, line.rows[:, column], color="tab:blue", lw=1, label="score of the file's offset")
    twin.set_ylabel("sync score at the file's offset", fontsize=8)
    handles = bottom.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    bottom.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="lower right")
    return fig


def save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

"""DiVAS Fig. 2 as a TensorBoard figure: the window-averaged feature distance against the offset."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def distance_curve_figure(distances: torch.Tensor, fps: float, true_frames: int | None = None,
                          title: str = "") -> plt.Figure:
    """``distances`` (W, O) of one clip: mean over windows against the candidate offset in ms; the
    minimum is the prediction, median − min the confidence; a dashed line marks the true offset."""
    mean = distances.detach().float().mean(0).cpu()
    max_shift = (len(mean) - 1) // 2
    offsets_ms = (torch.arange(len(mean)) - max_shift) * 1000.0 / fps
    confidence = float(mean.median() - mean.min())
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(offsets_ms.numpy(), mean.numpy(), "o-", ms=3)
    ax.axvline(float(offsets_ms[int(mean.argmin())]), color="tab:red", lw=1, label="prediction")
    if true_frames is not None:
        ax.axvline(true_frames * 1000.0 / fps, color="k", ls="--", lw=1, label="true offset")
    ax.set_xlabel("offset (ms, + = audio leads)")
    ax.set_ylabel("feature distance")
    ax.set_title(f"{title} confidence {confidence:.2f}".strip())
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig

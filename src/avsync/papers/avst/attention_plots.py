"""Attention heatmaps over the frames of a clip (AVST Fig. 4/8/9), in the style of :mod:`avsync.evaluation.figures`."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def attention_figure(frames: torch.Tensor, heat: torch.Tensor, title: str = "", max_frames: int = 8) -> plt.Figure:
    """One panel per frame: the frame with its (h, w) attention map upsampled bilinearly on top.

    ``frames`` uint8 (T, H, W, 3); ``heat`` (T, h, w) in [0, 1] (e.g. normalised attention weights).
    At most ``max_frames`` frames, evenly spread, are shown.
    """
    if frames.ndim != 4 or heat.ndim != 3 or frames.shape[0] != heat.shape[0]:
        raise ValueError(f"need frames (T, H, W, 3) and heat (T, h, w) with the same T, got "
                         f"{tuple(frames.shape)} and {tuple(heat.shape)}")
    t = frames.shape[0]
    idx = torch.linspace(0, t - 1, min(t, max_frames)).round().long().tolist()
    up = F.interpolate(heat[idx, None].float().cpu(), size=frames.shape[1:3], mode="bilinear",
                       align_corners=False)[:, 0]
    fig, axes = plt.subplots(1, len(idx), figsize=(1.8 * len(idx) + 0.6, 2.2), squeeze=False)
    for ax, i, h in zip(axes[0], idx, up):
        ax.imshow(frames[i].cpu().numpy())
        im = ax.imshow(h.numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(f"frame {i}", fontsize=7)
        ax.axis("off")
    fig.colorbar(im, ax=axes[0].tolist(), fraction=0.02)
    fig.suptitle(title, fontsize=8)
    return fig

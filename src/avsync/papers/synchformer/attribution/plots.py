"""The attribution figure (Synchformer Fig. 3): a strip of frames with the visual scores under it,
and the waveform with the audio scores over it, on one time axis."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from avsync.papers.synchformer.attribution.masks import Attribution  # noqa: E402

__all__ = ["attribution_figure"]


def _frame_strip(frames: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` evenly spaced frames side by side (H, count * W, 3) and their frame indices."""
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    return np.concatenate([frames[i] for i in picks], axis=1), picks


def _scores(ax, result: Attribution, colour: str) -> None:
    scaled = result.scaled()
    ax.bar(result.times_sec, np.nan_to_num(scaled), width=result.chunk_sec, align="edge", color=colour, alpha=0.6,
           label=f"{result.modality} (kept {result.kept}/{result.num_masks} masks)")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("attribution\n(min-max)")
    ax.legend(fontsize=7, loc="upper right")


def attribution_figure(frames: np.ndarray, wav: np.ndarray, fps: float, sample_rate: int, audio: Attribution,
                       visual: Attribution, title: str = "", strip_frames: int = 12) -> plt.Figure:
    """frames (T, H, W, 3) uint8 and wav (S,) of the crop; the two attributions of the same crop."""
    duration = len(frames) / fps
    fig, (strip, vis_ax, wave_ax) = plt.subplots(3, 1, figsize=(10, 5.6), sharex=True,
                                                 gridspec_kw={"height_ratios": [1.2, 1, 1.6]})
    image, _ = _frame_strip(frames, strip_frames)
    strip.imshow(image, extent=(0, duration, 0, 1), aspect="auto")
    strip.set_yticks([])
    strip.set_title(title, fontsize=9)
    _scores(vis_ax, visual, "tab:orange")
    t = np.arange(len(wav)) / sample_rate
    wave_ax.plot(t, wav, color="0.6", lw=0.4)
    wave_ax.set_ylabel("waveform")
    wave_ax.set_xlabel("time in the crop (s)")
    twin = wave_ax.twinx()
    _scores(twin, audio, "tab:blue")
    wave_ax.set_xlim(0, duration)
    fig.tight_layout()
    return fig

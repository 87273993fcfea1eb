"""Which source frame to show at output time t: nearest, on screen, or FFmpeg's fps filter?

Applies the three rules to exact timestamps i / rate (20 s per source rate, read at 25 fps) and
prints, per source rate, how often each rule picks another frame than the fps filter, the mean
time difference to it, and each rule's error against t itself (docs/media-timing.md)::

    python benchmarks/frame_rules.py

The fps filter (round=near, its default) rounds each input pts to the nearest output slot (half
away from zero) and shows, per slot, the last frame rounded into it or before.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from avsync.media.decode import nearest_frames

RATES = {"23.976": Fraction(24000, 1001), "24": 24, "25": 25, "29.97": Fraction(30000, 1001), "30": 30,
         "50": 50, "59.94": Fraction(60000, 1001), "60": 60}
OUT_FPS = 25


def on_screen(starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(starts, times + 1e-9, side="right") - 1, 0, len(starts) - 1)


def fps_filter(starts: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    slots = np.floor(starts * fps + 0.5 + 1e-9)
    return np.clip(np.searchsorted(slots, np.round(times * fps), side="right") - 1, 0, len(starts) - 1)


def main() -> None:
    print("| source fps | frames where nearest != fps filter | nearest - fps filter, mean | on screen - fps filter, "
          "mean | nearest - t, mean / max abs | on screen - t, mean / max abs |")
    print("|---|---|---|---|---|---|")
    for name, rate in RATES.items():
        starts = np.array([float(i / Fraction(rate)) for i in range(int(20 * rate))])
        times = np.arange(19 * OUT_FPS) / OUT_FPS
        ref, near, screen = fps_filter(starts, times, OUT_FPS), nearest_frames(starts, times), on_screen(starts, times)
        ms = lambda idx: (starts[idx] - times) * 1e3  # noqa: E731
        print(f"| {name} | {np.mean(near != ref) * 100:.1f} % | {(starts[near] - starts[ref]).mean() * 1e3:+.1f} ms | "
              f"{(starts[screen] - starts[ref]).mean() * 1e3:+.1f} ms | {ms(near).mean():+.1f} / "
              f"{np.abs(ms(near)).max():.1f} ms | {ms(screen).mean():+.1f} / {np.abs(ms(screen)).max():.1f} ms |")


if __name__ == "__main__":
    main()

"""Loader throughput against the raw decord decode rate of the same files (issue 3, point 7).

For every clip, both sides decode the same 5 s window at 25 fps resized to short side 256:

* **raw decord**: ``VideoReader(path, width, height).get_batch(indices)`` and nothing else;
* **loader**: the suite's :class:`~avsync.data_modules.AVClipDataset` item — header probe,
  timestamp-based frame choice, decord frames, PyAV audio decode + resampling to 16 kHz, the
  224 crop, the label — through a ``DataLoader`` with 0 (same process, like raw) or N workers.

Raw and same-process loader reads alternate clip by clip, so a busy machine slows both alike;
the table gives the median clips/s of the repeats and the ratio. The worker row includes the
workers' start-up. Usage::

    python benchmarks/loader_throughput.py [clip.mp4 ...] [--repeats 5] [--workers 2] [--quick]
    # default clips: the real fixtures (../shared/fixtures/real); table -> benchmarks/results/
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import decord
import numpy as np
from torch.utils.data import DataLoader

from avsync.data_modules import AVClipDataset, ClipRecord
from avsync.inputs import InputSpec
from avsync.media import probe
from avsync.offsets import CropPlan, FixedOffsets, RandomOffsetSampler, get_grid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import header  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("AVSYNC_SHARED", REPO.parent / "shared")) / "fixtures" / "real"
SPEC = InputSpec(fps=25.0, duration_sec=5.0, frame_size=224, resize_short_side=256, sample_rate=16000,
                 offset_classes=21)
START, OFFSET = 2.0, 0.4


def default_clips() -> list[Path]:
    return sorted(FIXTURES.glob("vggsound/*/*.mp4")) + sorted(FIXTURES.glob("lrs3/h264_uncropped*/*/*/*.mp4"))


def raw_decord_one(path: Path) -> None:
    """decord alone: the same frames at the same size."""
    height, width = probe_size[path]
    reader = decord.VideoReader(str(path), width=width, height=height)
    first = int(round(START * reader.get_avg_fps()))
    indices = first + np.round(np.arange(SPEC.num_frames) * reader.get_avg_fps() / SPEC.fps).astype(int)
    reader.get_batch(list(indices)).asnumpy()


def dataset(paths: list[Path]) -> AVClipDataset:
    """The suite's evaluation data set over ``paths``: one fixed plan per clip."""
    records = [ClipRecord(key=f"clip{i}", path=p, duration_sec=probe(p).duration_sec, split="test")
               for i, p in enumerate(paths)]
    fixed = FixedOffsets({r.key: [CropPlan(video_start_sec=START, offset_sec=OFFSET, duration_sec=5.0)]
                          for r in records})
    return AVClipDataset(records, SPEC, False, RandomOffsetSampler(get_grid(21), 5.0, 9.0, 0.05, 0.04), fixed)


def interleaved(paths: list[Path]) -> tuple[float, float]:
    """(raw, loader) clips/s, the two timed clip by clip in turn so that load changes hit both."""
    data, raw_sec, item_sec = dataset(paths), 0.0, 0.0
    for i, path in enumerate(paths):
        t0 = time.perf_counter()
        raw_decord_one(path)
        t1 = time.perf_counter()
        data[i]
        t2 = time.perf_counter()
        raw_sec, item_sec = raw_sec + t1 - t0, item_sec + t2 - t1
    return len(paths) / raw_sec, len(paths) / item_sec


def loader(paths: list[Path], workers: int) -> float:
    """Clips per second through a DataLoader with ``workers`` processes (start-up included)."""
    data = dataset(paths)
    t0 = time.perf_counter()
    for _ in DataLoader(data, batch_size=1, num_workers=workers):
        pass
    return len(paths) / (time.perf_counter() - t0)


probe_size: dict[Path, tuple[int, int]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", type=int, default=4, help="each clip is read this many times per run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="make bench: 3 repeats, each clip read once")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "loader_throughput.md")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.copies = min(args.repeats, 3), 1
    clips = args.clips or default_clips()
    if not clips:
        raise SystemExit("no clips given and no real fixtures found")
    for path in clips:
        info = probe(path)
        scale = SPEC.resize_short_side / min(info.height, info.width)
        probe_size[path] = tuple(max(2, int(s * scale / 2 + 0.5) * 2) for s in (info.height, info.width))
    paths = clips * args.copies
    runs: dict[str, list[float]] = {"raw decord (1 process)": [], "loader, 0 workers": [],
                                    f"loader, {args.workers} workers": []}
    for _ in range(args.repeats):
        raw, item = interleaved(paths)
        runs["raw decord (1 process)"].append(raw)
        runs["loader, 0 workers"].append(item)
        runs[f"loader, {args.workers} workers"].append(loader(paths, args.workers))
    raw = statistics.median(runs["raw decord (1 process)"])
    lines = header("Loader throughput vs raw decord decode", ["benchmarks/loader_throughput.py", *sys.argv[1:]],
                   "cpu") + [
        f"{len(clips)} clip(s) x {args.copies} reads per run, median of {args.repeats} alternating runs; "
        f"5 s at 25 fps, short side 256, 224 crop + 16 kHz audio for the loader. "
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
        f"load average {os.getloadavg()[0]:.1f} at the end (shared machine).",
        "",
        "| reader | clips/s (median) | min | max | x raw decord |",
        "|---|---|---|---|---|",
    ]
    for name, values in runs.items():
        med = statistics.median(values)
        lines.append(f"| {name} | {med:.2f} | {min(values):.2f} | {max(values):.2f} | {med / raw:.2f} |")
    ratio = statistics.median(runs["loader, 0 workers"]) / raw
    lines += ["", f"Same-process ratio: **{ratio:.2f}x** of raw decode (target >= 0.8x): "
              + ("met." if ratio >= 0.8 else "NOT met."), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(runs, args.out.with_suffix(".png"))
    lines += [f"![loader throughput]({args.out.with_suffix('.png').name})", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


def plot(runs: dict[str, list[float]], path: Path) -> None:
    """Median clips/s per reader, whiskers from the slowest to the fastest run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(runs)
    med = [statistics.median(runs[n]) for n in names]
    err = [[m - min(runs[n]) for m, n in zip(med, names)], [max(runs[n]) - m for m, n in zip(med, names)]]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh(names, med, xerr=err, color="tab:purple", capsize=4)
    ax.set_xlabel("clips / s (5 s at 25 fps, 224 px + 16 kHz audio)")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()

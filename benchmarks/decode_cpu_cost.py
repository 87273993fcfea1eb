"""CPU seconds per `read_clip` of the loader's window, counted with process_time (all threads).

A loaded, shared machine makes clips/s swing by 2x between runs (see loader_throughput.md); CPU
time of the same reads is far steadier, so a decoder change is compared with it as well. Every
clip is read once to warm up (and fill the per-file rotation cache), then 5 runs over all clips::

    python benchmarks/decode_cpu_cost.py [clip.mp4 ...]   # default: the real fixtures
"""
from __future__ import annotations

import statistics
import sys
import time

from avsync.media import decode, read_clip
from loader_throughput import START, OFFSET, default_clips


def main() -> None:
    clips = [str(p) for p in (sys.argv[1:] or default_clips())]
    read = lambda path: read_clip(path, START, START + OFFSET, 5.0, 25.0, 16000, size=256)  # noqa: E731
    for path in clips:
        read(path)
    runs = []
    for _ in range(5):
        began = time.process_time()
        for path in clips:
            read(path)
        runs.append((time.process_time() - began) / len(clips))
    print(f"{decode.__file__}: median {statistics.median(runs) * 1e3:.0f} ms CPU per clip "
          f"(runs: {', '.join(f'{r * 1e3:.0f}' for r in runs)})")


if __name__ == "__main__":
    main()

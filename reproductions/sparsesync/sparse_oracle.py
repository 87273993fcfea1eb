"""Is the offset of the toy sparse clips in the model's inputs? The oracle's accuracy per input length.

Runs :mod:`avsync.toy.sparse_oracle` (event transients of the small object's pixels correlated
with the audio onsets, frames block-averaged to the model's 32 x 32) on toy sparse clips, at
every input length of SparseSync's Table 4, on the 3-class grid (acc@1) and the 21-class grid
(acc@1 and +-1 class). With ``--decoded`` it reads the clips the data module reads (H.264/AAC
files of the toy set, decoded with PyAV) instead of rendering them in memory.

    python reproductions/sparsesync/sparse_oracle.py --clips 48 [--decoded] [--split test]
"""
from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

from avsync.toy.generate import clip_rng, generate_toy_set
from avsync.toy.render import render_clip
from avsync.toy.sparse_oracle import oracle_accuracy

LENGTHS = {3: (2.0, 3.0, 4.0, 5.0, 6.0, 7.0), 21: (3.0, 4.0, 5.0, 6.0, 7.0)}  # Table 4's cells


def rendered(split: str, n: int, seed: int):
    return [render_clip("sparse", clip_rng(seed, split, i), duration_sec=10.0, fps=25.0) for i in range(n)]


def decoded(split: str, n: int, seed: int, root: str | None):
    from avsync.media.decode import read_clip
    from avsync.toy.generate import clip_relpath

    set_dir = generate_toy_set(root, "sparse", {split: n}, seed=seed, progress=False)
    clips = []
    for i in range(n):
        d = read_clip(set_dir / clip_relpath(split, i), 0.0, 0.0, 10.0, 25.0, 16000)
        clips.append(SimpleNamespace(frames=d["video"], audio=d["audio"], fps=25.0, sample_rate=16000))
    return clips


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--split", default="test")
    p.add_argument("--seed", type=int, default=0, help="generator seed of the toy set")
    p.add_argument("--draws", type=int, default=8, help="windows (offset, start) drawn per clip and length")
    p.add_argument("--decoded", action="store_true", help="read the encoded toy set instead of rendering")
    p.add_argument("--root", default=None, help="toy cache folder (with --decoded)")
    args = p.parse_args(argv)
    t0 = time.time()
    clips = decoded(args.split, args.clips, args.seed, args.root) if args.decoded else rendered(
        args.split, args.clips, args.seed)
    source = "decoded H.264/AAC" if args.decoded else "rendered"
    print(f"{len(clips)} {source} sparse clips ({args.split}, seed {args.seed}) in {time.time() - t0:.1f} s")
    print("| classes | length (s) | windows | oracle acc@1 | oracle acc ±1 cls | chance acc@1 | chance ±1 cls |")
    print("|---|---|---|---|---|---|---|")
    for num_classes, lengths in LENGTHS.items():
        for length in lengths:
            r = oracle_accuracy(clips, length, num_classes, draws_per_clip=args.draws)
            print(f"| {num_classes} | {length:g} | {r.n} | {100 * r.acc:.1f} | {100 * r.acc_tol:.1f} | "
                  f"{100 * r.chance:.1f} | {100 * r.chance_tol:.1f} |")


if __name__ == "__main__":
    main()

"""Can the toy Synchformer's visual extractor see the sparse events at all, if it is taught to?

Synchformer's counterpart of ``reproductions/sparsesync/extractor_capacity.py`` (same rendered sparse
clips, same windows and labels, imported from there): the toy Motionformer (``synchformer_toy``: 2
layers, 64-d, 8 x 8 px patches, 2-frame tubelets) over 32 x 32 frames (``--size``), from random
weights or a stage-I checkpoint, turns seven adjacent 16-frame segments of a window (4.48 s) into 8
time tokens each; a linear head on every time token (or, ``--per segment``, on each segment's mean
token) is trained *with the event times as labels* (binary cross-entropy: an impact in the token's
or segment's frames), and the test clips' ROC AUC is reported. A
high AUC says the pixels at this resolution and the architecture suffice, so the dense-trained stage
I is blind to the sparse events for want of an objective that makes it look; a low one says the
architecture at this size cannot see them. A diagnostic only: its labels are the generator's event
times, which no recipe may use.

    python reproductions/synchformer/extractor_capacity.py [--steps 150] [--init STAGE1_CKPT] [--size 32]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sparsesync"))
from extractor_capacity import train_event_head, windows  # noqa: E402  (the SparseSync diagnostic's clips, labels, loop)

from avsync.modules.offset_classification import load_matching_weights  # noqa: E402
from avsync.papers.synchformer.network import SegmentInputs, Synchformer, get_config  # noqa: E402

SEGMENTS = 7  # adjacent 16-frame segments: 112 of the window's 125 frames


def load(ckpt: str | None, size: int) -> Synchformer:
    cfg = get_config("synchformer_toy", {"motionformer": {"img_size": size}})
    net = Synchformer(cfg)
    if ckpt:  # a stage-I checkpoint at this --size: every visual extractor tensor must match
        missing = [k for k in load_matching_weights(net, ckpt, prefix="net.") if k.startswith("vfeat")]
        if missing:
            raise ValueError(f"{ckpt}: no visual extractor weights of this size ({missing[:3]})")
    return net


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", default=None, help="stage-I checkpoint to start the extractor from (default: random)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--train-clips", type=int, default=96)
    p.add_argument("--test-clips", type=int, default=24)
    p.add_argument("--size", type=int, default=32, help="frame side (area-averaged from the 96 px render)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=0, help="also report the test AUC every N steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the head's init and the batch draws")
    p.add_argument("--per", choices=("token", "segment"), default="token",
                   help="label and score each 2-frame time token, or each 16-frame segment (its tokens averaged)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = load(args.init, args.size)
    torch.manual_seed(args.seed)
    inputs = SegmentInputs(net.cfg)
    extractor = net.vfeat_extractor.train()
    xtr, ytr = windows("train", args.train_clips, rng, args.size)
    xte, yte = windows("test", args.test_clips, rng, args.size)
    frames = inputs.clip_frames(SEGMENTS, 1.0)
    xtr, ytr, xte, yte = xtr[:, :frames], ytr[:, :frames], xte[:, :frames], yte[:, :frames]
    head = torch.nn.Linear(net.cfg.motionformer.dim, 1)

    def logits(x):
        tokens = extractor(inputs.video(x, SEGMENTS, 1.0, half_precision=False))  # (B, S, t, D)
        if args.per == "segment":  # one step per 16-frame segment, the stage-II token's granularity
            tokens = tokens.mean(2, keepdim=True)
        return head(tokens.flatten(1, 2))[..., 0]  # (B, steps), in time order

    train_event_head(logits, extractor, [*extractor.parameters(), *head.parameters()], (xtr, ytr), (xte, yte), args)


if __name__ == "__main__":
    main()

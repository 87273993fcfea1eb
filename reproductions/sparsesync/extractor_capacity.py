"""Can the toy visual extractor see the sparse events at all, if it is taught to?

Companion of ``extractor_probe.py``: there the frozen extractors' features carry nothing about the
small object's reactions. Here the same architecture (``sparsesync_toy``'s S3D at 1/8 width,
32 x 32 frames by default, ``--size 64`` for a 2 x 2 feature map, 5 s windows), from random
weights or a checkpoint, is trained *with the event
times as labels* (a linear head per output time step, binary cross-entropy) on rendered sparse
clips, and the test clips' ROC AUC is reported. A high AUC says the pixels at this resolution and
the architecture suffice and the contrastive objective is what never made the extractor look at
the object; a low one says the architecture at that size cannot. ``--save`` keeps the trained
extractor (with the rest of the loaded model) as a state dict that a sparse stage can start from
(``init_from``): a diagnostic extractor only, since its labels are the generator's event times.

    python reproductions/sparsesync/extractor_capacity.py [--steps 150] [--init CKPT] [--size 32] [--save PATH]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from extractor_probe import FPS, LENGTH_SEC, downsample, load  # noqa: E402  (run from this folder or with it on sys.path)
from avsync.toy.generate import clip_rng
from avsync.toy.render import render_clip


def windows(split: str, n: int, rng: np.random.Generator, size: int = 32):
    """(frames uint8 (n, T, size, size, 3), per-frame event labels (n, T)) of random 5 s windows."""
    k = int(LENGTH_SEC * FPS)
    xs, ys = [], []
    for i in range(n):
        clip = render_clip("sparse", clip_rng(0, split, i))
        i0 = int(rng.integers(0, len(clip.frames) - k + 1))
        xs.append(downsample(clip.frames[i0:i0 + k], size))
        y = np.zeros(k, np.float32)
        ev = np.round(np.asarray(clip.meta["event_times"]) * FPS).astype(int) - i0
        y[ev[(ev >= 0) & (ev < k)]] = 1
        ys.append(y)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def step_labels(y: torch.Tensor, steps: int) -> torch.Tensor:
    """Per-frame labels -> 'an event in this output step' (max over the step's frames)."""
    return F.adaptive_max_pool1d(y[:, None], steps)[:, 0]


def train_event_head(logits, extractor: torch.nn.Module, params, train, test, args) -> None:
    """Adam on ``params`` for ``args.steps`` batches of 8 training windows, binary cross-entropy of
    ``logits(frames)`` (B, steps) against "an event in this step"; prints the loss and the test ROC AUC
    (every ``args.eval_every`` steps and at the end). ``extractor`` is put in eval mode for testing."""
    from sklearn.metrics import roc_auc_score

    (xtr, ytr), (xte, yte) = train, test
    opt = torch.optim.Adam(params, lr=args.lr)

    def test_auc() -> str:
        extractor.eval()
        with torch.no_grad():
            scores = torch.cat([logits(xte[i:i + 8]) for i in range(0, len(xte), 8)])
        extractor.train()
        target = step_labels(yte, scores.shape[1])
        return (f"event steps {int(target.sum())}/{target.numel()}, ROC AUC "
                f"{roc_auc_score(target.flatten().numpy(), scores.flatten().numpy()):.3f}")

    t0 = time.time()
    for step in range(args.steps):
        idx = torch.randint(0, len(xtr), (8,))
        out = logits(xtr[idx])
        loss = F.binary_cross_entropy_with_logits(out, step_labels(ytr[idx], out.shape[1]), pos_weight=torch.tensor(5.0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
        if args.eval_every and (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            print(f"step {step + 1} test: {test_auc()}", flush=True)
    print(f"test: {test_auc()}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", default=None, help="checkpoint to start the extractor from (default: random)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--train-clips", type=int, default=96)
    p.add_argument("--test-clips", type=int, default=24)
    p.add_argument("--size", type=int, default=32, help="frame side (area-averaged from the 96 px render)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--save", default=None, help="write the model's state dict (the trained visual extractor, the "
                   "rest as loaded) here, for extractor_probe.py or a stage's init_from")
    p.add_argument("--eval-every", type=int, default=0, help="also report the test AUC every N steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the head's init and the batch draws (the clips, "
                   "windows and a random-init extractor stay fixed): how much of a start's AUC is the test's own luck")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = load(args.init, args.size)
    if args.seed:  # seed 0 keeps the draws of the runs recorded in the README
        torch.manual_seed(args.seed)
    net = model.net.vfeat_extractor.train()
    for param in net.parameters():
        param.requires_grad_(True)
    xtr, ytr = windows("train", args.train_clips, rng, args.size)
    xte, yte = windows("test", args.test_clips, rng, args.size)
    with torch.no_grad():
        channels = net(model.frames(xtr[:1]).transpose(1, 2)).shape[1]
    head = torch.nn.Linear(channels, 1)

    def logits(x):
        f = net(model.frames(x).transpose(1, 2))  # (B, C, t, h, w)
        return head(f.mean((3, 4)).transpose(1, 2))[..., 0]  # (B, t)

    train_event_head(logits, net, [*net.parameters(), *head.parameters()], (xtr, ytr), (xte, yte), args)
    if args.save:
        torch.save({"state_dict": model.state_dict()}, args.save)


if __name__ == "__main__":
    main()

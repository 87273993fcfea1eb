"""Do the frozen toy extractors see the sparse events? A linear probe per feature time step.

The sparse stages train the selectors and the transformer over *frozen* extractors (the feature
bank recipe). If the extractors' outputs carry no trace of the small object's reactions, no
amount of training downstream can find the offset. This script renders sparse clips (the
variant the sparse stages read, at the model's 32 x 32 or ``--size``), runs a checkpoint's frozen video and
audio extractors over a 5 s window, labels each output time step "an event falls in it" or not,
fits a logistic regression on training clips and reports its ROC AUC on test clips (0.5 = the
features say nothing about the events). A randomly initialised model is the control.

    python reproductions/sparsesync/extractor_probe.py [--size 32] [CKPT ...]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from avsync.papers.sparsesync.module import SparseSyncModule
from avsync.toy.generate import clip_rng
from avsync.toy.render import render_clip

LENGTH_SEC, START_SEC, FPS, SR = 5.0, 2.0, 25, 16000


def downsample(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W, 3) -> (T, size, size, 3) by area averaging (block means when size divides H;
    otherwise each output pixel averages the source pixels its window touches: adaptive average pooling)."""
    x = torch.from_numpy(frames.astype(np.float32)).permute(0, 3, 1, 2)
    x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    return x.permute(0, 2, 3, 1).round().clamp(0, 255).numpy().astype(np.uint8)


def load(ckpt: str | None, size: int = 32) -> SparseSyncModule:
    model = SparseSyncModule(arch="sparsesync_toy", input_overrides={"frame_size": size, "resize_short_side": size},
                             freeze_extractors=True)
    if ckpt:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        result = model.load_state_dict(state.get("state_dict", state), strict=False)
        names = [k for k in result.missing_keys if "extractor" in k]
        if names:
            raise ValueError(f"{ckpt}: no extractor weights ({names[:3]})")
    return model.eval()


def features(model: SparseSyncModule, split: str, n: int, size: int = 32):
    """(per-step video features, labels, per-step audio features, labels) over n clips."""
    encode_video, encode_audio = model.frozen_encoders()
    out = ([], [], [], [])
    i0, k = int(START_SEC * FPS), int(LENGTH_SEC * FPS)
    for i in range(n):
        clip = render_clip("sparse", clip_rng(0, split, i))
        small = downsample(clip.frames[i0:i0 + k], size)
        v = encode_video(torch.from_numpy(small)[None])[0]  # (C, t, h, w)
        a = encode_audio(torch.from_numpy(clip.audio[int(START_SEC * SR):int((START_SEC + LENGTH_SEC) * SR)])[None])[0]
        events = np.asarray(clip.meta["event_times"]) - START_SEC
        events = events[(events >= 0) & (events < LENGTH_SEC)]
        for feat, (fx, fy) in ((v, (0, 1)), (a, (2, 3))):
            steps = feat.shape[-1] if feat is a else feat.shape[1]
            x = feat.movedim(-1, 0) if feat is a else feat.movedim(1, 0)
            y = np.zeros(steps)
            y[(events / LENGTH_SEC * steps).astype(int)] = 1
            out[fx].append(x.reshape(steps, -1).numpy())
            out[fy].append(y)
    return [np.concatenate(o) for o in out]


def fit_probe(x: np.ndarray, y: np.ndarray):
    """The linear probe: standardised features -> logistic regression; returns x -> P(event in the step)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scale = StandardScaler().fit(x)
    clf = LogisticRegression(C=0.1, max_iter=2000).fit(scale.transform(x), y)
    return lambda features: clf.predict_proba(scale.transform(features))[:, 1]


def probe_auc(train, test) -> tuple[float, float]:
    from sklearn.metrics import roc_auc_score

    aucs = [roc_auc_score(test[s + 1], fit_probe(train[s], train[s + 1])(test[s])) for s in (0, 2)]
    return aucs[0], aucs[1]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ckpts", nargs="*", help="checkpoints (Lightning or state dicts) of SparseSyncModule/pre-training")
    p.add_argument("--train-clips", type=int, default=48)
    p.add_argument("--test-clips", type=int, default=24)
    p.add_argument("--size", type=int, default=32, help="frame side fed to the extractors (area-averaged from the 96 px render)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"frames {args.size} x {args.size}")
    print("| extractors | video AUC | audio AUC | seconds |")
    print("|---|---|---|---|")
    for ckpt in [None, *args.ckpts]:
        torch.manual_seed(0)
        t0 = time.time()
        model = load(ckpt, args.size)
        v_auc, a_auc = probe_auc(features(model, "train", args.train_clips, args.size),
                                 features(model, "test", args.test_clips, args.size))
        print(f"| {ckpt or 'random init (control)'} | {v_auc:.3f} | {a_auc:.3f} | {time.time() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()

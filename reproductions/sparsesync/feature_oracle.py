"""Is the sparse offset in the *frozen features*? A cross-correlation oracle over linear probes.

``sparse_oracle.py`` shows the offset is in the pixels and samples; ``extractor_probe.py`` shows
whether a linear probe finds the events in an extractor's per-step features. This script asks the
question in between, the one the sparse stage faces: given the frozen video and audio features of
a window pair (video over [s, s + L), audio over [s + o, s + o + L), o on the 3-class grid), can
the offset be read from them by the simplest rule? A logistic probe per modality (fit on training
clips' per-step features against "an event falls in this step", as in ``extractor_probe.py``)
turns each window into an event-probability curve; the predicted offset is the candidate whose
shift makes the two curves correlate best. High accuracy means the features carry the offset and
a failure downstream is the sparse stage's own; chance means the features are the bottleneck.

    python reproductions/sparsesync/feature_oracle.py --size 64 --ckpt CKPT [--length 5]

The probes use the generator's event times (as ``extractor_probe.py`` does): this is a
diagnostic of what the features hold, not a model.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from extractor_probe import FPS, SR, downsample, features, fit_probe, load
from avsync.toy.generate import clip_rng
from avsync.toy.render import render_clip

GRID = (-1.0, 0.0, 1.0)
CLIP_SEC = 10.0


def fit_probes(model, size: int, n: int):
    """The video and the audio probe, fit on ``n`` training clips as ``extractor_probe.py`` fits them."""
    train = features(model, "train", n, size)
    return [fit_probe(train[s], train[s + 1]) for s in (0, 2)]


def curve(feat: torch.Tensor, probe, video: bool, length: float, bins: np.ndarray) -> np.ndarray:
    """Event probability per output step, resampled at ``bins`` (seconds into the window)."""
    steps = feat.shape[1] if video else feat.shape[-1]
    x = (feat.movedim(1, 0) if video else feat.movedim(-1, 0)).reshape(steps, -1).numpy()
    centres = (np.arange(steps) + 0.5) * length / steps
    return np.interp(bins, centres, probe(x))


def predict(pv: np.ndarray, pa: np.ndarray, hop: float) -> float:
    """The grid offset whose shift (audio time t shown at video time t + c) best aligns the curves."""
    scores = []
    for c in GRID:
        k = int(round(c / hop))
        v, a = (pv[k:], pa[:len(pa) - k]) if k >= 0 else (pv[:k], pa[-k:])
        v, a = v - v.mean(), a - a.mean()
        scores.append(float((v * a).sum() / (np.linalg.norm(v) * np.linalg.norm(a) + 1e-9)))
    return GRID[int(np.argmax(scores))]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", default=None, help="checkpoint whose frozen extractors are read (none: random init)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--length", type=float, default=5.0, help="window length in seconds")
    p.add_argument("--train-clips", type=int, default=96)
    p.add_argument("--test-clips", type=int, default=48)
    p.add_argument("--windows", type=int, default=4, help="windows per test clip")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    t0 = time.time()
    model = load(args.ckpt, args.size)
    probe_v, probe_a = fit_probes(model, args.size, args.train_clips)
    encode_video, encode_audio = model.frozen_encoders()
    hop = 0.04
    bins = np.arange(0.0, args.length, hop) + hop / 2
    rng = np.random.default_rng(0)
    truth, guess = [], []
    for i in range(args.test_clips):
        clip = render_clip("sparse", clip_rng(0, "test", i))
        for _ in range(args.windows):
            o = float(rng.choice(GRID))
            s = rng.uniform(max(0.0, -o), CLIP_SEC - args.length - max(0.0, o))
            f0, fa = int(round(s * FPS)), int(round((s + o) * SR))
            frames = downsample(clip.frames[f0:f0 + int(args.length * FPS)], args.size)
            with torch.inference_mode():
                v = encode_video(torch.from_numpy(frames)[None])[0]
                a = encode_audio(torch.from_numpy(clip.audio[fa:fa + int(args.length * SR)])[None])[0]
            pv = curve(v, probe_v, True, args.length, bins)
            pa = curve(a, probe_a, False, args.length, bins)
            truth.append(o)
            guess.append(predict(pv, pa, hop))
    truth, guess = np.asarray(truth), np.asarray(guess)
    shares = {c: float((truth == c).mean()) for c in GRID}
    print(f"extractors: {args.ckpt or 'random init'}; frames {args.size} px; window {args.length} s; "
          f"{len(truth)} windows ({args.test_clips} test clips); probes fit on {args.train_clips} training clips")
    print(f"acc@1 {100 * (truth == guess).mean():.1f} % (chance 33.3 %; majority class {100 * max(shares.values()):.1f} %); "
          "per class " + ", ".join(f"{c:+.0f} s: {100 * (guess[truth == c] == c).mean():.0f} %" for c in GRID)
          + f"; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

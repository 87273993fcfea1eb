"""``avsync probe-artefacts``: does a set of clips leak *where in the clip* a trim starts?

SparseSync §4 (Table 1): a synchronisation model can cheat when a codec leaves periodic marks —
MPEG-4 Part 2 key frames every 12 frames, AAC frames at high sample rates — because the crop
position then tells the offset. The test: train a classifier to predict the start of a 5 s trim
of a 10 s clip on a 0.1 s grid (50 classes); content cannot reveal the start, so anything above
chance (acc@1 2 %, acc@5 10 %) is an artefact.

As in the paper, the classifier is a ResNet18 (torchvision, from scratch) with a linear head:
for ``video`` its input is the trim's frames at 10 fps (one per grid step) stacked as channels
(50 x 3), resized to ``size``; for ``audio`` it is the log-magnitude STFT of the trim at the
file's own sample rate (no resampling, which would smooth codec marks away). Clips are decoded
once and kept in memory; each training item is a random clip at a random start class. The
clips are split by file: validation clips are never trained on, and every one is scored at all
50 starts.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from avsync.media import MediaError, probe, read_audio, read_frames

__all__ = ["ProbeConfig", "ProbeResult", "load_clips", "run_probe", "main"]

log = logging.getLogger(__name__)

NUM_CLASSES = 50      # starts 0.0, 0.1, ..., 4.9 s
STEP_SEC = 0.1
TRIM_SEC = 5.0
CLIP_SEC = NUM_CLASSES * STEP_SEC + TRIM_SEC  # 10 s


@dataclass(frozen=True)
class ProbeConfig:
    stream: str = "audio"            # "audio" or "video"
    steps: int = 300
    batch_size: int = 16
    lr: float = 1e-3
    size: int = 64                   # video: frame side after resizing
    n_fft: int = 512                 # audio: STFT size and hop at the file's rate
    hop: int = 256
    valid_fraction: float = 0.25
    seed: int = 0


@dataclass
class ProbeResult:
    stream: str
    clips_train: int
    clips_valid: int
    acc1: float
    acc5: float
    chance1: float = 1 / NUM_CLASSES
    chance5: float = 5 / NUM_CLASSES
    seconds: float = 0.0

    @property
    def leaks(self) -> bool:
        """Clearly above chance: acc@1 at least 3x chance (6 %) or acc@5 at least 2x (20 %)."""
        return self.acc1 >= 3 * self.chance1 or self.acc5 >= 2 * self.chance5


# ---------------------------------------------------------------------------- data
def load_clips(paths: list[Path], stream: str, size: int = 64) -> list[np.ndarray]:
    """Each clip's first 10 s: video (100, size, size, 3) uint8 at 10 fps, or audio (S,) at the
    file's rate. Unreadable or short clips are skipped with a warning."""
    out = []
    for path in paths:
        try:
            if stream == "video":
                out.append(read_frames(path, 0.0, CLIP_SEC, 1 / STEP_SEC, size=(size, size)))
            else:
                rate = probe(path).audio_sample_rate
                out.append(read_audio(path, 0.0, CLIP_SEC, sample_rate=rate))
        except MediaError as err:
            log.warning("probe-artefacts: skipping %s", err)
    return out


def _trim(clip: np.ndarray, cls: int, stream: str) -> np.ndarray:
    if stream == "video":
        return clip[cls : cls + int(TRIM_SEC / STEP_SEC)]
    per_class = len(clip) / (CLIP_SEC / STEP_SEC)
    start, length = int(round(cls * per_class)), int(round(TRIM_SEC / STEP_SEC * per_class))
    return clip[start : start + length]


class _Inputs(nn.Module):
    """Trims -> network input: stacked frames (B, 150, H, W) or a log STFT (B, 1, F, T)."""

    def __init__(self, stream: str, n_fft: int, hop: int) -> None:
        super().__init__()
        self.stream, self.n_fft, self.hop = stream, n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, trims: torch.Tensor) -> torch.Tensor:
        if self.stream == "video":  # (B, T, H, W, 3) uint8
            x = trims.float().div(255.0).permute(0, 1, 4, 2, 3)
            return (x.flatten(1, 2) - 0.5) / 0.25
        spec = torch.stft(trims, self.n_fft, self.hop, window=self.window, return_complex=True).abs()
        return torch.log(spec + 1e-6).unsqueeze(1)


def _network(stream: str) -> nn.Module:
    net = torchvision.models.resnet18(weights=None, num_classes=NUM_CLASSES)
    channels = 3 * int(TRIM_SEC / STEP_SEC) if stream == "video" else 1
    net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


# ---------------------------------------------------------------------------- training
def run_probe(paths: list[Path], config: ProbeConfig = ProbeConfig()) -> ProbeResult:
    """Train the start-time classifier on part of ``paths`` and score it on the rest."""
    if config.stream not in ("audio", "video"):
        raise ValueError(f"stream must be 'audio' or 'video', got {config.stream!r}")
    clips = load_clips(sorted(Path(p) for p in paths), config.stream, config.size)
    if len(clips) < 2:
        raise ValueError(f"need at least 2 readable clips of >= {CLIP_SEC:g} s, got {len(clips)}")
    n_valid = max(1, int(round(len(clips) * config.valid_fraction)))
    order = np.random.default_rng(config.seed).permutation(len(clips))
    valid, train = [clips[i] for i in order[:n_valid]], [clips[i] for i in order[n_valid:]]
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + 1)
    inputs, net = _Inputs(config.stream, config.n_fft, config.hop), _network(config.stream)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    t0 = time.time()
    net.train()
    for step in range(config.steps):
        which = rng.integers(len(train), size=config.batch_size)
        labels = rng.integers(NUM_CLASSES, size=config.batch_size)
        batch = torch.from_numpy(np.stack([_trim(train[w], c, config.stream) for w, c in zip(which, labels)]))
        loss = F.cross_entropy(net(inputs(batch)), torch.from_numpy(labels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 50 == 0:
            log.info("probe-artefacts %s: step %d loss %.3f", config.stream, step, loss.item())
    acc1, acc5 = _evaluate(net, inputs, valid, config)
    return ProbeResult(config.stream, len(train), len(valid), acc1, acc5, seconds=time.time() - t0)


@torch.no_grad()
def _evaluate(net: nn.Module, inputs: nn.Module, clips: list[np.ndarray], config: ProbeConfig) -> tuple[float, float]:
    net.eval()
    hits1 = hits5 = total = 0
    labels = torch.arange(NUM_CLASSES)
    for clip in clips:
        for start in range(0, NUM_CLASSES, config.batch_size):
            cls = labels[start : start + config.batch_size]
            batch = torch.from_numpy(np.stack([_trim(clip, int(c), config.stream) for c in cls]))
            top5 = net(inputs(batch)).topk(5, dim=1).indices
            hits1 += int((top5[:, 0] == cls).sum())
            hits5 += int((top5 == cls[:, None]).any(dim=1).sum())
            total += len(cls)
    return hits1 / total, hits5 / total


# ---------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="avsync probe-artefacts",
        description="Train a start-time classifier (50 starts at 0.1 s, 5 s trims of 10 s clips) on a folder of "
                    "clips; accuracy above chance (2 %% / 10 %%) means the files leak codec artefacts.")
    parser.add_argument("clips", type=Path, help="folder of clips (searched recursively) of at least 10 s")
    parser.add_argument("--stream", choices=("audio", "video"), default="audio")
    for name, field in ProbeConfig.__dataclass_fields__.items():
        if name != "stream":
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(field.default), default=field.default)
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = ProbeConfig(**{k: getattr(args, k) for k in ProbeConfig.__dataclass_fields__})
    paths = sorted(p for ext in ("*.mp4", "*.mkv", "*.mov") for p in args.clips.rglob(ext))
    result = run_probe(paths, config)
    verdict = "LEAKS temporal artefacts" if result.leaks else "no leak detected"
    print(f"{args.clips} [{result.stream}]: acc@1 {100 * result.acc1:.1f} % (chance {100 * result.chance1:.0f} %), "
          f"acc@5 {100 * result.acc5:.1f} % (chance {100 * result.chance5:.0f} %) on {result.clips_valid} held-out "
          f"clips x 50 starts: {verdict}")
    if args.out:
        args.out.write_text(json.dumps({**asdict(result), "leaks": result.leaks, "config": asdict(config)}, indent=1))
    return 0

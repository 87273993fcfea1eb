"""``avsync probe-artefacts``: does a set of clips leak *where in the clip* a trim starts?

SparseSync §4 (Table 1): a synchronisation model can cheat when a codec leaves marks that depend
on the time in the file — MPEG-4 Part 2 key frames every 12 frames, AAC at high sample rates —
because the crop position then tells the offset. The test: train a classifier to predict the
start of a 5 s trim of a 10 s clip on a 0.1 s grid (50 classes); content cannot reveal the start,
so anything above chance (acc@1 2 %, acc@5 10 %) is an artefact.

As in the paper (supplement, training details), the classifier is a ResNet18 (torchvision, from
scratch) followed by a *spatial* average pooling and a dense layer: the pooling keeps the time
axis, so the dense layer sees when in the trim something happens. For ``video`` the trunk runs on
each of the trim's 50 frames at 10 fps (one per grid step), given as the first frame and then the
difference into each next frame (the same stack, re-parameterised so that a key-frame refresh,
SparseSync Fig. 6, is visible in one frame's input); for ``audio`` on a log-power STFT of the trim
at the file's own sample rate (no resampling, which would smooth codec marks away), pooled over
frequency. Clips are decoded once and kept in memory; each training item is a random clip at a
random start class. The clips are split by file: validation clips are never trained on, and
every one is scored at all 50 starts.

Cheaper inputs than the paper's, so that a probe costs minutes on a CPU, chosen to keep what a
codec mark looks like: video frames are tiny (``size`` 8 px: a key-frame refresh changes the
whole frame, so it survives downsampling — on the toy mpeg4 set the refresh phase is found from
the frame differences alone in 99 % of trims at 32, 16 and 8 px); ``crop_px`` optionally shows the
network a random window (centre in evaluation). Audio is a log-power STFT of the whole 5 s trim
with a hop of one AAC frame (``hop`` 1024 samples) and the frequency axis average-pooled into
``bands`` bands. That keeps slow drifts and the start-up transient of an encoder (what AAC at
44.1 kHz leaks here, see reproductions/sparsesync/README.md); a mark with a period shorter than
the hop needs a finer ``hop``, which may be paid for with ``crop_sec`` (only the trim's first
seconds: a periodic mark sits at the same phase relative to the trim start over the whole trim).
The task is unchanged: the start class of a 5 s trim.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from avsync.media import MediaError, probe, read_audio, read_frames

__all__ = ["ProbeConfig", "ProbeResult", "load_clips", "probe_clips", "run_probe", "main"]

log = logging.getLogger(__name__)

NUM_CLASSES = 50      # starts 0.0, 0.1, ..., 4.9 s
STEP_SEC = 0.1
TRIM_SEC = 5.0
CLIP_SEC = NUM_CLASSES * STEP_SEC + TRIM_SEC  # 10 s


@dataclass(frozen=True)
class ProbeConfig:
    stream: str = "audio"            # "audio" or "video"
    arch: str = "resnet18"           # the paper's ResNet18, or "small" (tests)
    steps: int = 300
    batch_size: int = 16
    lr: float = 1e-3
    size: int = 8                    # video: frame side after resizing
    crop_px: int = 0                 # video: side of the window the network sees (random in training, centre in
                                     # evaluation; 0: the whole frame)
    n_fft: int = 2048                # audio: STFT size and hop (samples at the file's rate)
    hop: int = 1024
    bands: int = 16                  # audio: frequency bins average-pooled into this many bands (0: all)
    crop_sec: float = 0.0            # audio: seconds of the trim's beginning fed to the network (0: all 5 s)
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


def _window(trim: np.ndarray, crop_px: int, rng: np.random.Generator | None) -> np.ndarray:
    """A crop_px x crop_px window of every frame of a video trim, at the same place in all frames:
    random with ``rng`` (training), central without. A key-frame refresh changes the whole frame,
    so any window shows it, while the scene content seen at one start differs from draw to draw
    (with whole frames, a few clips are memorised in a few hundred steps and nothing generalises)."""
    if trim.ndim != 4 or not crop_px:
        return trim
    height, width = trim.shape[1:3]
    if crop_px > min(height, width):
        raise ValueError(f"crop_px {crop_px} is larger than the frames ({height}x{width})")
    if rng is None:
        top, left = (height - crop_px) // 2, (width - crop_px) // 2
    else:
        top, left = int(rng.integers(height - crop_px + 1)), int(rng.integers(width - crop_px + 1))
    return trim[:, top : top + crop_px, left : left + crop_px]


def _trim(clip: np.ndarray, cls: int, stream: str) -> np.ndarray:
    if stream == "video":
        return clip[cls : cls + int(TRIM_SEC / STEP_SEC)]
    per_class = len(clip) / (CLIP_SEC / STEP_SEC)
    start, length = int(round(cls * per_class)), int(round(TRIM_SEC / STEP_SEC * per_class))
    return clip[start : start + length]


class _Inputs(nn.Module):
    """Trims -> network input: stacked frames as first frame + 49 frame differences (B, 150, H, W),
    or a log band-power STFT (B, 1, bands, T)."""

    def __init__(self, stream: str, n_fft: int, hop: int, bands: int = 0, crop: int = 0) -> None:
        super().__init__()
        self.stream, self.n_fft, self.hop, self.bands, self.crop = stream, n_fft, hop, bands, crop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, trims: torch.Tensor) -> torch.Tensor:
        if self.stream == "video":  # (B, T, H, W, 3) uint8
            x = trims.float().div(255.0).permute(0, 1, 4, 2, 3)
            # the first frame, then the change into each next frame: the same stack re-parameterised
            # (lossless) so that a per-frame change such as a key-frame refresh (SparseSync Fig. 6) is
            # one input channel away instead of a difference the first convolution must learn; with
            # raw frames ResNet18 stayed at chance for 350 steps on mpeg4 (measured)
            return torch.cat([x[:, :1] - 0.5, x.diff(dim=1)], dim=1) / 0.25  # (B, T, 3, H, W)
        if self.crop:
            trims = trims[:, : self.crop]
        # center=False: column t covers samples [t * hop, t * hop + n_fft) of the trim exactly
        power = torch.stft(trims, self.n_fft, self.hop, window=self.window, center=False,
                           return_complex=True).abs().square()
        if self.bands:  # average bins into bands (the top bins that do not fill a band are dropped)
            width = power.shape[1] // self.bands
            power = power[:, : width * self.bands].unflatten(1, (self.bands, width)).mean(2)
        # no per-trim centring: a level that changes along the clip is itself a leak
        return torch.log10(power / self.n_fft + 1e-10).unsqueeze(1)


NETWORKS = ("resnet18", "small")


class _TimeClassifier(nn.Module):
    """A 2-D trunk, average pooling over the *spatial* axes only, and a dense layer over time x channels.

    SparseSync (supplement, training details): "a ResNet18 followed by a spatial average pooling
    and a dense layer as a classification head for both audio and visual inputs". Pooling only
    the spatial axes keeps *when* something happens within the trim in front of the dense layer,
    which is what a start-time probe reads: the trunk runs on each frame (video: H x W pooled) or
    on the spectrogram (audio: frequency pooled, the trunk's time steps kept).
    """

    def __init__(self, trunk: nn.Module, channels: int, steps: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(channels * steps, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 5:  # video (B, T, 3, H, W): one image per frame
            features = self.trunk(x.flatten(0, 1)).mean(dim=(2, 3)).unflatten(0, x.shape[:2])  # (B, T, C)
        else:  # audio (B, 1, F, T)
            features = self.trunk(x).mean(dim=2).transpose(1, 2)  # (B, T', C)
        return self.head(features.flatten(1))


def _trunk(arch: str, channels: int) -> tuple[nn.Module, int]:
    """ResNet18 up to its last stage (torchvision, from scratch), or three small convolutions."""
    if arch == "resnet18":
        net = torchvision.models.resnet18(weights=None)
        if channels != 3:
            net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        return nn.Sequential(*list(net.children())[:-2]), 512
    if arch == "small":
        layers, width = [], channels
        for out, stride in ((32, 1), (32, 2), (64, 2)):
            layers += [nn.Conv2d(width, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            width = out
        return nn.Sequential(*layers), width
    raise ValueError(f"arch must be one of {NETWORKS}, got {arch!r}")


def _network(arch: str, example: torch.Tensor) -> nn.Module:
    """The classifier for inputs shaped like ``example`` (one network input batch)."""
    trunk, channels = _trunk(arch, 3 if example.ndim == 5 else 1)
    with torch.no_grad():
        steps = example.shape[1] if example.ndim == 5 else trunk.eval()(example[:1]).shape[-1]
    return _TimeClassifier(trunk.train(), channels, steps)


# ---------------------------------------------------------------------------- training
def run_probe(paths: list[Path], config: ProbeConfig = ProbeConfig()) -> ProbeResult:
    """Train the start-time classifier on part of ``paths`` and score it on the rest."""
    if config.stream not in ("audio", "video"):
        raise ValueError(f"stream must be 'audio' or 'video', got {config.stream!r}")
    clips = load_clips(sorted(Path(p) for p in paths), config.stream, config.size)
    return probe_clips(clips, config)


def probe_clips(clips: list[np.ndarray], config: ProbeConfig = ProbeConfig()) -> ProbeResult:
    """``run_probe`` on clips already in memory: 10 s each, video (100, H, W, 3) uint8 at 10 fps
    or audio (S,) float at any one rate (tests plant marks here without encoding files)."""
    if config.stream not in ("audio", "video"):
        raise ValueError(f"stream must be 'audio' or 'video', got {config.stream!r}")
    if len(clips) < 2:
        raise ValueError(f"need at least 2 readable clips of >= {CLIP_SEC:g} s, got {len(clips)}")
    if len({len(c) for c in clips}) != 1:
        raise ValueError(f"clips must all have the same length, got {sorted({len(c) for c in clips})}")
    n_valid = max(1, int(round(len(clips) * config.valid_fraction)))
    order = np.random.default_rng(config.seed).permutation(len(clips))
    valid, train = [clips[i] for i in order[:n_valid]], [clips[i] for i in order[n_valid:]]
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + 1)
    crop = int(round(config.crop_sec * len(clips[0]) / CLIP_SEC)) if config.stream == "audio" else 0
    if crop and crop < config.n_fft:
        raise ValueError(f"crop_sec {config.crop_sec} keeps {crop} samples, fewer than n_fft {config.n_fft}")
    inputs = _Inputs(config.stream, config.n_fft, config.hop, config.bands, crop)
    example = inputs(torch.from_numpy(np.stack([_window(_trim(train[0], 0, config.stream), config.crop_px, None)])))
    net = _network(config.arch, example)
    # fused: one kernel per step instead of one per tensor; the unfused update of ResNet18's 11M weights
    # cost as much as the forward and backward passes on the small inputs used here (measured)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr, fused=True)
    t0 = time.time()
    net.train()
    hits = 0
    for step in range(config.steps):
        which = rng.integers(len(train), size=config.batch_size)
        labels = rng.integers(NUM_CLASSES, size=config.batch_size)
        batch = torch.from_numpy(np.stack([_window(_trim(train[w], c, config.stream), config.crop_px, rng)
                                           for w, c in zip(which, labels)]))
        logits = net(inputs(batch))
        loss = F.cross_entropy(logits, torch.from_numpy(labels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        hits += int((logits.argmax(1).numpy() == labels).sum())
        if (step + 1) % 50 == 0:  # training accuracy over the last 50 steps: is it learning at all?
            log.info("probe-artefacts %s: step %d loss %.3f train acc@1 %.1f %%", config.stream, step + 1,
                     loss.item(), 100 * hits / (50 * config.batch_size))
            hits = 0
    _settle_batch_norm(net, inputs, train, config, rng)
    acc1, acc5 = _evaluate(net, inputs, valid, config)
    return ProbeResult(config.stream, len(train), len(valid), acc1, acc5, seconds=time.time() - t0)


@torch.no_grad()
def _settle_batch_norm(net: nn.Module, inputs: nn.Module, train: list[np.ndarray], config: ProbeConfig,
                       rng: np.random.Generator, batches: int = 20) -> None:
    """Recompute the batch-norm statistics for the final weights (a plain mean over ``batches``
    training batches) before evaluating, instead of the running averages, which trail the weights.
    Without this, a probe at 10 % training accuracy on AAC 44.1 kHz predicted one class for every
    held-out trim (acc@1 / acc@5 exactly 2 % / 10 %); stale statistics are the usual cause of that,
    and recomputing them costs 20 forward passes."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    net.train()
    for _ in range(batches):
        which = rng.integers(len(train), size=config.batch_size)
        labels = rng.integers(NUM_CLASSES, size=config.batch_size)
        net(inputs(torch.from_numpy(np.stack([_window(_trim(train[w], c, config.stream), config.crop_px, rng)
                                               for w, c in zip(which, labels)]))))


@torch.no_grad()
def _evaluate(net: nn.Module, inputs: nn.Module, clips: list[np.ndarray], config: ProbeConfig) -> tuple[float, float]:
    net.eval()
    hits1 = hits5 = total = 0
    labels = torch.arange(NUM_CLASSES)
    for clip in clips:
        for start in range(0, NUM_CLASSES, config.batch_size):
            cls = labels[start : start + config.batch_size]
            batch = torch.from_numpy(np.stack([_window(_trim(clip, int(c), config.stream), config.crop_px, None)
                                               for c in cls]))
            top5 = net(inputs(batch)).topk(5, dim=1).indices
            hits1 += int((top5[:, 0] == cls).sum())
            hits5 += int((top5 == cls[:, None]).any(dim=1).sum())
            total += len(cls)
    return hits1 / total, hits5 / total


# ---------------------------------------------------------------------------- command line
def _mixed_sample_rates(paths: list[Path]) -> str | None:
    """Why the audio probe refuses a folder of several sample rates, or None. It reads each file at its
    own rate on purpose (resampling would smooth the codec marks away), so the clips of one run must
    share a rate: probe each rate's files separately."""
    rates: dict[int, int] = {}
    for path in paths:
        try:
            rate = probe(path).audio_sample_rate
        except MediaError:
            continue  # skipped with a warning later, as any unreadable clip
        if rate:
            rates[rate] = rates.get(rate, 0) + 1
    if len(rates) < 2:
        return None
    counts = ", ".join(f"{n} at {r} Hz" for r, n in sorted(rates.items()))
    return (f"the clips have several audio sample rates ({counts}); the probe reads each file at its own rate "
            "(resampling would hide codec marks), so run it on the files of one rate at a time")


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
    refusal = _mixed_sample_rates(paths) if config.stream == "audio" else None
    if refusal:
        print(f"avsync probe-artefacts: {refusal}", file=sys.stderr)
        return 2
    try:
        result = run_probe(paths, config)
    except ValueError as err:  # too few clips, clips of different lengths: one line, not a traceback
        print(f"avsync probe-artefacts: {args.clips}: {err}", file=sys.stderr)
        return 2
    verdict = "LEAKS temporal artefacts" if result.leaks else "no leak detected"
    print(f"{args.clips} [{result.stream}]: acc@1 {100 * result.acc1:.1f} % (chance {100 * result.chance1:.0f} %), "
          f"acc@5 {100 * result.acc5:.1f} % (chance {100 * result.chance5:.0f} %) on {result.clips_valid} held-out "
          f"clips x 50 starts: {verdict}")
    if args.out:
        args.out.write_text(json.dumps({**asdict(result), "leaks": result.leaks, "config": asdict(config)}, indent=1))
    return 0

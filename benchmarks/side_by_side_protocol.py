"""What the two sides of ``side_by_side.py`` share: the rows, their inputs and the worker loop.

Imported by the avsync worker and by the authors' worker (which runs in the authors' Python
environment), so it needs only the standard library and torch. Each worker builds one row's
model and input, then answers ``call`` lines on stdin with one timed call each (a JSON line on
stdout); the driver alternates the two workers call by call.

Inputs of the step rows are random tensors of exactly the authors' shapes, drawn from one seed,
so both sides see the same numbers (the avsync side only permutes them into its layout, outside
the timed call). Weights on both sides are ``avsync.convert.synthetic_weights`` of the authors'
state-dict layout, so they are the same too.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "real"
LRS3_FACE = "lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
LRS3_FULL = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
VGGSOUND = "vggsound/h264_video_25fps_256side_16000hz_aac/3qesirWAGt4_20000_30000.mp4"
VOCALIST_FRAMES = 40  # the VocaLiST golden's clip length: the authors' test scores 31 pairs per window one by one


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    kind: str            # "train" (forward + backward + optimiser step), "infer" (one clip), "loader" (one item)
    batch: int           # default batch of a training row (1 for an inference row)
    what: str            # what each side runs, for the table


ROWS: dict[str, Row] = {r.key: r for r in [
    Row("syncnet_train", "SyncNet training step", "train", 16,
        "5-frame 224 px BGR windows + 13x20 MFCC, contrastive loss (margin 20), Adam"),
    Row("vocalist_train", "VocaLiST training step", "train", 16,
        "5 mouth frames 48x96 + 3,200-sample wav -> mel in the step (as their train loop), BCE, Adam 5e-5"),
    Row("sparsesync_train", "SparseSync training step (end to end)", "train", 1,
        "125 frames 224 px + 257x626 log-spectrogram, cross-entropy over 21 offsets, Adam"),
    Row("synchformer_train", "Synchformer stage II training step (end to end)", "train", 1,
        "14 segments of 16 frames 224 px + 14 mel segments 128x66; frozen extractors, CE, Adam"),
    Row("synchformer_cached_train", "Synchformer stage II training step (cached features)", "train", 16,
        "extractor features (14x8x768 visual, 14x6x768 audio) -> projections + transformer, CE, Adam"),
    Row("syncnet_infer", "SyncNet inference, one clip", "infer", 1,
        "authors: run_syncnet's SyncNetInstance.evaluate (ffmpeg JPEG frames + wav, MFCC, ±15 search); "
        "avsync: detect's SyncNet procedure (PyAV decode, same search). LRS3 face clip, 6.8 s"),
    Row("vocalist_infer", "VocaLiST inference, one clip", "infer", 1,
        f"authors: test_lrs2 Dataset item + eval_model on a Wav2Lip-style folder of {VOCALIST_FRAMES} frames; "
        "avsync: VocaLiST clip procedure on the same frames and audio (decoded from the mp4)"),
    Row("sparsesync_infer", "SparseSync inference, one clip", "infer", 1,
        "authors: example.py path (read_video, test transforms, forward); avsync: detect (decode, 1 crop, "
        "forward). VGGSound clip, one 5 s crop (authors': at the clip's fixed test offset; avsync's: the "
        "file's first 5 s, detect with max_crops=1), so the two predictions need not agree"),
    Row("synchformer_infer", "Synchformer inference, one clip", "infer", 1,
        "authors: example.py path (read_video, test transforms, forward); avsync: detect (decode, 1 crop, "
        "forward). LRS3 clip, one 4.8 s crop (authors': at the fixed test offset; avsync's: the file's "
        "first 5 s, detect with max_crops=1), so the two predictions need not agree"),
    Row("sparsesync_loader", "SparseSync data set item", "loader", 1,
        "authors: VGGSound.__getitem__ (read_video, transform_sequence_test at the fixed offset); avsync: "
        "the VGGSound data module's test item + frame normalisation + log-spectrogram. VGGSound clip"),
    Row("synchformer_loader", "Synchformer data set item", "loader", 1,
        "authors: LRS3.__getitem__ (read_video, transform_sequence_test at the fixed offset: 14 segments, "
        "mel); avsync: the LRS3 data module's test item + SegmentInputs (14 segments, mel). LRS3 clip"),
]}


def step_inputs(key: str, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The training rows' inputs in the authors' layouts (same seed -> same numbers on both sides)."""
    g = torch.Generator().manual_seed(seed)
    alt = (torch.arange(batch) % 2).long()
    if key == "syncnet_train":
        return {"video": torch.randint(0, 256, (batch, 3, 5, 224, 224), generator=g).float(),
                "mfcc": torch.randn(batch, 1, 13, 20, generator=g), "y": alt}
    if key == "vocalist_train":
        return {"video": torch.rand(batch, 15, 48, 96, generator=g),
                "wav": 0.1 * torch.randn(batch, 3200, generator=g), "y": alt.float()[:, None]}
    if key == "sparsesync_train":
        return {"video": torch.randn(batch, 125, 3, 224, 224, generator=g),
                "spec": torch.randn(batch, 1, 257, 626, generator=g),
                "target": torch.randint(0, 21, (batch,), generator=g)}
    if key == "synchformer_train":
        return {"video": torch.randn(batch, 14, 16, 3, 224, 224, generator=g),
                "mel": torch.randn(batch, 14, 1, 128, 66, generator=g),
                "target": torch.randint(0, 21, (batch,), generator=g)}
    if key == "synchformer_cached_train":
        return {"vfeat": torch.randn(batch, 14, 8, 768, generator=g),
                "afeat": torch.randn(batch, 14, 6, 768, generator=g),
                "target": torch.randint(0, 21, (batch,), generator=g)}
    raise KeyError(key)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable[[], torch.Tensor]):
    """One optimiser step; returns the loss (a float) so the driver can show both sides' first loss."""
    def step() -> float:
        loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())
    return step


def summary(out) -> list[float]:
    """A few numbers of a call's result (loss, logits, offset and confidence) for the numerics column."""
    if isinstance(out, torch.Tensor):
        return [float(v) for v in out.detach().flatten()[:32].double()]
    if isinstance(out, (list, tuple)):
        return [float(v) for v in out][:32]
    return [float(out)]


def serve(build: Callable[[], tuple[Callable[[], object], dict]], threads: int) -> None:
    """The worker loop: build, say ready, then time one call per ``call`` line until ``quit``."""
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    fn, info = build()
    info = {"ready": True, "build_s": time.perf_counter() - t0, "threads": torch.get_num_threads(), **info}
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        if line.strip() != "call":
            break
        t0 = time.perf_counter()
        out = fn()
        sec = time.perf_counter() - t0
        print(json.dumps({"sec": sec, "out": summary(out) if out is not None else []}), flush=True)

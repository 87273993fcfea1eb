"""The models the benchmarks measure, each built through its real LightningModule at the paper's
input size (or its toy config for a smoke run), and synthetic batches shaped as the data modules
deliver them: uint8 frames (B, T, H, W, 3), float waveforms (B, S), integer targets.

Training goes through ``module.training_step`` (the module's own loss, pair drawing, InfoNCE ...)
and inference through ``module.predict_step`` (forward + softmax for the grid classifiers, the full
±15-frame score search for the pair scorers), so what is timed is what training and evaluation run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import lightning as L
import torch


@dataclass(frozen=True)
class Case:
    """One benchmarked model: ``make(toy)`` builds its LightningModule."""

    key: str
    title: str
    make: Callable[[bool], L.LightningModule]
    train_frames: int | None = None            # frames of a training clip (None: the InputSpec's length)
    frame_hw: tuple[int, int] | None = None    # delivered frame size (None: square InputSpec.frame_size)
    slow_search: bool = False                   # minutes per clip in the score search: --quick skips it
    note: str = ""


def _sparsesync(toy: bool):
    from avsync.papers.sparsesync.module import SparseSyncModule
    if toy:
        return SparseSyncModule(arch="sparsesync_toy", log_figures=False,
                                input_overrides={"frame_size": 32, "resize_short_side": 32})
    return SparseSyncModule(arch="sparsesync", log_figures=False)


def _synchformer_stage2(toy: bool):
    from avsync.papers.synchformer.stage2 import SynchformerStage2Module
    return SynchformerStage2Module(arch="synchformer_toy" if toy else "synchformer", log_figures=False)


STAGE1_SEGMENTS = 2  # of the paper's 14 per clip: a full 14-segment ViT-B backward needs > 30 GB


def _synchformer_stage1(toy: bool):
    from avsync.papers.synchformer.stage1 import SynchformerStage1Module
    return SynchformerStage1Module(arch="synchformer_toy" if toy else "synchformer",
                                   num_segments=STAGE1_SEGMENTS, max_steps=1000)


def _avst(variant: str):
    def make(toy: bool):
        from avsync.papers.avst.module import AVSTModule
        # eval_windows=16: a 50-frame (2 s) evaluation clip, as the other pair scorers search
        return AVSTModule(arch=f"avst_{variant}" + ("_toy" if toy else ""), log_attention=False, eval_windows=16)
    return make


def _vocalist(toy: bool):
    from avsync.papers.vocalist.module import VocaLiSTModule
    return VocaLiSTModule(arch="vocalist_toy" if toy else "vocalist", log_figures=False)


def _syncnet(toy: bool):
    from avsync.papers.syncnet.module import SyncNetModule
    return SyncNetModule(arch="syncnet_toy" if toy else "syncnet", log_figures=False)


def _divas(arch: str):
    def make(toy: bool):
        from avsync.papers.divas.module import DiVASModule
        return DiVASModule(arch="divas_toy" if toy else arch, log_figures=False)
    return make


CASES: dict[str, Case] = {c.key: c for c in [
    Case("sparsesync", "SparseSync (depth 3, 5 s, 224 px)", _sparsesync,
         note="end to end: S3D + ResNet18 extractors train too"),
    Case("synchformer_stage2", "Synchformer stage II (14 segments, 4.8 s, 224 px)", _synchformer_stage2,
         note="frozen extractors (forward only), sync module trains"),
    Case("synchformer_stage1", f"Synchformer stage I ({STAGE1_SEGMENTS} of 14 segments, 224 px)",
         _synchformer_stage1,
         note=f"Segment AVCLIP InfoNCE; {STAGE1_SEGMENTS} adjacent 0.64 s segments per clip instead of 14 "
              "(memory); extractors run per segment, so a 14-segment step costs ~7x"),
    Case("avst_enc", "AVST enc (15 frames, 224 px)", _avst("enc"), train_frames=15, slow_search=True,
         note="InfoNCE over the 2x2 pair scores; evaluation runs the ~1000-token transformer per pair"),
    Case("avst_enc_mp", "AVST enc-mp (15 frames, 224 px)", _avst("enc_mp"), train_frames=15, slow_search=True,
         note="InfoNCE over the 2x2 pair scores"),
    Case("avst_dec", "AVST dec (15 frames, 224 px)", _avst("dec"), train_frames=15, slow_search=True,
         note="InfoNCE over the 2x2 pair scores"),
    Case("vocalist", "VocaLiST (5 frames, 48x96)", _vocalist, frame_hw=(48, 96),
         note="one balanced 5-frame pair cut from each 2 s clip, BCE"),
    Case("syncnet", "SyncNet (5 frames, 224 px)", _syncnet,
         note="one balanced 5-frame pair cut from each 2 s clip, contrastive"),
    Case("divas_face", "DiVAS face (0.2 s, 96 px)", _divas("divas_face"),
         note="one 0.2 s pair cut from each 2 s clip, contrastive"),
    Case("divas_frame", "DiVAS frame (0.2 s, 240 px)", _divas("divas_frame"),
         note="one 0.2 s pair cut from each 2 s clip, contrastive"),
]}


def select(keys: list[str] | None) -> list[Case]:
    if not keys:
        return list(CASES.values())
    unknown = [k for k in keys if k not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    return [CASES[k] for k in keys]


def synthetic_batch(module: L.LightningModule, case: Case, batch_size: int, frames: int | None = None,
                    seed: int = 0) -> dict:
    """Random clips of the shape the data modules deliver for ``module.input_spec``."""
    spec = module.input_spec
    g = torch.Generator().manual_seed(seed)
    t = frames or spec.num_frames
    h, w = case.frame_hw or (spec.frame_size, spec.frame_size)
    samples = int(round(t / spec.fps * spec.sample_rate))
    if spec.offset_classes:
        target = torch.randint(spec.offset_classes, (batch_size,), generator=g)
    else:  # in-sync clips for the pair scorers (their training draws its own shifted pairs)
        target = torch.zeros(batch_size, dtype=torch.long)
    return {
        "video": torch.randint(0, 256, (batch_size, t, h, w, 3), dtype=torch.uint8, generator=g),
        "audio": 0.1 * torch.randn(batch_size, samples, generator=g),
        "target": target,
        "offset_sec": torch.zeros(batch_size, dtype=torch.float64),
        "video_start_sec": torch.arange(batch_size, dtype=torch.float64),
        "audio_start_sec": torch.arange(batch_size, dtype=torch.float64),
        "key": [f"clip{i}" for i in range(batch_size)],
        "index": torch.arange(batch_size),
    }


def to_device(batch: dict, device: str) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def first_optimizer(config) -> torch.optim.Optimizer:
    """The optimiser out of whatever ``configure_optimizers`` returns (optimiser, dict, list)."""
    if isinstance(config, torch.optim.Optimizer):
        return config
    if isinstance(config, dict):
        return config["optimizer"]
    if isinstance(config, (list, tuple)) and config:
        return first_optimizer(config[0])
    raise TypeError(f"cannot find an optimiser in {type(config).__name__}")


def trainable_parameters(module: torch.nn.Module) -> tuple[int, int]:
    """(all, trainable) parameter counts."""
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)

"""Evidence attribution by random masking (Synchformer §4.1, Fig. 3).

Which moments of a clip does a synchronisation model rely on? One modality at a time, the crop is
cut into 0.1 s chunks; each of ``num_masks`` random binary masks (Bernoulli(0.5) per chunk) replaces
the masked chunks by the same chunks of a distractor (another clip), and the mask is *kept* when the
model still predicts the right offset (within ±``tolerance_classes``, ±0.2 s). The score of a chunk
is the share of kept masks that left it unmasked: ≈1 when the prediction needs that chunk, ≈0.5 when
it does not care (min–max scaled for display).

The paper masks the input of the synchronisation module; here the decoded streams are masked (the
same 0.1 s chunks), which works for any grid classifier of the suite and, with frozen extractors,
changes only the segment features that cover a masked chunk.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

__all__ = ["MODALITIES", "Attribution", "chunk_index", "random_masks", "apply_masks", "attribute"]

MODALITIES = ("audio", "visual")
Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # video (B,T,H,W,3) uint8, audio (B,S) -> (B, C)


@dataclass
class Attribution:
    """Per-chunk evidence of one modality: ``scores[i]`` for [i * chunk_sec, (i + 1) * chunk_sec)."""

    modality: str
    chunk_sec: float
    scores: np.ndarray
    kept: int
    num_masks: int
    target_class: int
    extra: dict = field(default_factory=dict)

    @property
    def times_sec(self) -> np.ndarray:
        """Start of each chunk (seconds from the crop start)."""
        return np.round(np.arange(len(self.scores)) * self.chunk_sec, 6)

    def scaled(self) -> np.ndarray:
        """Min–max scaled scores (the paper's display); all 0 when the scores are flat, NaN with no kept mask."""
        if not self.kept:
            return np.full_like(self.scores, np.nan)
        lo, hi = float(self.scores.min()), float(self.scores.max())
        return (self.scores - lo) / (hi - lo) if hi > lo else np.zeros_like(self.scores)

    def as_dict(self) -> dict:
        return {"modality": self.modality, "chunk_sec": self.chunk_sec, "chunk_start_sec": self.times_sec.tolist(),
                "scores": [None if np.isnan(s) else float(s) for s in self.scores],
                "scaled": [None if np.isnan(s) else float(s) for s in self.scaled()],
                "kept_masks": self.kept, "num_masks": self.num_masks, **self.extra}


def chunk_index(length: int, rate: float, chunk_sec: float) -> torch.Tensor:
    """For each of ``length`` units (frames at ``rate`` fps or samples at ``rate`` Hz) the index of its
    ``chunk_sec`` chunk; unit t lies in chunk floor(t / (rate * chunk_sec)) (2.5 frames, 1600 samples)."""
    if length < 1 or rate <= 0 or chunk_sec <= 0:
        raise ValueError(f"need length >= 1, rate > 0, chunk_sec > 0; got {length}, {rate}, {chunk_sec}")
    return torch.floor(torch.arange(length, dtype=torch.float64) / (rate * chunk_sec) + 1e-9).long()


def random_masks(num_masks: int, num_chunks: int, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """(num_masks, num_chunks) bool, True = the chunk is replaced; each entry Bernoulli(p)."""
    return torch.rand(num_masks, num_chunks, generator=generator) < p


def apply_masks(x: torch.Tensor, distractor: torch.Tensor, masks: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """A batch (B, T, ...) of ``x`` (T, ...) with the units of masked chunks taken from ``distractor``
    (T, ..., or (B, T, ...): one distractor per mask)."""
    unit_masked = masks[:, index.to(masks.device)]                                    # (B, T)
    unit_masked = unit_masked.reshape(*unit_masked.shape, *([1] * (x.dim() - 1)))
    return torch.where(unit_masked.to(x.device), distractor.to(x.dtype), x.unsqueeze(0))


@torch.no_grad()
def attribute(predict: Predict, frames: torch.Tensor, wav: torch.Tensor, distractors: Sequence[tuple[torch.Tensor,
              torch.Tensor]], *, modality: str, fps: float, sample_rate: int, target_class: int,
              tolerance_classes: int = 1, num_masks: int = 256, batch_size: int = 16, chunk_sec: float = 0.1,
              p_mask: float = 0.5, seed: int = 0) -> Attribution:
    """Attribution scores of ``modality`` for the crop (``frames`` (T, H, W, 3) uint8, ``wav`` (S,)).

    ``distractors``: (frames, wav) pairs of other clips, at least as long as the crop; each mask
    draws one of them. ``target_class``: the offset class counted as right (the true offset, or the
    model's own answer on the unmasked crop).
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if not distractors:
        raise ValueError("attribution needs at least one distractor clip")
    for d_frames, d_wav in distractors:
        if len(d_frames) < len(frames) or len(d_wav) < len(wav) or d_frames.shape[1:] != frames.shape[1:]:
            raise ValueError(f"a distractor ({tuple(d_frames.shape)}, {len(d_wav)} samples) does not cover the crop "
                             f"({tuple(frames.shape)}, {len(wav)} samples)")
    stream, rate = (wav, float(sample_rate)) if modality == "audio" else (frames, float(fps))
    index = chunk_index(len(stream), rate, chunk_sec)
    num_chunks = int(index[-1]) + 1
    generator = torch.Generator().manual_seed(int(seed))
    masks = random_masks(num_masks, num_chunks, generator, p_mask)
    choice = torch.randint(len(distractors), (num_masks,), generator=generator)
    pool = torch.stack([(d[1] if modality == "audio" else d[0])[: len(stream)] for d in distractors])
    correct = torch.zeros(num_masks, dtype=torch.bool)
    for b0 in range(0, num_masks, batch_size):
        part = slice(b0, min(num_masks, b0 + batch_size))
        mixed = apply_masks(stream, pool[choice[part]], masks[part], index)
        n = mixed.shape[0]
        video = mixed if modality == "visual" else frames.unsqueeze(0).expand(n, *frames.shape)
        audio = mixed if modality == "audio" else wav.unsqueeze(0).expand(n, -1)
        pred = predict(video, audio).argmax(-1).cpu()
        correct[part] = (pred - int(target_class)).abs() <= tolerance_classes
    kept = masks[correct]
    scores = (~kept).float().mean(0).numpy().astype(np.float64) if len(kept) else np.full(num_chunks, np.nan)
    return Attribution(modality, float(chunk_sec), scores, int(correct.sum()), int(num_masks), int(target_class))

"""Contrastive alignment of VocaLiST's two conv encoders (a toy-scale warm start, not the paper's recipe).

VocaLiST is trained end to end with BCE only; at toy scale on a CPU that never left chance (the
"synchronisation plateau", ARCHITECTURE.md): the transformers have nothing time-aligned to compare
while the encoders are random. SyncNet, with the same pairs and a contrastive loss on an embedding
distance, learns in 200 steps. So the encoders are first trained SyncNet-style on the same balanced
pairs: the visual tokens (B, T, d) and the audio tokens pooled to the visual rate (B, 3.2T -> T, d),
each flattened in time order and L2-normalised, are pulled together for in-sync pairs and pushed
at least ``margin`` apart for shifted ones. Flattening keeps the order, so the distance compares
the two streams frame by frame: exactly the time-aligned features the cross-attention needs.
No parameters are added; the transformers are untouched by this loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from avsync.papers.syncnet.network import contrastive_loss


def pooled_token_distance(vis: Tensor, aud: Tensor) -> Tensor:
    """Distance (B,) of visual tokens (B, T, d) and audio tokens (B, Tm, d), Tm >= T, at the visual rate."""
    if vis.ndim != 3 or aud.ndim != 3 or vis.shape[0] != aud.shape[0] or vis.shape[2] != aud.shape[2]:
        raise ValueError(f"need tokens (B, T, d) and (B, Tm, d), got {tuple(vis.shape)} and {tuple(aud.shape)}")
    if aud.shape[1] < vis.shape[1]:
        raise ValueError(f"audio tokens ({aud.shape[1]}) must be at least as many as visual ones ({vis.shape[1]})")
    aud = F.adaptive_avg_pool1d(aud.transpose(1, 2), vis.shape[1]).transpose(1, 2)
    return F.pairwise_distance(F.normalize(vis.flatten(1), dim=1), F.normalize(aud.flatten(1), dim=1))


def encoder_alignment_loss(vis: Tensor, aud: Tensor, in_sync: Tensor, margin: float) -> tuple[Tensor, Tensor]:
    """(SyncNet's contrastive loss on :func:`pooled_token_distance`, −distance as a pair score)."""
    distance = pooled_token_distance(vis, aud)
    return contrastive_loss(distance, in_sync, margin), -distance.detach()


def candidate_alignment_loss(vis: Tensor, aud: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """InfoNCE over audio candidates: visual tokens (B, T, d), audio tokens (B, C, Tm, d) whose
    candidate 0 is in sync; logits −distance / temperature. Returns (loss, −distances (B, C))."""
    b, c = aud.shape[:2]
    distance = pooled_token_distance(vis.repeat_interleave(c, dim=0), aud.flatten(0, 1)).view(b, c)
    target = torch.zeros(b, dtype=torch.long, device=vis.device)
    return F.cross_entropy(-distance / temperature, target), -distance.detach()

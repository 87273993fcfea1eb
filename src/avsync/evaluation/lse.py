"""LSE-C and LSE-D: SyncNet's clip-level offset search, as ``syncnet_python``'s ``evaluate`` does it.

Lip-sync papers (Wav2Lip onwards) report a talking-face video's sync by the pretrained SyncNet:
LSE-D, the smallest mean embedding distance over the candidate offsets, and LSE-C, the
confidence (median − smallest mean distance). Their numbers come from ``SyncNetInstance.evaluate``
of joonson/syncnet_python, so this module follows that procedure step by step:

* inputs: every frame of the clip (224x224, BGR, 0..255) and the MFCC of the **whole** clip
  (python_speech_features defaults on int16 samples); window ``v`` is frames ``v .. v+4`` and
  cepstra ``4v .. 4v+19`` — so the audio of a window runs 15 ms past its 0.2 s and its
  pre-emphasis sees the sample before it (a per-window MFCC does neither);
* ``N = min(frames, floor(samples / 640)) − 5`` windows (the last possible window is not used);
* distances: each video embedding against the audio embeddings ``v − vshift .. v + vshift``, the
  audio sequence padded with **zero embeddings** at both ends (so edge windows compare with the
  zero vector), ``F.pairwise_distance`` (eps 1e-6);
* the curve is the mean over windows of each offset's distance; ``offset = vshift − argmin``,
  ``LSE-D = min``, ``LSE-C = median − min`` (``torch.median``: the lower middle value).

Parity with the authors' code is locked by ``tests/integration/test_parity_syncnet.py`` (goldens made with
their ``evaluate``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avsync.papers.syncnet.network import FRAME_SIZE, MFCC, MFCC_PER_FRAME, WINDOW_FRAMES

__all__ = ["LSEResult", "lse_from_embeddings", "lse_from_dists", "syncnet_clip_mfcc", "syncnet_clip_embeddings",
           "syncnet_lse"]

SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps, as the reference hard-codes


@dataclass
class LSEResult:
    """One clip's SyncNet search: ``offset_frames`` > 0 when the audio leads (syncnet_python's sign),
    ``lse_c`` the confidence, ``lse_d`` the min mean distance, ``dists`` (windows, 2·vshift+1)."""

    offset_frames: int
    lse_c: float
    lse_d: float
    dists: torch.Tensor

    def __iter__(self):
        return iter((self.offset_frames, self.lse_c, self.lse_d, self.dists))


def lse_from_dists(dists: torch.Tensor, vshift: int = 15) -> LSEResult:
    """Offset, LSE-C and LSE-D of a distance array (windows, 2·vshift+1)."""
    if dists.ndim != 2 or dists.shape[1] != 2 * vshift + 1 or len(dists) == 0:
        raise ValueError(f"dists must be (windows >= 1, {2 * vshift + 1}), got {tuple(dists.shape)}")
    curve = dists.t().contiguous().mean(1)  # the reference's reduction (offsets x windows), same rounding
    minval, minidx = torch.min(curve, 0)
    return LSEResult(vshift - int(minidx), float(torch.median(curve) - minval), float(minval), dists)


def lse_from_embeddings(video_emb: torch.Tensor, audio_emb: torch.Tensor, vshift: int = 15) -> LSEResult:
    """``(offset_frames, lse_c, lse_d, dists)`` of per-window embeddings (N, D) of one clip."""
    if video_emb.ndim != 2 or video_emb.shape != audio_emb.shape:
        raise ValueError(f"embeddings must both be (windows, dim); got {tuple(video_emb.shape)} "
                         f"and {tuple(audio_emb.shape)}")
    width = 2 * vshift + 1
    padded = F.pad(audio_emb, (0, 0, vshift, vshift))
    dists = torch.stack([F.pairwise_distance(video_emb[i:i + 1].expand(width, -1), padded[i:i + width])
                         for i in range(len(video_emb))])
    return lse_from_dists(dists, vshift)


def syncnet_clip_mfcc(wav: torch.Tensor, sample_rate: int = 16000) -> torch.Tensor:
    """(13, M) float32 cepstra of a whole clip (S,) in [-1, 1], from its samples rounded to int16 as
    the reference reads them from a 16-bit wav, computed in float64 as its NumPy does."""
    if wav.ndim != 1:
        raise ValueError(f"waveform must be (samples,), got {tuple(wav.shape)}")
    int16 = torch.round(wav.double() * 32768.0).clamp(-32768, 32767)
    # in float64 as the reference's NumPy, cast to float32 as it hands the cepstra to the network
    return MFCC(sample_rate=sample_rate, int16_scale=1.0, dtype=torch.float64)(int16[None])[0, 0].float()


def _bgr_windows(frames: torch.Tensor, starts: range) -> torch.Tensor:
    """uint8 (T, 224, 224, 3) RGB -> float (len(starts), 3, 5, 224, 224) BGR 0..255, as OpenCV reads frames."""
    windows = torch.stack([frames[v:v + WINDOW_FRAMES] for v in starts])          # (B, 5, H, W, 3)
    return windows.flip(-1).permute(0, 4, 1, 2, 3).float().contiguous()  # contiguous as the reference's


@torch.no_grad()
def syncnet_clip_embeddings(net, frames: torch.Tensor, wav: torch.Tensor, sample_rate: int = 16000,
                            batch_size: int = 20, max_windows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Video and audio embeddings (N, D) of every 5-frame window of a clip, the reference's way.

    ``net`` is a :class:`avsync.papers.syncnet.network.SyncNet` (used in eval mode); ``frames`` uint8
    (T, 224, 224, 3) RGB at 25 fps, ``wav`` (S,) at 16 kHz from the same start (both on the CPU;
    windows go to the network's device in batches). ``max_windows`` keeps only the first windows
    (a quick look; the search wants them all).
    """
    if sample_rate != 16000:
        raise ValueError("SyncNet's windows assume 16 kHz audio (640 samples per 25 fps frame)")
    count = min(len(frames), len(wav) // SAMPLES_PER_FRAME) - WINDOW_FRAMES
    if count < 1:
        raise ValueError(f"clip too short for SyncNet: {len(frames)} frames, {len(wav)} samples")
    if frames.ndim != 4 or frames.shape[1:] != (FRAME_SIZE, FRAME_SIZE, 3):
        raise ValueError(f"SyncNet frames must be (T, {FRAME_SIZE}, {FRAME_SIZE}, 3) uint8 face crops, "
                         f"got {tuple(frames.shape)}")
    count = count if max_windows is None else min(count, max_windows)
    mfcc = syncnet_clip_mfcc(wav[:(count + WINDOW_FRAMES) * SAMPLES_PER_FRAME + 400], sample_rate)
    cepstra = WINDOW_FRAMES * MFCC_PER_FRAME
    was_training, device = net.training, next(net.parameters()).device
    net.eval()
    try:
        lip, aud = [], []
        for start in range(0, count, batch_size):
            idx = range(start, min(count, start + batch_size))
            lip.append(net.forward_lip(_bgr_windows(frames, idx).to(device)))
            aud.append(net.forward_aud(torch.stack([mfcc[None, :, MFCC_PER_FRAME * v:MFCC_PER_FRAME * v + cepstra]
                                                    for v in idx]).to(device)))
    finally:
        net.train(was_training)
    return torch.cat(lip), torch.cat(aud)


def syncnet_lse(net, frames: torch.Tensor, wav: torch.Tensor, vshift: int = 15, sample_rate: int = 16000,
                batch_size: int = 20) -> LSEResult:
    """Offset, LSE-C, LSE-D and the distance array of one clip (face-crop frames + its audio)."""
    return lse_from_embeddings(*syncnet_clip_embeddings(net, frames, wav, sample_rate, batch_size), vshift=vshift)

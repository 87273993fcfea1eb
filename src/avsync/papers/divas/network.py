"""DiVAS (Fernandez-Labrador et al., CVPR 2024): raw-input audio and video transformers.

    frames (F = 0.2 s x fps) --16x16x1 patches--> linear --+ time-aware 3D sin PE--[z_v; patches]-- 3 layers --z_v-- linear --> common space
    mono wav (S = 0.2 s x sr) --128-sample patches--> linear --+ time-aware 1D sin PE--[z_a; patches]-- 3 layers --z_a-- linear --> common space

Both encoders consume a *variable* number of frames / samples: the window is a fixed 0.2 s, so a
25 fps clip gives 5 frames, 30 fps 6, 60 fps 12; 16 kHz gives 3200 samples (25 patches), 48 kHz
9600 (75). Clips of different rates share one batch: shorter ones are zero-padded and a key
padding mask keeps their padded tokens out of attention (:func:`pad_windows` builds such a batch).

The time-aware positional encoding (paper Eq. 2, docs/models.md) scales the time index to real time, in
units of 10 ms: video z = {0..F/f-1}·100·f/fps, audio p = {0..S/s-1}·100·s/sr. With
``time_aware=False`` it is the plain encoding (z = frame index, p = patch index), the "Base" row
of Table 2. No parameter depends on the input size, so one network serves every frame rate.

The paper gives depth (3), heads (3), MLP width (1024), patch sizes and the parameter counts
(4.8M face crops, 17M full frames) but not the token width; the registry picks the widths that
give those counts (see :data:`DIVAS_CONFIGS`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DiVASConfig", "DIVAS_CONFIGS", "DiVAS", "video_positions", "audio_positions",
           "sinusoid_3d", "sinusoid_1d", "pad_windows"]

PE_TAU = 10000.0
TIME_SCALE = 100.0  # the paper's factor: positions count 10 ms steps


@dataclass
class DiVASConfig:
    """Every size of the network. ``dim`` is the token width of both encoders (not stated in the paper)."""

    dim: int = 246
    depth: int = 3
    heads: int = 3
    mlp_dim: int = 1024
    embed_dim: int = 246          # common audio-visual space (the linear projections' output)
    frame_size: int = 96          # 96 face crops, 240 full frames
    patch_hw: int = 16            # video patch (h, w, f) = (16, 16, 1)
    patch_frames: int = 1
    audio_patch: int = 128        # s: raw samples per audio token
    time_aware: bool = True       # False: plain sinusoidal positions ("Base", Table 2)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.dim % 6:
            raise ValueError(f"dim must be a multiple of 6 (3D sinusoidal encoding: sin/cos per axis), got {self.dim}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.frame_size % self.patch_hw:
            raise ValueError(f"frame_size {self.frame_size} is not a multiple of the patch size {self.patch_hw}")


DIVAS_CONFIGS: dict[str, DiVASConfig] = {
    # face crops 96x96: width 246 (the multiple of 6 closest to the paper's count) gives
    # 4,838,568 parameters (paper: 4.8M)
    "divas_face": DiVASConfig(dim=246, embed_dim=246, frame_size=96),
    # full frames 240x240: width 594 gives 17,049,192 parameters (paper: 17M); same depth, heads,
    # MLP. Sinusoidal positions have no parameters, so the frame size alone cannot explain the
    # paper's 4.8M -> 17M: the full-frame model must be wider
    "divas_frame": DiVASConfig(dim=594, embed_dim=594, frame_size=240),
    # toy scale for 32 px frames on a CPU: the same topology, narrow
    "divas_toy": DiVASConfig(dim=48, mlp_dim=128, embed_dim=48, frame_size=32),
}


# --------------------------------------------------------------------------------------------
# Positional encodings
# --------------------------------------------------------------------------------------------
def video_positions(num_frames: int, fps: float, patch_frames: int = 1, time_aware: bool = True,
                    device=None) -> Tensor:
    """Time coordinate z of each temporal patch: {0..F/f-1}·100·f/fps (time-aware) or {0..F/f-1}."""
    z = torch.arange(num_frames // patch_frames, device=device, dtype=torch.float64)
    return z * (TIME_SCALE * patch_frames / float(fps)) if time_aware else z


def audio_positions(num_patches: int, sample_rate: float, patch: int = 128, time_aware: bool = True,
                    device=None) -> Tensor:
    """Position p of each audio patch: {0..S/s-1}·100·s/sr (time-aware) or {0..S/s-1}."""
    p = torch.arange(num_patches, device=device, dtype=torch.float64)
    return p * (TIME_SCALE * patch / float(sample_rate)) if time_aware else p


def _sin_cos(pos: Tensor, n_freq: int, step: float, dim: int) -> Tensor:
    """(..., 2·n_freq): interleaved sin/cos of pos / τ^(step·i/dim) for i in 0..n_freq-1."""
    i = torch.arange(n_freq, device=pos.device, dtype=torch.float64)
    angle = pos.double()[..., None] / PE_TAU ** (step * i / dim)
    return torch.stack([angle.sin(), angle.cos()], -1).flatten(-2)


def sinusoid_3d(x: Tensor, y: Tensor, z: Tensor, dim: int) -> Tensor:
    """Eq. 2: (len(z), len(x), len(y), dim), each third of the channels encodes x, y or z with
    sin at even and cos at odd channels, frequency τ^(-6i/D) for i in 0..D/6-1."""
    third, n_freq = dim // 3, dim // 6
    ex = _sin_cos(x, n_freq, 6, dim)[None, :, None].expand(len(z), len(x), len(y), third)
    ey = _sin_cos(y, n_freq, 6, dim)[None, None, :].expand(len(z), len(x), len(y), third)
    ez = _sin_cos(z, n_freq, 6, dim)[:, None, None].expand(len(z), len(x), len(y), third)
    return torch.cat([ex, ey, ez], -1)


def sinusoid_1d(p: Tensor, dim: int) -> Tensor:
    """Vaswani et al.'s encoding at (possibly fractional) positions p: (len(p), dim)."""
    return _sin_cos(p, dim // 2, 2, dim)


# --------------------------------------------------------------------------------------------
# Transformer with key padding masks
# --------------------------------------------------------------------------------------------
class EncoderBlock(nn.Module):
    """Pre-norm ViT block; attention through ``F.scaled_dot_product_attention`` with a padding mask."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_dim, dim), nn.Dropout(dropout))
        self.dropout = dropout

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """x (B, L, D); keep (B, L) bool, False on padded tokens (never attended to)."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if keep is None else keep[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(y.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class ModalityEncoder(nn.Module):
    """Patch tokens + positions -> [modality token; tokens] -> blocks -> normalised modality token."""

    def __init__(self, cfg: DiVASConfig, patch_dim: int):
        super().__init__()
        self.patch_embed = nn.Linear(patch_dim, cfg.dim)
        self.modality_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.blocks = nn.ModuleList(EncoderBlock(cfg.dim, cfg.heads, cfg.mlp_dim, cfg.dropout)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        nn.init.normal_(self.modality_token, std=0.02)

    def forward(self, patches: Tensor, pos: Tensor, keep: Tensor) -> Tensor:
        """patches (B, N, patch_dim), pos (B, N, D) encodings, keep (B, N) -> (B, D)."""
        x = self.patch_embed(patches) + pos.to(patches.dtype)
        x = torch.cat([self.modality_token.expand(len(x), -1, -1), x], 1)
        keep = torch.cat([keep.new_ones(len(keep), 1), keep], 1)
        for block in self.blocks:
            x = block(x, keep)
        return self.norm(x[:, 0])


class DiVAS(nn.Module):
    """Two encoders and two linear projections; the distance of the projections scores a pair.

    Inputs are model-ready floats: frames (B, F, 3, H, W) normalised, wav (B, S); ``fps`` and
    ``sample_rate`` are numbers or per-item tensors (B,), ``num_frames`` / ``num_samples`` the
    valid lengths of zero-padded items (None: all valid).
    """

    def __init__(self, cfg: DiVASConfig):
        super().__init__()
        self.cfg = cfg
        self.video = ModalityEncoder(cfg, 3 * cfg.patch_hw * cfg.patch_hw * cfg.patch_frames)
        self.audio = ModalityEncoder(cfg, cfg.audio_patch)
        self.video_proj = nn.Linear(cfg.dim, cfg.embed_dim)
        self.audio_proj = nn.Linear(cfg.dim, cfg.embed_dim)

    # -- video ----------------------------------------------------------------------------
    def encode_video(self, frames: Tensor, fps, num_frames: Tensor | None = None) -> Tensor:
        """(B, F, 3, H, W) -> (B, embed_dim)."""
        cfg = self.cfg
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, F, 3, H, W), got {tuple(frames.shape)}")
        b, n_f, _, h, w = frames.shape
        p, pf = cfg.patch_hw, cfg.patch_frames
        if h % p or w % p or n_f % pf:
            raise ValueError(f"frames {n_f}x{h}x{w} are not a whole number of {pf}x{p}x{p} patches")
        gz, gx, gy = n_f // pf, h // p, w // p
        patches = (frames.reshape(b, gz, pf, 3, gx, p, gy, p).permute(0, 1, 4, 6, 2, 3, 5, 7)
                   .reshape(b, gz * gx * gy, pf * 3 * p * p))
        fps_b = _per_item(fps, b, frames.device)
        counts = _per_item(n_f if num_frames is None else num_frames, b, frames.device).long() // pf
        x_idx = torch.arange(gx, device=frames.device, dtype=torch.float64)
        y_idx = torch.arange(gy, device=frames.device, dtype=torch.float64)
        rates, which = fps_b.unique(return_inverse=True)  # one table per frame rate in the batch
        tables = torch.stack([sinusoid_3d(x_idx, y_idx, video_positions(n_f, float(r), pf, cfg.time_aware,
                                                                        frames.device), cfg.dim)
                              for r in rates.tolist()])
        pos = tables[which].reshape(b, gz * gx * gy, cfg.dim)
        keep = (torch.arange(gz, device=frames.device)[None] < counts[:, None])
        keep = keep[:, :, None].expand(b, gz, gx * gy).reshape(b, -1)
        return self.video_proj(self.video(patches, pos, keep))

    # -- audio ----------------------------------------------------------------------------
    def encode_audio(self, wav: Tensor, sample_rate, num_samples: Tensor | None = None) -> Tensor:
        """(B, S) raw mono audio -> (B, embed_dim); a last partial patch is zero-filled."""
        if wav.ndim != 2:
            raise ValueError(f"wav must be (B, S) mono, got {tuple(wav.shape)}")
        b, n_s = wav.shape
        s = self.cfg.audio_patch
        n_p = math.ceil(n_s / s)
        patches = F.pad(wav, (0, n_p * s - n_s)).view(b, n_p, s)
        sr_b = _per_item(sample_rate, b, wav.device)
        lengths = _per_item(n_s if num_samples is None else num_samples, b, wav.device).long()
        if num_samples is not None:  # samples past an item's length are padding: zero them
            patches = patches * (torch.arange(n_p * s, device=wav.device)[None] < lengths[:, None]).view(b, n_p, s)
        rates, which = sr_b.unique(return_inverse=True)
        pos = torch.stack([sinusoid_1d(audio_positions(n_p, float(r), s, self.cfg.time_aware, wav.device),
                                       self.cfg.dim) for r in rates.tolist()])[which]
        keep = torch.arange(n_p, device=wav.device)[None] < (lengths[:, None] + s - 1) // s
        return self.audio_proj(self.audio(patches, pos, keep))

    def forward(self, frames: Tensor, wav: Tensor, fps, sample_rate, num_frames: Tensor | None = None,
                num_samples: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Embeddings (z_v→av, z_a→av), each (B, embed_dim)."""
        return self.encode_video(frames, fps, num_frames), self.encode_audio(wav, sample_rate, num_samples)

    @staticmethod
    def distance(z_v: Tensor, z_a: Tensor) -> Tensor:
        """d = ||z_a − z_v|| per pair (the contrastive loss and the score search use it)."""
        return (z_a - z_v).norm(dim=-1)


def _per_item(value, batch: int, device) -> Tensor:
    """A number or a (B,) tensor -> (B,) float64 tensor."""
    t = torch.as_tensor(value, dtype=torch.float64, device=device).reshape(-1)
    if t.numel() == 1:
        return t.expand(batch)
    if t.numel() != batch:
        raise ValueError(f"expected one value or {batch} per-item values, got {t.numel()}")
    return t


def pad_windows(frames: list[Tensor], wavs: list[Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Windows of different rates in one batch: zero-padded frames (B, F_max, ...) and wav (B, S_max),
    with the valid lengths (B,) of each, to pass as ``num_frames`` / ``num_samples``."""
    if len(frames) != len(wavs) or not frames:
        raise ValueError("pad_windows needs one audio window per video window (and at least one)")
    n_f = torch.tensor([len(f) for f in frames])
    n_s = torch.tensor([len(w) for w in wavs])
    video = torch.zeros((len(frames), int(n_f.max()), *frames[0].shape[1:]), dtype=frames[0].dtype)
    audio = torch.zeros((len(wavs), int(n_s.max())), dtype=wavs[0].dtype)
    for i, (f, w) in enumerate(zip(frames, wavs)):
        video[i, : len(f)] = f
        audio[i, : len(w)] = w
    return video, audio, n_f, n_s

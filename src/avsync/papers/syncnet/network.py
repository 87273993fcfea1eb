"""SyncNet (Chung & Zisserman, ACCV workshops 2016): the two-stream baseline of the lip-sync tables.

    5 frames 224x224 (3 channels, 0..255) --3D conv + 2D convs--> 512 --FC-BN-ReLU-FC--> 1024 ┐ Euclidean
    MFCC 13 x 20 (0.2 s at 100 Hz)        --2D convs--------------> 512 --FC-BN-ReLU-FC--> 1024 ┘ distance

Layer for layer the official ``SyncNetModel.S`` (``joonson/syncnet_python``), with its module
names and ``nn.Sequential`` indices (ReLU and pooling keep their slots), so the official
``syncnet_v2.model`` state dict loads as is: 13,631,616 parameters. The offset of a clip is the
candidate with the smallest distance over ±15 frames, confidence = median − min
(:mod:`avsync.evaluation.score_search` with ``pair_scores`` = −distance).

:class:`MFCC` reimplements ``python_speech_features.mfcc`` with its defaults (pre-emphasis 0.97,
25 ms rectangular frames every 10 ms, 512-point power spectrum, 26 mel filters, 13 cepstra,
lifter 22, c0 replaced by the log frame energy) on int16-scaled samples, as the reference reads
them from a 16-bit wav.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SyncNetConfig", "SYNCNET_CONFIGS", "SyncNet", "build_syncnet", "MFCC", "contrastive_loss"]

FRAME_SIZE = 224
WINDOW_FRAMES = 5
MFCC_PER_FRAME = 4   # 100 Hz cepstra / 25 fps video
NUM_CEPSTRA = 13


@dataclass
class SyncNetConfig:
    """Channel widths of both streams and the embedding size; ``SYNCNET_CONFIGS`` names them."""

    audio_widths: tuple[int, int, int, int, int, int] = (64, 192, 384, 256, 256, 512)
    lip_widths: tuple[int, int, int, int, int, int] = (96, 256, 256, 256, 256, 512)
    embed_dim: int = 1024          # num_layers_in_fc_layers of the reference


SYNCNET_CONFIGS: dict[str, SyncNetConfig] = {
    "syncnet": SyncNetConfig(),
    # toy scale: the same layers at 1/8 of the widths and a 64-d embedding (inputs unchanged)
    "syncnet_toy": SyncNetConfig(audio_widths=(8, 24, 48, 32, 32, 64), lip_widths=(12, 32, 32, 32, 32, 64),
                                 embed_dim=64),
}


def build_syncnet(arch: str = "syncnet", overrides: dict | None = None) -> "SyncNet":
    if arch not in SYNCNET_CONFIGS:
        raise ValueError(f"unknown SyncNet arch {arch!r}; registered: {sorted(SYNCNET_CONFIGS)}")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in (overrides or {}).items()}
    return SyncNet(SyncNetConfig(**{**SYNCNET_CONFIGS[arch].__dict__, **fields}))


def _audio_cnn(w: tuple[int, ...]) -> nn.Sequential:
    """(N, 1, 13, 20) -> (N, w5, 1, 1)."""
    return nn.Sequential(
        nn.Conv2d(1, w[0], 3, 1, 1), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True),
        nn.MaxPool2d(1, 1),
        nn.Conv2d(w[0], w[1], 3, 1, 1), nn.BatchNorm2d(w[1]), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, (1, 2)),
        nn.Conv2d(w[1], w[2], 3, padding=1), nn.BatchNorm2d(w[2]), nn.ReLU(inplace=True),
        nn.Conv2d(w[2], w[3], 3, padding=1), nn.BatchNorm2d(w[3]), nn.ReLU(inplace=True),
        nn.Conv2d(w[3], w[4], 3, padding=1), nn.BatchNorm2d(w[4]), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(w[4], w[5], (5, 4), padding=0), nn.BatchNorm2d(w[5]), nn.ReLU(),
    )


def _lip_cnn(w: tuple[int, ...]) -> nn.Sequential:
    """(N, 3, 5, 224, 224) -> (N, w5, 1, 1, 1)."""
    return nn.Sequential(
        nn.Conv3d(3, w[0], (5, 7, 7), (1, 2, 2), 0), nn.BatchNorm3d(w[0]), nn.ReLU(inplace=True),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        nn.Conv3d(w[0], w[1], (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.BatchNorm3d(w[1]), nn.ReLU(inplace=True),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        nn.Conv3d(w[1], w[2], (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(w[2]), nn.ReLU(inplace=True),
        nn.Conv3d(w[2], w[3], (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(w[3]), nn.ReLU(inplace=True),
        nn.Conv3d(w[3], w[4], (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(w[4]), nn.ReLU(inplace=True),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        nn.Conv3d(w[4], w[5], (1, 6, 6), padding=0), nn.BatchNorm3d(w[5]), nn.ReLU(inplace=True),
    )


def _fc(width: int, embed_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim))


class SyncNet(nn.Module):
    """Two embedding streams; ``forward`` returns the Euclidean distance of each pair (lower = in sync)."""

    def __init__(self, cfg: SyncNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or SyncNetConfig()
        self.netcnnaud = _audio_cnn(cfg.audio_widths)
        self.netfcaud = _fc(cfg.audio_widths[-1], cfg.embed_dim)
        self.netfclip = _fc(cfg.lip_widths[-1], cfg.embed_dim)
        self.netcnnlip = _lip_cnn(cfg.lip_widths)

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """MFCC (N, 1, 13, 20) -> embedding (N, embed_dim)."""
        if mfcc.ndim != 4 or mfcc.shape[1:] != (1, NUM_CEPSTRA, WINDOW_FRAMES * MFCC_PER_FRAME):
            raise ValueError(f"SyncNet audio is (N, 1, {NUM_CEPSTRA}, {WINDOW_FRAMES * MFCC_PER_FRAME}) MFCCs, "
                             f"got {tuple(mfcc.shape)}")
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (N, 3, 5, 224, 224), BGR 0..255 -> embedding (N, embed_dim)."""
        if frames.ndim != 5 or frames.shape[1:] != (3, WINDOW_FRAMES, FRAME_SIZE, FRAME_SIZE):
            raise ValueError(f"SyncNet frames are (N, 3, {WINDOW_FRAMES}, {FRAME_SIZE}, {FRAME_SIZE}), "
                             f"got {tuple(frames.shape)}")
        return self.netfclip(self.netcnnlip(frames).flatten(1))

    def forward(self, frames: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        return F.pairwise_distance(self.forward_lip(frames), self.forward_aud(mfcc))


def contrastive_loss(distance: torch.Tensor, in_sync: torch.Tensor, margin: float) -> torch.Tensor:
    """SyncNet's loss: mean of y·d² + (1 − y)·max(margin − d, 0)² (y = 1 for in-sync pairs), halved."""
    y = in_sync.to(distance.dtype)
    return 0.5 * (y * distance.pow(2) + (1 - y) * F.relu(margin - distance).pow(2)).mean()


# --------------------------------------------------------------------------------------------
# Audio features
# --------------------------------------------------------------------------------------------
def _hz_to_mel(hz):
    return 2595 * math.log10(1 + hz / 700.0)


def _mel_to_hz(mel):
    return 700 * (10 ** (mel / 2595.0) - 1)


def _filterbank(num_filters: int, nfft: int, sample_rate: int) -> torch.Tensor:
    """python_speech_features.get_filterbanks: triangles on FFT bins floor((nfft+1)·f/sr)."""
    top = _hz_to_mel(sample_rate / 2)
    mels = [top * i / (num_filters + 1) for i in range(num_filters + 2)]
    bins = [math.floor((nfft + 1) * _mel_to_hz(m) / sample_rate) for m in mels]
    bank = torch.zeros(num_filters, nfft // 2 + 1, dtype=torch.float64)
    for j in range(num_filters):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        for i in range(lo, mid):
            bank[j, i] = (i - lo) / (mid - lo)
        for i in range(mid, hi):
            bank[j, i] = (hi - i) / (hi - mid)
    return bank


def _dct_ortho(n: int, keep: int) -> torch.Tensor:
    """Rows 0..keep-1 of the orthonormal DCT-II matrix (scipy ``dct(type=2, norm='ortho')``)."""
    k = torch.arange(keep, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    mat = torch.cos(math.pi * k * (2 * i + 1) / (2 * n)) * math.sqrt(2.0 / n)
    mat[0] /= math.sqrt(2.0)
    return mat


def _nonzero(x: torch.Tensor) -> torch.Tensor:
    """Exact zeros -> float64 eps, as the reference does before its logarithms."""
    return torch.where(x == 0, torch.full_like(x, 2.220446049250313e-16), x)


class MFCC(nn.Module):
    """Waveform (B, S) in [-1, 1] -> (B, 1, 13, frames): ``python_speech_features.mfcc`` defaults.

    ``num_frames`` (e.g. 20 for a 5-frame window) zero-pads the end so that exactly that many
    cepstra come out; the reference cuts 20 cepstra from a whole-clip MFCC, whose last frame
    reaches 15 ms past the 0.2 s window.
    """

    def __init__(self, sample_rate: int = 16000, win_sec: float = 0.025, hop_sec: float = 0.01,
                 nfft: int = 512, num_filters: int = 26, num_cepstra: int = NUM_CEPSTRA, lifter: int = 22,
                 preemph: float = 0.97, int16_scale: float = 32768.0, dtype: torch.dtype = torch.float32):
        """``dtype``: the arithmetic (float32 for training; float64 as the reference's NumPy, for
        LSE: :func:`avsync.evaluation.lse.syncnet_clip_mfcc`)."""
        super().__init__()
        self.dtype = dtype
        self.win, self.hop = round(win_sec * sample_rate), round(hop_sec * sample_rate)
        self.nfft, self.preemph, self.int16_scale = nfft, preemph, int16_scale
        lift = 1 + (lifter / 2.0) * torch.sin(math.pi * torch.arange(num_cepstra, dtype=torch.float64) / lifter)
        self.register_buffer("fbank", _filterbank(num_filters, nfft, sample_rate).to(dtype), persistent=False)
        self.register_buffer("dct", (_dct_ortho(num_filters, num_cepstra) * lift[:, None]).to(dtype),
                             persistent=False)

    def forward(self, wav: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        x = wav.to(self.fbank.dtype) * self.int16_scale
        x = torch.cat([x[:, :1], x[:, 1:] - self.preemph * x[:, :-1]], dim=1)
        n = x.shape[1]
        frames = num_frames or (1 if n <= self.win else 1 + math.ceil((n - self.win) / self.hop))
        need = (frames - 1) * self.hop + self.win
        x = F.pad(x, (0, max(0, need - n)))[:, :need]
        spec = torch.fft.rfft(x.unfold(1, self.win, self.hop), n=self.nfft)
        power = spec.abs().pow(2) / self.nfft                                  # (B, frames, nfft/2+1)
        energy = _nonzero(power.sum(-1))
        feat = torch.log(_nonzero(power @ self.fbank.T)) @ self.dct.T           # (B, frames, 13), liftered
        feat = torch.cat([torch.log(energy)[..., None], feat[..., 1:]], dim=-1)  # c0 <- log energy
        return feat.transpose(1, 2).unsqueeze(1)

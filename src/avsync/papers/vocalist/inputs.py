"""VocaLiST's input transforms, as the official training/test scripts compute them.

* :class:`MouthFrames` — uint8 (B, T, H, W, 3) RGB -> float (B, T, 3, 48, 96) in [0, 1], channels
  in BGR order (the reference reads frames with OpenCV and never converts), no mean/std. Frames
  that are not 48x96 (a square toy frame, a face crop's lower half at another size) are resized.
* :class:`VocaLiSTMel` — waveform (B, S) at 16 kHz -> (B, 1, 80, S/200): |STFT| (n_fft 800,
  hop 200, Hann 800, centred), slaney mel (80 bins, 55-7600 Hz), 20·log10(max(m, 1e-5)) − 20 dB,
  mapped to [-4, 4] (min level −100 dB), last frame dropped: 3200 samples (5 frames) -> 16 frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.functional import melscale_fbanks

from avsync.papers.vocalist.network import MOUTH_HEIGHT, MOUTH_WIDTH


class MouthFrames(nn.Module):
    def __init__(self, bgr: bool = True):
        super().__init__()
        self.bgr = bgr

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (B, T, H, W, 3) uint8, got {tuple(frames.shape)}")
        x = frames.permute(0, 1, 4, 2, 3).float().div(255.0)       # (B, T, 3, H, W)
        if self.bgr:
            x = x.flip(2)
        if x.shape[-2:] != (MOUTH_HEIGHT, MOUTH_WIDTH):
            b, t = x.shape[:2]
            x = F.interpolate(x.flatten(0, 1), size=(MOUTH_HEIGHT, MOUTH_WIDTH), mode="bilinear",
                              align_corners=False, antialias=True).unflatten(0, (b, t))
        return x


class VocaLiSTMel(nn.Module):
    def __init__(self, sample_rate: int = 16000, n_fft: int = 800, hop: int = 200, n_mels: int = 80,
                 f_min: float = 55.0, f_max: float = 7600.0, ref_level_db: float = 20.0,
                 min_level_db: float = -100.0, max_abs_value: float = 4.0):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.ref_level_db, self.top_db, self.max_abs = ref_level_db, -min_level_db, max_abs_value
        self.min_level = 10 ** (min_level_db / 20)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # torchaudio's MelScale(norm="slaney", mel_scale="slaney") matrix, as the reference; not saved
        fbank = melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate, norm="slaney", mel_scale="slaney")
        self.register_buffer("fbank", fbank, persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.ndim != 2:
            raise ValueError(f"waveform must be (B, samples), got {tuple(wav.shape)}")
        spec = torch.stft(wav.float(), self.n_fft, self.hop, self.n_fft, window=self.window, return_complex=True)
        mel = (spec.abs().transpose(-1, -2) @ self.fbank).transpose(-1, -2)          # (B, n_mels, frames)
        db = 20 * torch.log10(mel.clamp_min(self.min_level)) - self.ref_level_db
        mel = (2 * self.max_abs * (db + self.top_db) / self.top_db - self.max_abs).clamp(-self.max_abs, self.max_abs)
        return mel[..., :-1].unsqueeze(1)

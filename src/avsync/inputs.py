"""What a model consumes, and the model-side transforms that turn decoded clips into its inputs.

Each model declares an :class:`InputSpec` (frame rate, crop length, frame size, crop kind,
audio rate, offset labels); the data modules deliver exactly that from real files: uint8 frames
``(B, T, H, W, 3)`` and float waveforms ``(B, S)``. Everything that depends on the model rather
than the dataset — normalisation, spectrograms, segmenting — happens here, batched and on the
model's device, so a new dataset needs no model code and a new model no data code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """The clip a model wants; data modules read it from ``trainer.lightning_module.input_spec``."""

    fps: float = 25.0
    duration_sec: float = 5.0
    frame_size: int = 224                   # square crop fed to the model
    resize_short_side: int | None = 256     # decode-time resize before the crop (None: frame_size)
    crop: str = "full"                      # "full" frame | "face" box | "mouth" (lower half of the face)
    sample_rate: int = 16000
    offset_classes: int | None = 21         # grid size for classifiers; None = integer frame shifts
    max_frame_shift: int = 15               # for score-search models (offset_classes=None)
    hflip: bool = True                      # random horizontal flip in training
    random_crop: bool = True                # training crop at a random position (False: centred, as in evaluation)
    # False: the whole frame is resized to frame_size x frame_size (aspect not kept, nothing cut;
    # AVST App. A "resized to 224x224 without cropping"); only for crop="full"
    keep_aspect: bool = True
    # variable-length training: each training batch is cut to one of these lengths (seconds,
    # <= duration_sec), drawn per batch; evaluation uses duration_sec (SparseSync Table 4)
    train_durations: tuple[float, ...] | None = None

    @property
    def decode_size(self) -> int | tuple[int, int]:
        """What the decoder resizes frames to: the short side (aspect kept; the square crop is
        cut afterwards) or, with ``keep_aspect=False``, exactly (frame_size, frame_size)."""
        if not self.keep_aspect:
            if self.crop != "full":
                raise ValueError(f"keep_aspect=False resizes whole frames; it cannot be combined with crop={self.crop!r}")
            return (self.frame_size, self.frame_size)
        return self.resize_short_side or self.frame_size

    @property
    def num_frames(self) -> int:
        return int(round(self.duration_sec * self.fps))

    @property
    def num_samples(self) -> int:
        return int(round(self.duration_sec * self.sample_rate))


class FrameNormalize(nn.Module):
    """uint8 (B, T, H, W, 3) -> float (B, T, 3, H, W), scaled to [0, 1] and standardised per channel."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 1, 4, 2, 3).float().div_(255.0)
        return (x - self.mean) / self.std


class LogSpectrogram(nn.Module):
    """Waveform (B, S) -> (B, 1, n_fft/2+1, frames): power STFT, log(x + 1e-6), per-frequency standardisation.

    SparseSync's audio input (STFT 512, hop 128: a 5 s clip at 16 kHz gives 257x626); the
    standardisation is over time for each frequency bin of each clip, as in the reference.
    """

    def __init__(self, n_fft: int = 512, hop_length: int = 128, eps: float = 1e-6,
                 augment: "SpecAugment | None" = None):
        super().__init__()
        self.n_fft, self.hop_length, self.eps = n_fft, hop_length, eps
        self.augment = augment  # applied in training mode only, between the log and the standardisation
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wav.float(), self.n_fft, self.hop_length, window=self.window, return_complex=True)
        spec = torch.log(spec.abs().pow(2) + self.eps)
        if self.augment is not None and self.training:
            spec = self.augment(spec)
        mean, std = spec.mean(-1, keepdim=True), spec.std(-1, keepdim=True)
        return ((spec - mean) / (std + self.eps)).unsqueeze(1)


class SpecAugment(nn.Module):
    """SpecAugment without time warping, as SparseSync fine-tunes on VGGSound-Sparse: with
    probability ``p`` one frequency band of width U[0, ``freq_mask_param``) bins, then (an independent
    draw) with ``p`` one time band of width U[0, ``time_mask_param``) frames, set to ``mask_value``.

    It works on the log spectrogram before its standardisation (where the authors put
    torchaudio's ``FrequencyMasking(64)`` / ``TimeMasking(200)``), for each example of the batch
    on its own, with torchaudio's placement (start U[0, size - width)). Time warping is left
    out on purpose (it would move the synchronisation cue); a mask moves nothing in time.
    """

    def __init__(self, p: float = 0.2, freq_mask_param: int = 64, time_mask_param: int = 200,
                 mask_value: float = 0.0):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"SpecAugment p must be in [0, 1], got {p}")
        self.p, self.freq_mask_param, self.time_mask_param = float(p), int(freq_mask_param), int(time_mask_param)
        self.mask_value = float(mask_value)

    def forward(self, spec: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, F, T) -> (B, F, T), masked copy."""
        spec = spec.clone()
        for b in range(spec.shape[0]):
            for axis, param in ((1, self.freq_mask_param), (2, self.time_mask_param)):
                if param <= 0 or float(torch.rand((), generator=generator)) >= self.p:
                    continue
                width = float(torch.rand((), generator=generator)) * param
                start = float(torch.rand((), generator=generator)) * (spec.shape[axis] - width)
                lo, hi = int(start), int(start) + int(width)
                if axis == 1:
                    spec[b, lo:hi, :] = self.mask_value
                else:
                    spec[b, :, lo:hi] = self.mask_value
        return spec

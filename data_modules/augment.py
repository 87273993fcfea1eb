"""Training-time augmentations of the authors' recipes, drawn from the item's seeded generator.

SparseSync fine-tunes on VGGSound-Sparse with more augmentation than on LRS3 (its
``sbatch_finetune_sync.sh`` turns on, over ``configs/sparse_sync.yaml``'s transform sequence):

* video: with p 0.5 a smaller random crop (192 px) upscaled to the input size instead of the
  plain random crop; with p 0.2 SimCLR colour jitter (brightness, contrast, saturation 0.8 s,
  hue 0.2 s, s = 1, in a random order); with p 0.2 greyscale (three equal channels);
* audio, each with p 0.2, in this order: reverberation (sox ``reverb -w``), volume (amplitude
  x 2, clipped to [-1, 1]), pitch shift (+1000 cents, duration kept), a low-pass biquad (100 Hz,
  Q 0.707) and Gaussian noise (amplitude 0.01); SpecAugment comes after the spectrogram, on the
  model's side (:class:`avsync.inputs.SpecAugment`).

Synchformer's stage I (Segment AVCLIP on VGGSound and AudioSet, ``configs/segment_avclip.yaml``)
uses the same set (crop-upscale with p 0.2) but cuts the clip into 0.64 s segments first, so
colour and audio augmentations are drawn for each segment on its own: ``segment_sec`` does that.

None of these moves anything in time: the offset label and the window starts are untouched (the
audio jitter of the samplers, :mod:`avsync.offsets`, is the only augmentation that moves time,
and it leaves the label alone, as the authors' does). Every draw comes from the NumPy generator
the data set seeds per item, and a probability of 0 draws nothing, so a recipe without
augmentation consumes exactly the random numbers it did before.

What differs from the authors' implementation: sox is not available (torchaudio dropped its sox
effects), so reverberation is a Freeverb network (8 damped combs + 4 all-passes, the structure
sox's ``reverb`` uses) at sox's default settings, and the pitch shift is a phase vocoder followed
by a resampling, where sox uses WSOLA; colour jitter, greyscale, upscaling, volume, low-pass and
noise are the same torchvision / torchaudio functions the authors call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
import torch
import torchaudio.functional as AF
import torchvision.transforms.functional as VF

__all__ = ["Augmentations", "color_jitter", "greyscale", "upscale", "reverb", "pitch_shift", "lowpass",
           "volume", "gaussian_noise"]


@dataclass(frozen=True)
class Augmentations:
    """Which training augmentations run, with what probability and parameters (authors' defaults).

    Every probability defaults to 0 (off). ``segment_sec`` applies the colour and audio
    augmentations to each segment of that length separately (Synchformer's stage I, 0.64 s);
    None treats the whole window as one.
    """

    crop_upscale_p: float = 0.0
    smaller_crop: int = 192
    color_jitter_p: float = 0.0
    color_strength: float = 1.0
    greyscale_p: float = 0.0
    reverb_p: float = 0.0
    volume_p: float = 0.0
    volume_gain: float = 2.0
    pitch_shift_p: float = 0.0
    pitch_shift_cents: float = 1000.0
    lowpass_p: float = 0.0
    lowpass_hz: float = 100.0
    lowpass_q: float = 0.707
    noise_p: float = 0.0
    noise_amplitude: float = 0.01
    segment_sec: float | None = None

    def __post_init__(self) -> None:
        for name in ("crop_upscale_p", "color_jitter_p", "greyscale_p", "reverb_p", "volume_p",
                     "pitch_shift_p", "lowpass_p", "noise_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"Augmentations.{name} must be a probability in [0, 1], got {p}")
        if self.smaller_crop <= 0:
            raise ValueError(f"Augmentations.smaller_crop must be > 0, got {self.smaller_crop}")
        if self.segment_sec is not None and self.segment_sec <= 0:
            raise ValueError(f"Augmentations.segment_sec must be > 0 or None, got {self.segment_sec}")

    # -- spatial crop -------------------------------------------------------------------
    def crop_size(self, frame_size: int, rng: np.random.Generator) -> int:
        """The side of the random crop: ``smaller_crop`` with p ``crop_upscale_p`` (then upscaled
        to ``frame_size``), else ``frame_size``. Draws nothing when the probability is 0."""
        if self.crop_upscale_p > 0 and rng.random() < self.crop_upscale_p:
            if self.smaller_crop > frame_size:
                raise ValueError(f"smaller_crop={self.smaller_crop} is larger than frame_size={frame_size}")
            return self.smaller_crop
        return frame_size

    # -- colour -------------------------------------------------------------------------
    def video(self, frames: np.ndarray, fps: float, rng: np.random.Generator) -> np.ndarray:
        """Colour jitter then greyscale, each with its probability (per segment with ``segment_sec``).
        ``frames`` is uint8 (T, H, W, 3); the result has the same shape and dtype."""
        if self.color_jitter_p <= 0 and self.greyscale_p <= 0:
            return frames
        out = frames.copy()
        for lo, hi in _segments(len(frames), self.segment_sec, fps):
            out[lo:hi] = self._colour(out[lo:hi], rng)
        return out

    def _colour(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = None
        if self.color_jitter_p > 0 and rng.random() < self.color_jitter_p:
            s = self.color_strength
            order = rng.permutation(4)
            b, c, sat = (float(rng.uniform(max(0.0, 1 - 0.8 * s), 1 + 0.8 * s)) for _ in range(3))
            h = float(rng.uniform(-0.2 * s, 0.2 * s))
            x = color_jitter(_to_tchw(frames), order, b, c, sat, h)
        if self.greyscale_p > 0 and rng.random() < self.greyscale_p:
            x = greyscale(_to_tchw(frames) if x is None else x)
        return frames if x is None else _to_thwc(x)

    # -- audio --------------------------------------------------------------------------
    def audio(self, wave: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Reverb, volume, pitch shift, low-pass, noise in the authors' order, each with its own
        probability (per segment with ``segment_sec``); float32 (S,) in and out."""
        if not any(p > 0 for p in (self.reverb_p, self.volume_p, self.pitch_shift_p, self.lowpass_p,
                                   self.noise_p)):
            return wave
        out = np.array(wave, dtype=np.float32, copy=True)
        for lo, hi in _segments(len(wave), self.segment_sec, sample_rate):
            out[lo:hi] = self._audio(out[lo:hi], sample_rate, rng)
        return out

    def _audio(self, wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        def drawn(p: float) -> bool:
            return p > 0 and bool(rng.random() < p)

        if drawn(self.reverb_p):
            wave = reverb(wave, sr)
        if drawn(self.volume_p):
            wave = volume(wave, self.volume_gain)
        if drawn(self.pitch_shift_p):
            wave = pitch_shift(wave, sr, self.pitch_shift_cents)
        if drawn(self.lowpass_p):
            wave = lowpass(wave, sr, self.lowpass_hz, self.lowpass_q)
        if drawn(self.noise_p):
            wave = gaussian_noise(wave, self.noise_amplitude, rng)
        return wave.astype(np.float32, copy=False)


def _segments(n: int, segment_sec: float | None, rate: float) -> list[tuple[int, int]]:
    """[lo, hi) index ranges: the whole window, or consecutive segments of ``segment_sec``
    (a remainder shorter than a segment is left as it is: no model input reads it)."""
    if segment_sec is None:
        return [(0, n)]
    size = int(round(segment_sec * rate))
    return [(lo, lo + size) for lo in range(0, n - size + 1, size)]


def _to_tchw(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def _to_thwc(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


# -- video ops (torchvision's functions on uint8 (T, 3, H, W), as the authors call them) -------
def color_jitter(x: torch.Tensor, order, brightness: float, contrast: float, saturation: float,
                 hue: float) -> torch.Tensor:
    """torchvision ``ColorJitter``'s forward for given parameters (``order``: a permutation of
    0 brightness, 1 contrast, 2 saturation, 3 hue): the same factors for every frame."""
    ops = {0: lambda t: VF.adjust_brightness(t, brightness), 1: lambda t: VF.adjust_contrast(t, contrast),
           2: lambda t: VF.adjust_saturation(t, saturation), 3: lambda t: VF.adjust_hue(t, hue)}
    for i in order:
        x = ops[int(i)](x)
    return x


def greyscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma copied to three channels (torchvision ``RandomGrayscale``'s output)."""
    return VF.rgb_to_grayscale(x, num_output_channels=3)


def upscale(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, h, w, 3) -> (T, size, size, 3), bilinear (torchvision ``Resize`` on a tensor, as
    the authors' crop-and-upscale calls it)."""
    x = VF.resize(_to_tchw(frames), [size, size], interpolation=VF.InterpolationMode.BILINEAR, antialias=True)
    return _to_thwc(x)


# -- audio ops -----------------------------------------------------------------------------------
def volume(wave: np.ndarray, gain: float) -> np.ndarray:
    """Amplitude gain clipped to [-1, 1] (torchaudio ``Vol(gain, 'amplitude')``)."""
    return np.clip(wave * np.float32(gain), -1.0, 1.0).astype(np.float32)


def lowpass(wave: np.ndarray, sample_rate: int, cutoff_hz: float, q: float = 0.707) -> np.ndarray:
    """torchaudio's ``lowpass_biquad`` (the authors' call; its output is clipped to [-1, 1])."""
    return AF.lowpass_biquad(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), sample_rate,
                             cutoff_hz, q).numpy()


def gaussian_noise(wave: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """``wave + amplitude * N(0, 1)`` per sample."""
    return (wave + amplitude * rng.standard_normal(len(wave))).astype(np.float32)


def pitch_shift(wave: np.ndarray, sample_rate: int, cents: float, n_fft: int = 512) -> np.ndarray:
    """Pitch moved by ``cents`` with the duration (and so every onset's time) kept.

    Phase-vocoder time stretch by the pitch ratio, then resampling by the same ratio (a close
    fraction of it, so the resampling kernel stays small: 98/55 for 1000 cents, 0.0002 cents off).
    sox's ``pitch`` (the authors') stretches with WSOLA instead; both move every frequency by the
    ratio. ``sample_rate`` only names the unit of the time axis: the shift is a ratio.
    """
    del sample_rate
    n = len(wave)
    ratio = Fraction(2.0 ** (cents / 1200.0)).limit_denominator(64)
    hop = n_fft // 4
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    window = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
    advance = torch.linspace(0, math.pi * hop, n_fft // 2 + 1)[..., None]
    stretched = AF.phase_vocoder(spec, float(1 / ratio), advance)
    y = torch.istft(stretched, n_fft, hop, window=window, length=int(round(n * float(ratio))))
    y = AF.resample(y, orig_freq=ratio.numerator, new_freq=ratio.denominator)
    out = np.zeros(n, dtype=np.float32)
    m = min(n, len(y))
    out[:m] = y[:m].numpy()
    return out


# Freeverb's delay lines (samples at 44.1 kHz) and sox's mapping of its default settings
_COMBS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
_ALLPASSES = (225, 341, 441, 556)
_STEREO_SPREAD = 12


def _sox_reverb_settings(reverberance: float = 50.0, hf_damping: float = 50.0) -> tuple[float, float]:
    """(comb feedback, comb damping) for sox's reverberance and HF-damping percentages."""
    a = -1.0 / math.log(1 - 0.3)
    b = 100.0 / (math.log(1 - 0.98) * a + 1)
    return 1 - math.exp((reverberance - b) / (a * b)), hf_damping / 100 * 0.3 + 0.2


@lru_cache(maxsize=8)
def reverb_impulse_response(sample_rate: int, length: int) -> np.ndarray:
    """Impulse response (first ``length`` samples) of the wet path of a Freeverb network at sox's
    default settings (reverberance 50 %, HF damping 50 %, room scale 100 %, stereo depth 100 %,
    no pre-delay, wet gain 0 dB = 0.015), the two stereo channels averaged as the authors do."""
    from scipy.signal import lfilter  # scipy comes with librosa; imported only where it is needed

    feedback, damp = _sox_reverb_settings()
    scale = sample_rate / 44100.0
    impulse = np.zeros(length)
    impulse[0] = 1.0
    channels = []
    for spread in (0, _STEREO_SPREAD):
        wet = np.zeros(length)
        for n in _COMBS:  # damped feedback comb: out = z^-d / (1 - damp z^-1 - feedback (1 - damp) z^-d)
            d = int(scale * (n + spread) + 0.5)
            b, a = np.zeros(d + 2), np.zeros(d + 1)
            b[d], b[d + 1] = 1.0, -damp
            a[0], a[1] = 1.0, -damp
            a[d] -= feedback * (1 - damp)
            wet += lfilter(b, a, impulse)
        for n in _ALLPASSES:  # Freeverb all-pass: (-1 + 1.5 z^-d) / (1 - 0.5 z^-d)
            d = int(scale * (n + spread) + 0.5)
            b, a = np.zeros(d + 1), np.zeros(d + 1)
            b[0], b[d] = -1.0, 1.5
            a[0], a[d] = 1.0, -0.5
            wet = lfilter(b, a, wet)
        channels.append(wet * 0.015)
    return np.mean(channels, axis=0).astype(np.float32)


def reverb(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Wet-only reverberation (sox ``reverb -w`` at its defaults, mixed to mono), same length:
    the causal convolution with :func:`reverb_impulse_response`, so nothing is moved earlier."""
    n = len(wave)
    if n == 0:
        return np.asarray(wave, dtype=np.float32)
    # the tail decays by ~33 dB a second (measured on this response): after 3 s it is ~100 dB down
    h = torch.from_numpy(reverb_impulse_response(int(sample_rate), min(n, 3 * int(sample_rate))))
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    size = 1 << (2 * n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(h, size), size)[:n]  # zero-padded: linear, causal
    return y.numpy().astype(np.float32)

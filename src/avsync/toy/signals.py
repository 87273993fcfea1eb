"""Continuous-time signals of the toy audio-visual set (pure numpy).

Everything here is a function of time in seconds, drawn from a ``np.random.Generator`` and then
*evaluated* at whatever times the caller asks for (frame times, audio sample times), so one clip
can be rendered at any frame rate. Two rules keep the clips free of leakage:

* every random process starts well before t = 0 (a burn-in of ``MARGIN_SEC``) and runs past the
  end, so nothing marks the clip start or end and the statistics are the same everywhere;
* the number of random draws never depends on the frame rate or the frame size, so the same
  (seed, split, index) gives the same content at 24, 25, 30 or 60 fps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGIN_SEC = 3.0  # burn-in before t = 0 and run-out after the end for every random process
BURN_IN_GAPS = 10  # renewal processes start this many mean gaps early: stationary inside the clip


# ---------------------------------------------------------------------------- time structure
def renewal_times(
    rng: np.random.Generator, start: float, end: float, min_gap: float, mean_extra: float
) -> np.ndarray:
    """Event times in [start, end): gaps are ``min_gap + Exponential(mean_extra)`` (aperiodic).

    The process is burnt in for ``BURN_IN_GAPS`` mean gaps before ``start``, so its rate is the
    same everywhere in [start, end) (a process started at the clip would be denser near the clip
    start and tell a single stream where a crop begins). The number of draws depends only on
    ``end - start`` and the gap parameters (never on the caller's sampling rate).
    """
    origin = start - BURN_IN_GAPS * (min_gap + mean_extra)
    n_max = int(np.ceil((end - origin) / min_gap)) + 1
    gaps = min_gap + rng.exponential(mean_extra, n_max)
    times = origin + rng.uniform(0.0, min_gap + mean_extra) + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    return times[(times >= start) & (times < end)]


def bumps(t: np.ndarray, onsets: np.ndarray, durations: np.ndarray, peaks=1.0) -> np.ndarray:
    """Sum of non-overlapping Hann bumps ``peak * sin^2(pi * (t - onset) / duration)``."""
    t = np.asarray(t, dtype=np.float64)
    peaks = np.broadcast_to(np.asarray(peaks, dtype=np.float64), np.shape(onsets))
    if len(onsets) == 0:
        return np.zeros(t.shape)
    i = np.clip(np.searchsorted(onsets, t, side="right") - 1, 0, None)
    u = (t - onsets[i]) / durations[i]
    inside = (u >= 0) & (u < 1)
    return np.where(inside, peaks[i] * np.sin(np.pi * np.clip(u, 0, 1)) ** 2, 0.0)


def decays(t: np.ndarray, times: np.ndarray, tau: float) -> np.ndarray:
    """Sum of one-sided exponentials ``exp(-(t - t_e) / tau)`` for ``t >= t_e`` (instant attack)."""
    t = np.asarray(t, dtype=np.float64)
    dt = t[..., None] - np.asarray(times)[None, :]
    return np.where(dt >= 0, np.exp(-np.clip(dt, 0, None) / tau), 0.0).sum(-1)


def telegraph(t: np.ndarray, switch_times: np.ndarray, initial: int) -> np.ndarray:
    """Random 0/1 telegraph signal: the state flips at each switch time."""
    flips = np.searchsorted(switch_times, np.asarray(t), side="right")
    return (initial + flips) % 2


@dataclass(frozen=True)
class Wander:
    """A smooth, stationary random path: a sum of sinusoids with random frequency and phase."""

    freqs: np.ndarray  # (K, n) Hz
    phases: np.ndarray  # (K, n)
    amps: np.ndarray  # (K, n)

    @classmethod
    def draw(cls, rng: np.random.Generator, dims: int, n: int = 3, freq_range=(0.05, 0.3), amp: float = 1.0):
        """``dims`` independent coordinates, each of peak excursion at most ``amp``."""
        freqs = rng.uniform(*freq_range, (dims, n))
        phases = rng.uniform(0, 2 * np.pi, (dims, n))
        weights = rng.uniform(0.5, 1.0, (dims, n))
        return cls(freqs, phases, amp * weights / weights.sum(1, keepdims=True))

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """(len(t), dims) positions."""
        arg = 2 * np.pi * np.asarray(t)[:, None, None] * self.freqs + self.phases
        return (self.amps * np.sin(arg)).sum(-1)


# ---------------------------------------------------------------------------- speech-like
@dataclass(frozen=True)
class Syllables:
    """A random syllable sequence: non-overlapping Hann bumps with a voice per syllable."""

    onset: np.ndarray  # (N,) s, sorted
    duration: np.ndarray  # (N,) s
    peak: np.ndarray  # (N,) envelope peak in (0, 1]
    f0: np.ndarray  # (N,) Hz
    glide: np.ndarray  # (N,) relative f0 change across the syllable
    formants: np.ndarray  # (N, 2) F1, F2 in Hz

    def envelope(self, t: np.ndarray) -> np.ndarray:
        """The syllabic envelope e(t) in [0, 1] (0 in gaps and pauses)."""
        return bumps(t, self.onset, self.duration, self.peak)

    def as_dict(self) -> dict:
        return {k: np.round(getattr(self, k), 4).tolist() for k in self.__dataclass_fields__}


def syllable_track(
    rng: np.random.Generator,
    start: float,
    end: float,
    duration_range=(0.10, 0.35),
    gap_range=(0.03, 0.25),
    pause_prob: float = 0.15,
    pause_range=(0.3, 0.7),
    peak_range=(0.4, 1.0),
    f0_range=(100.0, 250.0),
) -> Syllables:
    """Syllables covering [start, end): random durations, gaps and occasional pauses.

    Durations, gaps and pauses are independent uniforms, so the inter-onset interval has a wide
    spread (0.13 s to 1.05 s) and the envelope has no period: its autocorrelation has no
    secondary peak anywhere near the main one.
    """
    n_max = int(np.ceil((end - start) / (duration_range[0] + gap_range[0]))) + 1
    dur = rng.uniform(*duration_range, n_max)
    is_pause = rng.random(n_max) < pause_prob
    gap = np.where(is_pause, rng.uniform(*pause_range, n_max), rng.uniform(*gap_range, n_max))
    peak = rng.uniform(*peak_range, n_max)
    f0 = np.exp(rng.uniform(np.log(f0_range[0]), np.log(f0_range[1]), n_max))
    glide = rng.uniform(-0.15, 0.15, n_max)
    formants = np.stack([rng.uniform(300, 900, n_max), rng.uniform(900, 2500, n_max)], 1)
    onset = start - rng.uniform(0, 0.5) + np.concatenate([[0.0], np.cumsum(dur + gap)[:-1]])
    keep = onset < end
    return Syllables(onset[keep], dur[keep], peak[keep], f0[keep], glide[keep], formants[keep])


@dataclass(frozen=True)
class SustainedNotes(Syllables):
    """Sung notes: each a held vowel whose envelope rises, stays flat at its peak and falls.

    The envelope is a Tukey window: sin^2 ramps over ``ramp`` of the note at each end, flat in
    between, so most of a note carries no change for a synchronisation model to lock on to (the
    Acappella paper's "sustained vowels"); only the few onsets and releases do.
    """

    ramp: float = 0.15  # share of a note taken by its attack (and by its release)

    def envelope(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        if len(self.onset) == 0:
            return np.zeros(t.shape)
        i = np.clip(np.searchsorted(self.onset, t, side="right") - 1, 0, None)
        u = (t - self.onset[i]) / self.duration[i]
        inside = (u >= 0) & (u < 1)
        edge = np.clip(np.minimum(u, 1 - u) / self.ramp, 0, 1)  # 0 at the note's ends, 1 on the plateau
        return np.where(inside, self.peak[i] * np.sin(0.5 * np.pi * edge) ** 2, 0.0)


def sustained_note_track(
    rng: np.random.Generator,
    start: float,
    end: float,
    duration_range=(0.8, 2.0),
    gap_range=(0.04, 0.2),
    pause_prob: float = 0.1,
    pause_range=(0.3, 0.8),
    peak_range=(0.6, 1.0),
    f0_range=(150.0, 450.0),
    ramp: float = 0.15,
    glide_scale: float = 0.1,
) -> SustainedNotes:
    """Notes covering [start, end) for the ``singing`` toy variant: long (0.8-2 s), steady-pitched
    (the syllable glide scaled by ``glide_scale``) held vowels with short breaths between them, so
    there are ~5x fewer onsets per second than in ``syllable_track``'s speech."""
    syl = syllable_track(rng, start, end, duration_range, gap_range, pause_prob, pause_range, peak_range, f0_range)
    return SustainedNotes(syl.onset, syl.duration, syl.peak, syl.f0, syl.glide * glide_scale, syl.formants,
                          ramp=ramp)


def voiced_audio(
    rng: np.random.Generator, syl: Syllables, t: np.ndarray, sample_rate: int, fmax: float = 4000.0
) -> np.ndarray:
    """A voiced carrier of unit RMS (harmonics of f0 shaped by two formants), times e(t).

    Each syllable owns the time from its onset to the next onset; there f0 glides linearly by
    ``glide`` and the harmonic weights come from its formants, normalised so that the carrier has
    unit RMS in every syllable — the short-time RMS of the result is the envelope itself.
    """
    seg = np.clip(np.searchsorted(syl.onset, t, side="right") - 1, 0, None)
    u = np.clip((t - syl.onset[seg]) / syl.duration[seg], 0, 1)
    f0 = syl.f0[seg] * (1 + syl.glide[seg] * (u - 0.5))
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(f0) / sample_rate

    n_harm = int(fmax // (syl.f0.min() * 0.92)) if len(syl.f0) else 1
    k = np.arange(1, n_harm + 1)
    freq = syl.f0[:, None] * k  # (N, K) nominal harmonic frequencies
    f1, f2 = syl.formants[:, :1], syl.formants[:, 1:]
    formant_gain = 1 + 6 * np.exp(-0.5 * ((freq - f1) / 120) ** 2) + 4 * np.exp(-0.5 * ((freq - f2) / 180) ** 2)
    weight = k**-0.7 * formant_gain
    weight *= freq * 1.08 < min(fmax, 0.45 * sample_rate)  # no harmonic near Nyquist, even after the glide
    weight /= np.sqrt(0.5 * (weight**2).sum(1, keepdims=True))  # unit RMS per syllable
    weight = weight.astype(np.float32)

    # sin(k*phase) by the Chebyshev recurrence: one multiply-add per harmonic
    c2 = (2 * np.cos(phase)).astype(np.float32)
    s_prev, s = np.zeros_like(c2), np.sin(phase).astype(np.float32)
    carrier = np.zeros_like(c2)
    for j in range(n_harm):
        carrier += weight[seg, j] * s
        s_prev, s = s, c2 * s - s_prev
    return syl.envelope(t).astype(np.float32) * carrier


# ---------------------------------------------------------------------------- noise and events
def colored_noise(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Stationary 1/f^alpha noise of unit RMS (alpha 0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    x = np.fft.irfft(spec * f ** (-alpha / 2), n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def constrained_events(
    rng: np.random.Generator,
    duration: float,
    count_range=(2, 5),
    min_gap: float = 0.6,
    mean_extra: float = 2.3,
    tries: int = 100,
) -> np.ndarray:
    """Event times (burn-in included) of a renewal process whose count inside [0, duration) lies
    in ``count_range`` (resampled until it does). Returns all times in [-MARGIN, duration + MARGIN)."""
    for _ in range(tries):
        times = renewal_times(rng, -MARGIN_SEC, duration + MARGIN_SEC, min_gap, mean_extra)
        n_in = np.count_nonzero((times >= 0) & (times < duration))
        if count_range[0] <= n_in <= count_range[1]:
            return times
    raise RuntimeError(f"no event sequence with {count_range} events in {duration} s after {tries} tries")


@dataclass(frozen=True)
class Material:
    """The timbre of one sounding object: a noise burst plus two damped modes."""

    cutoff: float  # Hz, one-pole low-pass on the noise burst
    modes: np.ndarray  # (2,) Hz
    mode_mix: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Material":
        return cls(rng.uniform(1500, 6000), rng.uniform(200, 2500, 2), rng.uniform(0.2, 0.6))


def impact(rng: np.random.Generator, material: Material, length_sec: float, sample_rate: int) -> np.ndarray:
    """A percussive impact: 2 ms attack, exponential decay reaching -40 dB at the end.

    Scaled to unit RMS over its first 20 ms (its loudness), whatever its crest factor.
    """
    n = max(int(length_sec * sample_rate), 8)
    tt = np.arange(n) / sample_rate
    env = np.minimum(tt / 0.002, 1.0) * np.exp(-tt / (length_sec / 4.6))
    noise = rng.standard_normal(n)
    a = np.exp(-2 * np.pi * material.cutoff / sample_rate)  # one-pole low-pass, done as a short IIR
    burst = np.empty(n)
    acc = 0.0
    for i, x in enumerate(noise):  # n <= 2000: a plain loop is cheap enough
        acc = (1 - a) * x + a * acc
        burst[i] = acc
    burst = 0.5 * burst / (burst.std() + 1e-12) + 0.5 * noise  # keep it broadband
    modes = np.sin(2 * np.pi * material.modes[:, None] * tt + rng.uniform(0, 2 * np.pi, (2, 1))).sum(0)
    x = env * ((1 - material.mode_mix) * burst / 2 + material.mode_mix * modes / 2)
    return (x / (np.sqrt(np.mean(x[: int(0.02 * sample_rate)] ** 2)) + 1e-12)).astype(np.float32)


def tone_blip(rng: np.random.Generator, length_sec: float, sample_rate: int) -> np.ndarray:
    """A short tonal sound (Hann-windowed chirp, unit RMS): an off-screen distractor."""
    n = max(int(length_sec * sample_rate), 8)
    tt = np.arange(n) / sample_rate
    f_start, f_end = rng.uniform(400, 1500, 2)
    phase = 2 * np.pi * (f_start * tt + 0.5 * (f_end - f_start) / length_sec * tt**2)
    x = np.sin(np.pi * tt / length_sec) ** 2 * np.sin(phase)
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def add_at(buffer: np.ndarray, sound: np.ndarray, start: int, gain: float = 1.0) -> None:
    """Mix ``sound`` into ``buffer`` from sample ``start`` on (either end may fall outside)."""
    lo, hi = max(start, 0), min(start + len(sound), len(buffer))
    if lo < hi:
        buffer[lo:hi] += gain * sound[lo - start : hi - start]

"""Rendering toy clips: frames and audio as functions of continuous time.

A variant is a function ``fn(rng, t_video, t_audio, size, sample_rate, duration_sec, **params)
-> (frames float32 (T, H, W, 3) in [0, 1], audio float32 (S,), meta dict)`` registered under a
name with its default frame size. It draws all of its randomness in an order that does not
depend on the frame rate or size (see ``signals``), then samples the continuous-time content at
the frame times ``t = i / fps`` (the presentation timestamps the decoder reports) and at the
audio sample times ``t = n / sample_rate``. A zero offset therefore lines the two up exactly.

Variants:

* ``dense``  — a talking-head cartoon: the mouth opening and the loudness of a voiced,
  formant-shaped sound both follow one aperiodic syllabic envelope e(t); nuisance that is not
  synchronised with the sound: head drift, eye blinks, per-frame brightness jitter, noise.
* ``singing`` — the talking head holding long steady vowels (few onsets, slow envelope): the
  toy Acappella of the VocaLiST reproduction.
* ``sparse`` — a small object in a larger scene reacts (flash, swell, hop) at a few random
  times, each with a percussive impact; between events only ambient noise, a hum, moving and
  flickering silent distractor shapes, and occasional off-screen tonal blips.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from avsync.toy import signals as sig

PEAK_RANGE = (0.5, 0.9)  # each clip's audio is scaled to a random peak in this range
JITTER_GRID_HZ = 1000  # per-frame brightness jitter lives on this grid (fps-independent draws)


@dataclass
class ToyClip:
    frames: np.ndarray  # uint8 (T, H, W, 3)
    audio: np.ndarray  # float32 (S,), peak <= 0.9
    fps: float
    sample_rate: int
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    render: Callable
    default_size: tuple[int, int]


VARIANTS: dict[str, Variant] = {}


def register(name: str, size: int | tuple[int, int]):
    """Decorator adding a render function to ``VARIANTS`` under ``name``."""

    def deco(fn):
        VARIANTS[name] = Variant(fn, _hw(size))
        return fn

    return deco


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def frame_size(variant: str, size: int | tuple[int, int] | None = None) -> tuple[int, int]:
    """(H, W) of a variant: ``size`` if given (int = square), else the variant default."""
    return VARIANTS[variant].default_size if size is None else _hw(size)


def render_clip(
    variant: str,
    rng: np.random.Generator,
    duration_sec: float = 10.0,
    fps: float = 25.0,
    size: int | tuple[int, int] | None = None,
    sample_rate: int = 16000,
    **params,
) -> ToyClip:
    """Render one clip of ``variant``; deterministic for a given rng state.

    ``params`` override the variant's keyword defaults (e.g. ``offscreen_rate=0`` for sparse).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown toy variant {variant!r}; known: {sorted(VARIANTS)}")
    t_video = np.arange(round(duration_sec * fps)) / fps
    t_audio = np.arange(round(duration_sec * sample_rate)) / sample_rate
    hw = frame_size(variant, size)
    render = VARIANTS[variant].render
    frames, audio, meta = render(rng, t_video, t_audio, hw, sample_rate, duration_sec, **params)
    np.clip(frames, 0, 1, out=frames)
    frames *= 255
    frames += 0.5
    frames = frames.astype(np.uint8)
    meta = {"variant": variant, **meta}
    return ToyClip(frames, audio.astype(np.float32), float(fps), int(sample_rate), meta)


# ---------------------------------------------------------------------------- drawing
def _ellipse(dy, dx, ry, rx):
    """Anti-aliased coverage: 0.5 - signed distance (first-order estimate), clipped to [0, 1]."""
    ny, nx = dy / ry, dx / rx  # small: (T, h, 1) and (T, 1, w)
    rho = np.sqrt(ny * ny + nx * nx)
    grad = np.sqrt((ny / ry) ** 2 + (nx / rx) ** 2)
    grad /= np.maximum(rho, 1e-6)
    np.maximum(grad, 1 / np.maximum(rx, ry), out=grad)
    rho -= 1
    rho /= grad
    return np.clip(0.5 - rho, 0, 1, out=grad)


def _box(dy, dx, ry, rx):
    return np.clip(0.5 + ry - np.abs(dy), 0, 1) * np.clip(0.5 + rx - np.abs(dx), 0, 1)


_SHAPES = {"ellipse": _ellipse, "box": _box}


def _paint(canvas, cy, cx, ry, rx, color, shape="ellipse") -> None:
    """Blend a moving, anti-aliased shape into ``canvas`` (T, H, W, 3) in place.

    ``cy, cx, ry, rx`` are in pixels (pixel centres at integers), scalars or per-frame (T,);
    ``color`` is (3,) or (T, 3). Only a window around the shape (moved inside the frame) is
    evaluated.
    """
    T, H, W, _ = canvas.shape
    per_frame = [np.broadcast_to(np.asarray(v, np.float32), (T,)) for v in (cy, cx, ry, rx)]
    cy, cx, ry, rx = per_frame
    color = np.broadcast_to(np.asarray(color, np.float32), (T, 3))
    ph = min(2 * int(np.ceil(ry.max())) + 4, H)
    pw = min(2 * int(np.ceil(rx.max())) + 4, W)
    y0 = np.clip(np.floor(cy).astype(int) - ph // 2, 0, H - ph)
    x0 = np.clip(np.floor(cx).astype(int) - pw // 2, 0, W - pw)
    rows = y0[:, None] + np.arange(ph, dtype=np.float32)  # (T, ph)
    cols = x0[:, None] + np.arange(pw, dtype=np.float32)
    dy, dx = rows[:, :, None] - cy[:, None, None], cols[:, None, :] - cx[:, None, None]
    alpha = _SHAPES[shape](dy, dx, ry[:, None, None], rx[:, None, None])
    if ph == H and pw == W:  # the window is the whole frame: in-place arithmetic, no gather
        delta = color[:, None, None, :] - canvas
        delta *= alpha[..., None]
        canvas += delta
        return
    for t in range(T):  # a loop of small slices beats a (T, h, w) fancy-index gather/scatter
        region = canvas[t, y0[t] : y0[t] + ph, x0[t] : x0[t] + pw]
        region += alpha[t, :, :, None] * (color[t] - region)


def _gradient_background(rng, T, H, W, lo=0.25, hi=0.95):
    """A static background: two random colours blended along a random low-frequency wave."""
    c1, c2 = rng.uniform(lo, hi, (2, 3))
    theta, freq, phase = rng.uniform(0, np.pi), rng.uniform(0.3, 1.2), rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
    bg = (c1 + (c2 - c1) * wave[..., None]).astype(np.float32)
    return np.repeat(bg[None], T, 0), (c1 + c2) / 2


def _brightness_jitter(rng, duration_sec, t_video, gain_sd=0.02, offset_sd=0.01):
    """Per-frame gain and offset, white in time, drawn on a fixed grid (fps-independent)."""
    n = int(np.ceil((duration_sec + 1) * JITTER_GRID_HZ))
    gain, offset = 1 + gain_sd * rng.standard_normal(n), offset_sd * rng.standard_normal(n)
    i = np.clip(np.round(t_video * JITTER_GRID_HZ).astype(int), 0, n - 1)
    return gain[i].astype(np.float32)[:, None, None, None], offset[i].astype(np.float32)[:, None, None, None]


def _saturated(hue, value):
    """RGB of fully saturated colours (HSV with s = 1): (len(hue), 3)."""
    return value * np.clip(np.abs((np.asarray(hue)[:, None] * 6 + [0, 4, 2]) % 6 - 3) - 1, 0, 1)


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-12


# ---------------------------------------------------------------------------- dense
@register("dense", size=64)
def render_dense(
    rng, t_video, t_audio, size, sample_rate, duration_sec,
    snr_db=(20.0, 25.0), blink_gap=(1.0, 3.0), drift=0.04, track=sig.syllable_track,
):
    """Talking head. Geometry in fractions of the frame (H for vertical, W for horizontal).

    Mouth: dark ellipse, half-width 0.13 W, half-height 0.008 H + 0.17 H * e(t), so the opening
    goes from ~1 px to 35 % of the frame height. Audio: ``voiced_audio`` (unit-RMS carrier times
    e(t)) plus 1/f^alpha noise (alpha in [0, 1]) at ``snr_db`` below the voice RMS.
    Nuisance: blinks (100-200 ms) with gaps ``blink_gap[0] + Exp(blink_gap[1])`` s, head drift of
    up to ``drift`` of the frame (sum of 3 sinusoids, 0.05-0.4 Hz), brightness jitter (gain sd
    2 %, offset sd 1 %, independent per frame). ``track`` draws the voice's time structure
    (``singing`` passes sustained notes).
    """
    T, (H, W), M = len(t_video), size, sig.MARGIN_SEC
    # 1. appearance (fixed number of draws)
    frames, _ = _gradient_background(rng, T, H, W)
    skin = np.array([0.95, 0.80, 0.70]) + rng.uniform() * (np.array([0.45, 0.30, 0.22]) - [0.95, 0.80, 0.70])
    skin = np.clip(skin + rng.uniform(-0.04, 0.04, 3), 0, 1)
    mouth_col = np.array([0.30, 0.05, 0.07]) * rng.uniform(0.3, 0.6)
    eye_col = np.array([0.10, 0.08, 0.08]) * rng.uniform(0.5, 1.0)
    face_c = np.array([0.47, 0.50]) + rng.uniform(-0.02, 0.02, 2)
    face_r = np.array([0.42, 0.33]) * rng.uniform(0.95, 1.03, 2)
    mouth_rx = 0.13 * rng.uniform(0.9, 1.1)
    # 2. time structure: syllables, blinks, head drift, brightness jitter
    syl = track(rng, -M, duration_sec + M)  # syllables (speech) or sustained notes (singing)
    blinks = sig.renewal_times(rng, -M, duration_sec + M, blink_gap[0], blink_gap[1])
    blink_dur = rng.uniform(0.10, 0.20, len(blinks))
    wander = sig.Wander.draw(rng, 2, n=3, freq_range=(0.05, 0.4), amp=drift)
    gain, offset = _brightness_jitter(rng, duration_sec, t_video)
    # 3. audio scalars, then the audio itself (the only draws that depend on sample_rate)
    snr, alpha, peak = rng.uniform(*snr_db), rng.uniform(0, 1), rng.uniform(*PEAK_RANGE)
    voice = sig.voiced_audio(rng, syl, t_audio, sample_rate)
    audio = voice + sig.colored_noise(rng, len(t_audio), alpha) * (_rms(voice) * 10 ** (-snr / 20))
    audio *= peak / (np.abs(audio).max() + 1e-12)

    env = syl.envelope(t_video)
    closed = sig.bumps(t_video, blinks, blink_dur)
    cy, cx = ((face_c + wander(t_video)) * [H, W]).T
    _paint(frames, cy, cx, face_r[0] * H, face_r[1] * W, skin)
    for side in (-1, 1):
        eye_ry = 0.035 * H * (1 - 0.9 * closed) + 0.3
        _paint(frames, cy - 0.10 * H, cx + side * 0.14 * W, eye_ry, 0.055 * W, eye_col)
    mouth_cy = cy + 0.19 * H
    mouth_ry = 0.008 * H + 0.17 * H * env
    _paint(frames, mouth_cy, cx, mouth_ry, mouth_rx * W, mouth_col)
    frames *= gain
    frames += offset
    meta = dict(
        envelope=env.astype(np.float32),
        syllables=syl,
        blink_times=blinks,
        mouth_center=np.stack([mouth_cy, cx], 1).astype(np.float32),
        mouth_height=(2 * mouth_ry).astype(np.float32),
    )
    return frames, audio, meta


# ---------------------------------------------------------------------------- sparse
@register("sparse", size=96)
def render_sparse(
    rng,
    t_video,
    t_audio,
    size,
    sample_rate,
    duration_sec,
    events_per_10s=(2, 5),
    min_event_gap=0.6,
    snr_db=(20.0, 28.0),
    offscreen_rate=0.1,
    n_distractors=(2, 3),
    react_tau=0.07,
):
    """One sounding object among silent distractors.

    Object: a saturated colour (of 4 drawn hues, the farthest from the background), circle or
    square of diameter 8-10 px at 96 px (0.042-0.052 of the frame), wandering slowly
    (< 0.15 Hz). Events: a renewal process (gaps ``min_event_gap`` + Exp(2.3 s)) resampled until
    ``events_per_10s`` (scaled to the duration) fall in the clip. At an event time t_e the object
    reacts with r(t) = exp(-(t - t_e) / react_tau): colour towards white, size x(1 + 0.8 r), a
    hop of 0.05 H * r — visible for 3-4 frames at 25 fps. Audio: one impact (40-120 ms, 2 ms
    attack, exponential decay) per event with the clip's own "material", at a loudness (RMS of
    its first 20 ms) of 0.7-1; ambient 1/f^alpha noise plus a stationary hum, ``snr_db`` below
    that loudness; off-screen tonal blips (Poisson, ``offscreen_rate`` per s) 6-12 dB quieter
    than the impacts. Distractors: 2-3 silent shapes of 6-13 px, wandering faster (< 0.4 Hz);
    each flickers with p = 0.5 (telegraph colour switching, ~1 switch/s).
    """
    T, (H, W), M, D = len(t_video), size, sig.MARGIN_SEC, duration_sec
    # 1. scene and object appearance
    frames, bg_mean = _gradient_background(rng, T, H, W, 0.15, 0.85)
    hues = _saturated(rng.uniform(0, 1, 4), rng.uniform(0.6, 0.8))
    obj_col = hues[np.argmax(np.abs(hues - bg_mean).sum(1))]
    obj_shape = ("ellipse", "box")[rng.integers(2)]
    obj_r = rng.uniform(0.021, 0.026)
    obj_path = sig.Wander.draw(rng, 2, n=2, freq_range=(0.03, 0.15), amp=0.18)
    obj_c0 = rng.uniform(0.3, 0.7, 2)
    n_dis = rng.integers(n_distractors[0], n_distractors[1] + 1)
    dis = [
        dict(
            shape=("ellipse", "box")[rng.integers(2)],
            r=rng.uniform(0.03, 0.07),
            col=rng.uniform(0.05, 0.95, 3),
            c0=rng.uniform(0.3, 0.7, 2),
            path=sig.Wander.draw(rng, 2, n=2, freq_range=(0.08, 0.4), amp=0.2),
            flicker=rng.random() < 0.5,
            switches=sig.renewal_times(rng, -M, D + M, 0.15, 0.85),
            initial=rng.integers(2),
        )
        for _ in range(max(n_distractors))
    ][:n_dis]
    # 2. events
    lo, hi = int(np.floor(events_per_10s[0] * D / 10 + 1e-9)), int(np.ceil(events_per_10s[1] * D / 10 - 1e-9))
    events = sig.constrained_events(rng, D, (lo, max(hi, 1)), min_event_gap)
    offscreen = np.zeros(0)
    if offscreen_rate > 0:
        offscreen = sig.renewal_times(rng, -M, D + M, 1.0, max(1 / offscreen_rate - 1, 0.05))
    gain, offset = _brightness_jitter(rng, D, t_video, 0.01, 0.005)
    # 3. audio
    material = sig.Material.draw(rng)
    snr, alpha, peak = rng.uniform(*snr_db), rng.uniform(0.5, 1.5), rng.uniform(*PEAK_RANGE)
    hum_f, hum_rel = rng.uniform(50, 150), rng.uniform(0.3, 0.8)
    hum_phase = rng.uniform(0, 2 * np.pi, 3)
    audio = np.zeros(len(t_audio), np.float32)
    for te in events:
        length = rng.uniform(0.04, 0.12)
        sound = sig.impact(rng, material, length, sample_rate)
        sig.add_at(audio, sound, round(te * sample_rate), rng.uniform(0.7, 1.0))
    for to in offscreen:
        length = rng.uniform(0.10, 0.25)
        sound = sig.tone_blip(rng, length, sample_rate)
        sig.add_at(audio, sound, round(to * sample_rate), 10 ** (-rng.uniform(6, 12) / 20))
    amb_rms = 10 ** (-snr / 20)
    harmonics = zip((1, 2, 3), (1.0, 0.5, 0.25), hum_phase)
    hum = sum(a * np.sin(2 * np.pi * k * hum_f * t_audio + p) for k, a, p in harmonics)
    audio += amb_rms * (sig.colored_noise(rng, len(t_audio), alpha) + hum_rel * hum / _rms(hum))
    audio *= peak / (np.abs(audio).max() + 1e-12)

    # distractors behind the object
    dis_xy = []
    for d in dis:
        yx = (d["c0"] + d["path"](t_video)) * [H, W]
        dim = d["flicker"] & (sig.telegraph(t_video, d["switches"], d["initial"]) == 1)
        col = d["col"] * np.where(dim, 0.35, 1.0)[:, None]
        _paint(frames, yx[:, 0], yx[:, 1], d["r"] * H, d["r"] * W, col, d["shape"])
        dis_xy.append(yx)
    react = np.minimum(sig.decays(t_video, events, react_tau), 1.0)
    yx = (obj_c0 + obj_path(t_video)) * [H, W]
    yx[:, 0] -= 0.05 * H * react
    scale = 1 + 0.8 * react
    col = obj_col + react[:, None] * (1 - obj_col)  # flashes white
    _paint(frames, yx[:, 0], yx[:, 1], obj_r * H * scale, obj_r * W * scale, col, obj_shape)
    frames *= gain
    frames += offset
    in_clip = events[(events >= 0) & (events < D)]
    meta = dict(
        event_times=in_clip,
        offscreen_times=offscreen[(offscreen >= 0) & (offscreen < D)],
        object_center=yx.astype(np.float32),
        object_color=obj_col.astype(np.float32),
        object_reaction=react.astype(np.float32),
        distractor_centers=np.stack(dis_xy).astype(np.float32),
        distractor_flicker=np.array([d["flicker"] for d in dis]),
    )
    return frames, audio, meta


# ---------------------------------------------------------------------------- singing
@register("singing", size=64)
def render_singing(rng, t_video, t_audio, size, sample_rate, duration_sec, **params):
    """The talking head singing: the same face, nuisance and mouth-follows-loudness rendering as
    ``dense``, but the voice holds long steady vowels (:func:`~avsync.toy.signals.sustained_note_track`:
    slow flat-topped envelope, few onsets) — the toy Acappella, harder to synchronise than speech
    because a short window inside a held note shows no change to align."""
    return render_dense(rng, t_video, t_audio, size, sample_rate, duration_sec,
                        track=params.pop("track", sig.sustained_note_track), **params)


# ---------------------------------------------------------------------------- dense_scene
@register("dense_scene", size=96)
def render_dense_scene(
    rng, t_video, t_audio, size, sample_rate, duration_sec,
    face_frac=0.42, n_distractors=(2, 3), wander_amp=0.12,
):
    """The talking head, small, in a larger scene: dense in time, sparse in space.

    The toy counterpart of LRS3 'no face crop' (SparseSync's dense-sparse setting). A ``dense``
    clip rendered at ``face_frac`` of the frame height (same envelope, audio and nuisance) is
    pasted at a slowly wandering position on a larger background with 2-3 silent moving
    distractor shapes, so the model has to find the mouth before it can use it.
    """
    T, (H, W), M = len(t_video), size, sig.MARGIN_SEC
    side = max(18, int(round(face_frac * H)) // 2 * 2)
    face, audio, meta = render_dense(rng, t_video, t_audio, (side, side), sample_rate, duration_sec)
    frames, _ = _gradient_background(rng, T, H, W, 0.15, 0.85)
    path = sig.Wander.draw(rng, 2, n=2, freq_range=(0.03, 0.12), amp=wander_amp)
    c0 = rng.uniform(0.35, 0.65, 2)
    n_dis = rng.integers(n_distractors[0], n_distractors[1] + 1)
    for _ in range(n_dis):
        r = rng.uniform(0.03, 0.07)
        col = rng.uniform(0.05, 0.95, 3)
        d_c0 = rng.uniform(0.25, 0.75, 2)
        d_path = sig.Wander.draw(rng, 2, n=2, freq_range=(0.08, 0.4), amp=0.2)
        yx = (d_c0 + d_path(t_video)) * [H, W]
        _paint(frames, yx[:, 0], yx[:, 1], r * H, r * W, col, ("ellipse", "box")[rng.integers(2)])
    top_left = ((c0 + path(t_video)) * [H, W] - side / 2).round().astype(int)
    top_left = np.clip(top_left, 0, [H - side, W - side])
    for i, (y, x) in enumerate(top_left):  # the head occludes the distractors
        frames[i, y:y + side, x:x + side] = face[i]
    meta = dict(meta, face_top_left=top_left.astype(np.int32), face_side=side)
    return frames, audio, meta

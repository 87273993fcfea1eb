"""The recipes' training augmentations (data_modules/augment.py, avsync.inputs.SpecAugment) on a
1.5 s piece of a real VGGSound clip: seeded, shape- and dtype-keeping, doing what each one should,
and moving nothing in time."""
import dataclasses

import numpy as np
import pytest
import torch
import torchvision

from avsync.data_modules.augment import (Augmentations, color_jitter, gaussian_noise, greyscale, lowpass,
                                         pitch_shift, reverb, reverb_impulse_response, upscale, volume)
from avsync.data_modules.base import AVClipDataset, ClipRecord
from avsync.inputs import InputSpec, LogSpectrogram, SpecAugment
from avsync.media import read_clip
from avsync.offsets import FixedOffsets, RandomOffsetSampler, get_grid

FPS, SR, SECONDS = 25, 16000, 1.5
CLIP = "vggsound/h264_video_25fps_256side_16000hz_aac/3qesirWAGt4_20000_30000.mp4"
ALL_ON = Augmentations(crop_upscale_p=1, smaller_crop=40, color_jitter_p=1, greyscale_p=1, reverb_p=1, volume_p=1,
                       pitch_shift_p=1, lowpass_p=1, noise_p=1)


@pytest.fixture(scope="module")
def piece(real_fixtures):
    clip = read_clip(real_fixtures / CLIP, 3.0, 3.0, SECONDS, FPS, SR, size=64)
    return clip["video"], clip["audio"]


def _band_energy(wave, lo_hz, hi_hz):
    spec = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / SR)
    return spec[(freqs >= lo_hz) & (freqs < hi_hz)].sum()


def _envelope(wave, hop=80):
    """RMS envelope at 5 ms steps."""
    n = len(wave) // hop
    return np.sqrt((wave[: n * hop].reshape(n, hop) ** 2).mean(1))


def _lag_of_best_match(a, b, max_lag=40):
    """Lag (in envelope steps) at which b best matches a; > 0: b is later."""
    a, b = a - a.mean(), b - b.mean()
    lags = range(-max_lag, max_lag + 1)
    scores = [np.dot(a[max(0, -k): len(a) - max(0, k)], b[max(0, k): len(b) - max(0, -k)]) for k in lags]
    return list(lags)[int(np.argmax(scores))]


def test_off_by_default_and_draws_nothing(piece):
    video, audio = piece
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    aug = Augmentations()
    assert aug.video(video, FPS, rng) is video and aug.audio(audio, SR, rng) is audio
    assert aug.crop_size(48, rng) == 48
    assert rng.bit_generator.state == state  # recipes without augmentation keep their random stream


def test_seeded_shape_and_dtype_kept(piece):
    video, audio = piece
    runs = [(ALL_ON.video(video, FPS, np.random.default_rng(s)), ALL_ON.audio(audio, SR, np.random.default_rng(s)))
            for s in (1, 1, 2)]
    (v1, a1), (v1b, a1b), (v2, a2) = runs
    assert np.array_equal(v1, v1b) and np.array_equal(a1, a1b)
    assert not np.array_equal(a1, a2)  # the noise differs
    assert v1.shape == video.shape and v1.dtype == np.uint8
    assert a1.shape == audio.shape and a1.dtype == np.float32


def test_colour_jitter_is_torchvisions(piece):
    """The same function as the authors' torchvision ColorJitter(0.8, 0.8, 0.8, 0.2) for its drawn parameters."""
    x = torch.from_numpy(piece[0][:8]).permute(0, 3, 1, 2).contiguous()
    jitter = torchvision.transforms.ColorJitter(0.8, 0.8, 0.8, 0.2)
    for seed in range(3):
        torch.manual_seed(seed)
        expected = jitter(x)
        torch.manual_seed(seed)
        order, b, c, s, h = jitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
        assert torch.equal(color_jitter(x, order, b, c, s, h), expected)
    assert not torch.equal(expected, x)


def test_greyscale_gives_equal_channels(piece):
    video = piece[0]
    out = Augmentations(greyscale_p=1).video(video, FPS, np.random.default_rng(0))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert not np.array_equal(video[..., 0], video[..., 1])
    x = torch.from_numpy(video).permute(0, 3, 1, 2)
    assert torch.equal(greyscale(x), torchvision.transforms.functional.rgb_to_grayscale(x, 3))


def test_colour_draws_per_segment(piece):
    """segment_sec (Synchformer's stage I): each 0.64 s segment is greyed, or not, on its own."""
    video = piece[0][:32]  # two 16-frame segments
    outs = [Augmentations(greyscale_p=0.5, segment_sec=0.64).video(video, FPS, np.random.default_rng(s))
            for s in range(16)]
    grey = {tuple(bool(np.array_equal(o[i:i + 16, ..., 0], o[i:i + 16, ..., 2])) for i in (0, 16)) for o in outs}
    assert (True, False) in grey and (False, True) in grey


def _dataset(real_fixtures, augment, frame_size=48):
    spec = InputSpec(fps=FPS, duration_sec=SECONDS, frame_size=frame_size, resize_short_side=64,
                     sample_rate=SR, offset_classes=21)
    sampler = RandomOffsetSampler(get_grid(21), crop_sec=SECONDS, max_source_sec=None, jitter_sec=0.05,
                                  start_step_sec=1 / FPS)
    record = ClipRecord("3qesirWAGt4_20000_30000", real_fixtures / CLIP, 10.0, "train")
    return AVClipDataset([record], spec, True, sampler, augment=augment)


def test_dataset_augments_without_moving_the_windows_or_label(real_fixtures):
    plain, augmented = _dataset(real_fixtures, None), _dataset(real_fixtures, ALL_ON)
    for seed in (0, 1):
        torch.manual_seed(seed)
        a = plain[0]
        torch.manual_seed(seed)
        b = augmented[0]
        for key in ("target", "offset_sec", "video_start_sec", "audio_start_sec"):
            assert a[key] == b[key] if key != "target" else torch.equal(a[key], b[key])
        assert b["video"].shape == a["video"].shape == (plain.spec.num_frames, 48, 48, 3) and b["video"].dtype == torch.uint8
        assert b["audio"].shape == a["audio"].shape and b["audio"].dtype == torch.float32
        assert not torch.equal(a["audio"], b["audio"]) and not torch.equal(a["video"], b["video"])


def test_crop_upscale_is_a_smaller_crop_resized(real_fixtures, piece):
    """With crop_upscale_p = 1 the 48 px training crop is a 40 px crop of the 64 px frames upscaled."""
    data = _dataset(real_fixtures, Augmentations(crop_upscale_p=1, smaller_crop=40))
    data.spec = InputSpec(**{**data.spec.__dict__, "hflip": False})
    frames = piece[0][:4]
    out = data._crop(frames, np.random.default_rng(3))
    assert out.shape == (4, 48, 48, 3)
    height, width = frames.shape[1:3]
    matches = [(y, x) for y in range(height - 39) for x in range(width - 39)
               if np.array_equal(upscale(frames[:, y:y + 40, x:x + 40], 48), out)]
    assert len(matches) == 1
    assert np.array_equal(data._crop(frames, None), frames[:, 8:56, (width - 48) // 2:(width - 48) // 2 + 48])


def test_lowpass_removes_energy_above_cutoff(piece):
    audio = piece[1] * 0.5
    out = lowpass(audio, SR, 100.0)
    assert out.shape == audio.shape and out.dtype == np.float32
    assert _band_energy(out, 1000, 8000) < 1e-3 * _band_energy(audio, 1000, 8000)  # > 30 dB down
    assert _band_energy(out, 0, 60) > 0.5 * _band_energy(audio, 0, 60)


def test_pitch_shift_moves_the_spectrum_by_the_ratio_and_keeps_time(piece):
    audio = piece[1]
    out = pitch_shift(audio, SR, 1000.0)
    assert out.shape == audio.shape and out.dtype == np.float32
    freqs = np.fft.rfftfreq(2048, 1 / SR)

    def mean_spectrum(w):
        frames = np.lib.stride_tricks.sliding_window_view(w, 2048)[::512] * np.hanning(2048)
        return np.log(np.abs(np.fft.rfft(frames, axis=1)).mean(0) + 1e-6)

    s_in, s_out = mean_spectrum(audio), mean_spectrum(out)
    band = (freqs > 100) & (freqs < 4000)  # moved up by 1.78 this stays below 7.2 kHz

    def match(k):  # how well the output at k*f follows the input at f
        return np.corrcoef(s_in[band], np.interp(k * freqs[band], freqs, s_out))[0, 1]

    ratios = np.linspace(1.2, 2.4, 121)
    best = ratios[int(np.argmax([match(k) for k in ratios]))]
    assert abs(best - 2 ** (1000 / 1200)) < 0.03, best
    assert _lag_of_best_match(_envelope(audio), _envelope(out)) in (-1, 0, 1)  # within 5 ms


def test_reverb_is_causal_same_length_and_decays(piece):
    audio = piece[1].copy()
    out = reverb(audio, SR)
    assert out.shape == audio.shape and out.dtype == np.float32 and not np.allclose(out, audio)
    half = len(audio) // 2
    late = audio.copy()
    late[:half] = 0  # nothing before the sound starts: the reverb adds no time advance
    assert np.abs(reverb(late, SR)[:half]).max() < 1e-6 * np.abs(late).max()  # FFT round-off only
    early = audio.copy()
    early[half:] = 0  # a tail after the sound stops, decaying
    tail = reverb(early, SR)[half:]
    quarter = len(tail) // 2
    assert 0 < np.sum(tail[quarter:] ** 2) < np.sum(tail[:quarter] ** 2)
    # sox's defaults give comb feedback 0.882; this response decays by ~33 dB/s (RT60 about 1.8 s)
    ir = reverb_impulse_response(SR, 3 * SR).astype(np.float64)
    db = [10 * np.log10(np.sum(ir[i * SR // 2:(i + 1) * SR // 2] ** 2)) for i in range(1, 5)]
    per_sec = -np.mean(np.diff(db)) * 2
    assert 25 < per_sec < 50, per_sec
    assert _lag_of_best_match(_envelope(audio), _envelope(out)) >= 0


def test_volume_and_noise(piece):
    audio = piece[1]
    assert np.array_equal(volume(audio, 2.0), np.clip(audio * 2, -1, 1))
    noisy = gaussian_noise(audio, 0.01, np.random.default_rng(0))
    assert noisy.dtype == np.float32 and abs(np.std(noisy - audio) - 0.01) < 5e-4


def test_spec_augment_masks_one_band_each_within_the_widths(piece):
    wave = torch.from_numpy(piece[1]).repeat(4, 1)
    spec = torch.log(torch.stft(wave, 512, 128, window=torch.hann_window(512), return_complex=True).abs() ** 2 + 1e-6)
    aug = SpecAugment(p=1.0, freq_mask_param=64, time_mask_param=100, mask_value=-100.0)
    out = aug(spec, generator=torch.Generator().manual_seed(0))
    again = aug(spec, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again) and out.shape == spec.shape and out.dtype == spec.dtype
    for b in range(4):
        masked = out[b] == -100.0
        rows, cols = masked.all(1).nonzero().flatten(), masked.all(0).nonzero().flatten()
        for idx, limit in ((rows, 64), (cols, 100)):
            if len(idx):
                assert len(idx) < limit and int(idx[-1] - idx[0]) == len(idx) - 1  # one contiguous band
        kept = ~masked
        assert torch.equal(out[b][kept], spec[b][kept])  # everything else untouched
    assert (out == -100.0).any()
    assert torch.equal(SpecAugment(p=0.0)(spec), spec)


def test_log_spectrogram_masks_in_training_only(piece):
    wave = torch.from_numpy(piece[1])[None]
    front = LogSpectrogram(augment=SpecAugment(p=1.0))
    clean = LogSpectrogram()
    torch.manual_seed(0)
    assert not torch.equal(front.train()(wave), clean(wave))
    assert torch.equal(front.eval()(wave), clean(wave))


def test_invalid_probability_is_refused():
    with pytest.raises(ValueError, match="reverb_p"):
        Augmentations(reverb_p=1.5)


def test_in_sync_jitter_moves_audio_only_when_asked(real_fixtures):
    """Synchformer's stage I jitters the audio of in-sync clips by U[-0.05, 0.05] s; the label stays 0,
    and evaluation plans never jitter. Off by default (the frame-shift models keep the frame grid)."""
    from avsync.data_modules.base import AVSyncDataModule

    spec = InputSpec(fps=FPS, duration_sec=SECONDS, frame_size=48, resize_short_side=64, sample_rate=SR,
                     offset_classes=None, max_frame_shift=0)
    for jitter in (0.0, 0.05):
        module = AVSyncDataModule(input_spec=spec, max_source_sec=None, in_sync_jitter_sec=jitter)
        sampler = module.build_sampler(spec)
        rng = np.random.default_rng(0)
        plans = [sampler.sample(10.0, rng) for _ in range(50)]
        shifts = np.array([p.audio_start_sec - p.video_start_sec for p in plans])
        assert all(p.offset_sec == 0 for p in plans) and np.all(np.abs(shifts) <= jitter + 1e-9)
        assert (np.abs(shifts).max() > 0.02) == (jitter > 0)
        assert sampler.sample(10.0, rng, jitter=False).audio_jitter_sec == 0.0
    framed = dataclasses.replace(spec, max_frame_shift=15)
    assert AVSyncDataModule(input_spec=framed, in_sync_jitter_sec=0.05).build_sampler(framed).jitter_sec == 0.0

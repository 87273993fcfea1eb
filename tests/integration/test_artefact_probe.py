"""``avsync probe-artefacts``: the trim maths, the command, and that it tells a leak from none."""
import json

import numpy as np
import pytest

import torch

from avsync.artefact_probe import ProbeConfig, _Inputs, _trim, _window, probe_clips, run_probe
from avsync.cli import main as cli_main
from avsync.media import write_mp4


def write_set(folder, leak: bool, clips: int = 6, size: int = 16):
    """10 s clips at 10 fps; with ``leak`` the brightness ramps with time (the start is visible)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        rng = np.random.default_rng(i)
        base = rng.integers(0, 150, (1, size, size, 3)).astype(np.float32)
        frames = base + rng.integers(0, 20, (100, size, size, 3))
        if leak:
            frames += np.linspace(0, 100, 100)[:, None, None, None]
        write_mp4(folder / f"{i}.mp4", np.clip(frames, 0, 255).astype(np.uint8), 10.0, preset="ultrafast")
    return sorted(folder.glob("*.mp4"))


def test_trims_start_on_the_class_grid():
    audio = np.arange(10 * 8000)
    assert _trim(audio, 0, "audio")[0] == 0 and len(_trim(audio, 0, "audio")) == 40000
    assert _trim(audio, 49, "audio")[0] == 49 * 800 and len(_trim(audio, 49, "audio")) == 40000
    video = np.arange(100)
    assert _trim(video, 7, "video").tolist() == list(range(7, 57))


def test_command_reports_accuracy_against_chance(tmp_path, capsys):
    write_set(tmp_path / "clips", leak=False, clips=3)
    out = tmp_path / "probe.json"
    assert cli_main(["probe-artefacts", str(tmp_path / "clips"), "--stream", "video", "--steps", "2",
                     "--size", "16", "--valid-fraction", "0.34", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "chance 2 %" in printed and "chance 10 %" in printed
    result = json.loads(out.read_text())
    assert result["clips_valid"] == 1 and result["clips_train"] == 2
    assert 0 <= result["acc1"] <= result["acc5"] <= 1


@pytest.mark.slow
def test_probe_finds_a_planted_leak_and_none_without_it(tmp_path):
    config = ProbeConfig(stream="video", steps=60, size=16, valid_fraction=0.34)
    leaky = run_probe(write_set(tmp_path / "ramp", leak=True), config)
    clean = run_probe(write_set(tmp_path / "flat", leak=False), config)
    assert leaky.leaks and leaky.acc5 >= 0.3, leaky
    assert not clean.leaks, clean


def noise_clips(rate: int, mark: str | None, clips: int = 6) -> list[np.ndarray]:
    """10 s of white noise per clip; ``periodic``: every 256th-sample block starts 32 samples at half
    gain (a frame-periodic codec mark); ``drift``: the level rises by 6 dB over the first 6 s (an
    encoder that settles, as AAC at 44.1 kHz does here)."""
    out = []
    for i in range(clips):
        x = np.random.default_rng(i).uniform(-0.5, 0.5, 10 * rate).astype(np.float32)
        if mark == "periodic":
            x[(np.arange(len(x)) % 256) < 32] *= 0.5
        elif mark == "drift":  # +6 dB over the first 6 s, then flat
            x *= 10 ** (np.minimum(np.arange(len(x)) / (6 * rate), 1.0) * 6 / 20).astype(np.float32)
        out.append(x)
    return out


FINE = dict(n_fft=64, hop=32, bands=8, crop_sec=0.4)  # 8 kHz: 4 columns per 256-sample period


@pytest.mark.parametrize("mark, config", [("periodic", FINE), ("drift", dict(n_fft=512, hop=256, bands=8))])
def test_probe_finds_planted_audio_marks(mark, config):
    result = probe_clips(noise_clips(8000, mark), ProbeConfig(stream="audio", arch="small", steps=40, valid_fraction=0.34, **config))
    assert result.leaks, result


def test_probe_finds_no_leak_in_pure_noise():
    result = probe_clips(noise_clips(8000, None), ProbeConfig(stream="audio", arch="small", steps=40, valid_fraction=0.34, **FINE))
    assert not result.leaks, result


def test_audio_input_pools_bands_and_crops_the_trim():
    inputs = _Inputs("audio", n_fft=64, hop=32, bands=8, crop=400)
    out = inputs(torch.randn(3, 40000))
    assert out.shape == (3, 1, 8, (400 - 64) // 32 + 1)


def test_bad_probe_input_is_refused():
    clips = noise_clips(8000, None, clips=2)
    with pytest.raises(ValueError, match="same length"):
        probe_clips([clips[0], clips[1][:-8]], ProbeConfig(stream="audio", steps=1))
    with pytest.raises(ValueError, match="fewer than n_fft"):
        probe_clips(clips, ProbeConfig(stream="audio", steps=1, n_fft=512, crop_sec=0.01))
    with pytest.raises(ValueError, match="stream"):
        probe_clips(clips, ProbeConfig(stream="speech", steps=1))


def test_video_window_is_random_in_training_and_central_in_evaluation():
    trim = np.arange(2 * 8 * 8 * 3, dtype=np.int64).reshape(2, 8, 8, 3)
    central = _window(trim, 4, None)
    assert central.shape == (2, 4, 4, 3) and (central == trim[:, 2:6, 2:6]).all()
    rng = np.random.default_rng(0)
    corners = {tuple(_window(trim, 4, rng)[0, 0, 0]) for _ in range(20)}
    assert len(corners) > 1  # the window moves, the same in every frame:
    drawn = _window(trim, 4, np.random.default_rng(1))
    top, left = np.argwhere((trim[0] == drawn[0, 0, 0]).all(-1))[0]
    assert (drawn == trim[:, top : top + 4, left : left + 4]).all()
    with pytest.raises(ValueError, match="larger than the frames"):
        _window(trim, 9, None)

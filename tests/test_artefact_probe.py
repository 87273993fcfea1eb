"""``avsync probe-artefacts``: the trim maths, the command, and that it tells a leak from none."""
import json

import numpy as np
import pytest

from avsync.artefact_probe import ProbeConfig, _trim, run_probe
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

"""`avsync title-report` end to end on synthetic toy titles written as real mp4 files.

No trained DiVAS exists inside a test, so the clip predictions come from
:class:`avsync.toy.oracle.ToyOracleScorer`, a PairScorer built on the toy generator's known
ground truth (the mouth height and the voice loudness both follow the same envelope). The point
is the title pipeline — reading a long video at its own rate, clip predictions, confidence
filter, RANSAC verdict, JSON and timeline plot — not the model. The CLI test runs the same
pipeline with an untrained toy DiVAS checkpoint and checks only the outputs' form.
"""
import json

import numpy as np
import pytest
import torch

from avsync.cli import main
from avsync.papers.divas.module import DiVASModule
from avsync.title.report import clip_starts, title_report
from avsync.toy.oracle import ToyOracleScorer
from avsync.toy.title import write_title

DURATION = 90.0  # a minute and a half of talking head at 25 fps, 32 px
CLIPS = dict(frame_size=32, clip_sec=3.0, hop_sec=17.0, window_sec=0.4)


@pytest.mark.parametrize("name, offset_ms, verdict, first_ms, last_ms", [
    ("constant_lag", lambda t: np.full_like(t, -120.0), "constant lag", -120.0, -120.0),
    ("drift_early", lambda t: t / DURATION * 240.0, "drift early", 0.0, 240.0),
])
def test_title_verdicts_on_synthetic_titles(tmp_path, name, offset_ms, verdict, first_ms, last_ms):
    video = write_title(tmp_path / f"{name}.mp4", DURATION, offset_ms, seed=3)
    report = title_report(video, ToyOracleScorer(), tmp_path / "out", **CLIPS)
    assert report["verdict"] == verdict
    assert report["confidence"] >= 0.8
    assert len(report["clips"]) == 6
    # the fitted line is within a frame of the injected offset at both ends
    assert report["start_offset_ms"] == pytest.approx(first_ms + 1.5 / DURATION * (last_ms - first_ms), abs=40)
    assert report["end_offset_ms"] == pytest.approx(first_ms + 86.5 / DURATION * (last_ms - first_ms), abs=40)
    saved = json.loads((tmp_path / "out" / f"{name}_sync.json").read_text())
    assert saved["verdict"] == verdict and len(saved["clips"]) == 6
    assert (tmp_path / "out" / f"{name}_timeline.png").stat().st_size > 1000


def test_clip_starts():
    assert clip_starts(10.0, 3.0, 3.0) == [0.0, 3.0, 6.0]
    assert clip_starts(2.0, 3.0, 3.0) == []
    with pytest.raises(ValueError):
        clip_starts(10.0, 3.0, 0.0)


def test_cli_writes_report_from_a_divas_checkpoint(tmp_path, capsys):
    torch.manual_seed(0)
    module = DiVASModule(arch="divas_toy")
    ckpt = tmp_path / "divas_toy.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, ckpt)
    video = write_title(tmp_path / "short.mp4", 8.0, lambda t: np.zeros_like(t))
    assert main(["title-report", str(video), "--ckpt", str(ckpt), "--out", str(tmp_path / "rep"),
                 "--clip-sec", "2.0"]) == 0
    report = json.loads((tmp_path / "rep" / "short_sync.json").read_text())
    assert report["verdict"] in {"in sync", "constant lead", "constant lag", "drift early", "drift late",
                                 "intermittent", "undetermined"}
    assert len(report["clips"]) == 4 and report["fps"] == 25.0
    assert (tmp_path / "rep" / "short_timeline.png").exists()
    assert "agreement" in capsys.readouterr().out

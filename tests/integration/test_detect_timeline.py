"""``avsync detect --timeline`` (AVST Fig. 7): a moving window over a long toy title whose offset
changes, decided window by window as the file-level answer is; PNG, CSV and JSON outputs."""
import csv
import json

import numpy as np
import pytest
import torch

from avsync.cli import main
from avsync.detect.cli import detect_file
from avsync.detect.detectors import GridDetector, ScoreSearchDetector, SearchSetup
from avsync.detect.timeline import timeline
from avsync.inputs import InputSpec
from avsync.papers.sparsesync.module import SparseSyncModule
from avsync.toy.oracle import ToyOracleScorer
from avsync.toy.title import write_title


class _OracleModule:
    """Stands in for a trained score-search model: the toy oracle at 25 fps on full 32 px frames,
    with a 2 s input (window of 10 frames searched over ±15 frames, plus 10 more windows)."""

    input_spec = InputSpec(fps=25.0, duration_sec=2.0, frame_size=32, resize_short_side=None, offset_classes=None)
    device = torch.device("cpu")


@pytest.fixture(scope="module")
def step_title(tmp_path_factory):
    """In sync for 5 s, then the audio leads by 0.2 s (10 s)."""
    return write_title(tmp_path_factory.mktemp("timeline") / "step.mp4", 10.0,
                       lambda t: np.where(t < 5.0, 0.0, 200.0), seed=4)


def _oracle_detector():
    return ScoreSearchDetector(_OracleModule(), SearchSetup(ToyOracleScorer(), 25.0, 16000, 10, 15, 16))


def test_search_timeline_follows_an_offset_that_changes(step_title):
    detector = _oracle_detector()
    detection, scores, decoded = detect_file(detector, step_title)
    line = timeline(detector, decoded, scores)  # defaults: the model's 2 s input, every 0.5 s (12.5 frames)
    assert line.window_sec == 2.0 and line.hop_sec == 0.5 and line.rows.shape == (len(line.starts_sec), 31)
    # window k starts at the frame nearest k x 0.5 s: 12 and 13 frames in turn, no drift
    assert np.allclose(line.starts_sec, np.floor(np.arange(len(line.starts_sec)) * 12.5 + 0.5) / 25)
    assert line.starts_sec[-1] + 2.0 <= 10.0 + 1e-6 and line.starts_sec[-1] + 2.5 > 10.0
    early, late = line.best_sec[line.starts_sec + 2.0 <= 5.0], line.best_sec[line.starts_sec >= 5.0]
    assert len(early) >= 5 and np.mean(np.abs(early) < 0.05) > 0.9, early
    assert len(late) >= 5 and np.mean(np.abs(late - 0.2) < 0.05) > 0.9, late
    # each window is decided as a file holding just that window would be
    first = scores.rows[: 2 * 25 - 40 + 1]
    assert np.allclose(line.rows[0], first.mean(0))
    # the whole file is one window when the window is longer than the file
    whole = timeline(detector, decoded, scores, window_sec=60.0)
    assert len(whole.starts_sec) == 1 and whole.best_sec[0] == detection.offset_sec
    assert whole.confidence[0] == pytest.approx(detection.confidence)


def test_grid_timeline_takes_crops_of_the_model_length(step_title):
    module = SparseSyncModule(arch="sparsesync_toy", input_overrides={"frame_size": 32, "resize_short_side": 32})
    detector = GridDetector(module.eval())
    detection, scores, decoded = detect_file(detector, step_title, max_crops=None)
    line = timeline(detector, decoded, scores, hop_sec=1.0)
    assert line.window_sec == module.input_spec.duration_sec == 5.0 and len(line.starts_sec) == 6
    assert np.allclose(line.rows.sum(1), 1.0) and np.allclose(line.confidence, line.rows.max(1))
    # the file-level answer's crops (back to back: 0 s and 5 s) are the timeline's first and last windows
    assert np.allclose(line.rows[[0, 5]], scores.rows) and np.allclose(line.starts_sec, np.arange(6.0))
    with pytest.raises(ValueError, match="input length"):
        timeline(detector, decoded, scores, window_sec=2.0)


def test_cli_writes_png_csv_and_json(step_title, tmp_path, monkeypatch, capsys):
    detector = _oracle_detector()
    monkeypatch.setattr("avsync.detect.cli.load_module", lambda ckpt, device: detector.module)
    monkeypatch.setattr("avsync.detect.cli.detector_for", lambda module: detector)
    png, out = tmp_path / "line.png", tmp_path / "out.json"
    assert main(["detect", "--ckpt", "oracle", str(step_title), "--timeline", str(png), "--timeline-hop", "1",
                 "--timeline-window", "3", "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    data = record["timeline"], record["timeline_data"]
    assert data[0] == str(png) and png.stat().st_size > 0
    assert data[1]["window_sec"] == 3.0 and data[1]["hop_sec"] == 1.0 and len(data[1]["windows"]) == 8
    with open(data[1]["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and len(rows[0]) == 4 + 31 and float(rows[-1]["offset_sec"]) == pytest.approx(0.2)
    assert [float(r["start_sec"]) for r in rows] == [w["start_sec"] for w in data[1]["windows"]]
    assert main(["detect", "--ckpt", "oracle", str(step_title), "--timeline", str(png), "--timeline-hop", "0"]) == 2
    assert "positive" in capsys.readouterr().err

"""``avsync detect`` with the paper-size SyncNet (e.g. converted official ``syncnet-v2`` weights) gives
syncnet_python's answer: its offset and its confidence (LSE-C), from the whole-clip MFCC and the
zero-padded search of ``evaluate`` (:class:`avsync.detect.detectors.SyncNetClipDetector`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avsync.cli import main
from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict
from avsync.detect.decoding import decode_for_model
from avsync.detect.detectors import SyncNetClipDetector, detector_for
from avsync.media import read_audio, read_frames, write_mp4
from avsync.evaluation.lse import syncnet_lse
from avsync.weights import load_authors_file

GOLDENS = Path(__file__).parents[1] / "goldens" / "syncnet"
CLIP = "lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save(synthetic_state_dict(read_layout(GOLDENS / "syncnet_layout.json")), path)
    return path


def _detect(weights: Path, clip: Path, out: Path) -> dict:
    # the clip is a face crop already and evaluate is compared on it as stored: no face tracking
    assert main(["detect", "--weights", str(weights), str(clip), "--json", str(out), "--faces", "off"]) == 0
    (record,) = json.loads(out.read_text())
    return record


def test_detect_answers_with_evaluates_offset_and_confidence(official, real_fixtures, tmp_path):
    src = real_fixtures / CLIP
    clip = write_mp4(tmp_path / "first_3s.mp4", read_frames(src, 0.0, 3.0, 25.0), 25.0,
                     read_audio(src, 0.0, 3.0, 16000), 16000)
    module = load_authors_file(official)
    detector = detector_for(module)
    assert isinstance(detector, SyncNetClipDetector)
    frames, wav = decode_for_model(clip, detector.spec)
    direct = syncnet_lse(module.net, frames, wav)
    record = _detect(official, clip, tmp_path / "d.json")
    assert record["offset_sec"] == pytest.approx(direct.offset_frames / 25.0)
    assert record["confidence"] == pytest.approx(float(direct.lse_c), abs=1e-6)


@pytest.mark.slow
@pytest.mark.parity
def test_detect_on_the_whole_clip_equals_syncnet_pythons_evaluate(official, real_fixtures, tmp_path):
    golden = json.loads((GOLDENS / "syncnet_lse.json").read_text())["frames_png"]
    record = _detect(official, real_fixtures / CLIP, tmp_path / "d.json")
    assert record["offset_sec"] == pytest.approx(golden["offset_frames"] / 25.0)
    # avsync's AAC decode vs the authors' ffmpeg wav: LSE-C one float32 step apart (tests/integration/test_parity_syncnet.py)
    assert record["confidence"] == pytest.approx(golden["lse_c"], abs=1e-4)

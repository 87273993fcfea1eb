"""``avsync score --metrics lse``: face tracks found in the file, SyncNet's search per track on the
audio of its span, every track listed, ``no_face`` when there is none. The numbers themselves
(LSE-C / LSE-D equal to syncnet_python's ``evaluate``) are checked in ``test_parity_syncnet.py``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from avsync.papers.syncnet import convert as syncnet_converter
from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict
from avsync.faces import TrackParams, default_detector
from avsync.media import read_audio, read_frames, write_mp4
from avsync.evaluation.lse import syncnet_lse
from avsync.score.lse import LSE_FPS, LSEScorer
from avsync.score.metrics import ModelChoice
from avsync.score.runner import run_score

from conftest import REPO_ROOT

LAYOUT = REPO_ROOT / "tests" / "goldens" / "syncnet" / "syncnet_layout.json"
FULL_FRAME = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
SMALL_FACES = TrackParams(min_track=20, min_face_size=20)  # the fixture's faces are 32-66 px


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save(synthetic_state_dict(read_layout(LAYOUT)), path)
    return path


@pytest.fixture(scope="module")
def three_seconds(real_fixtures, tmp_path_factory):
    """The first 3 s of the real full-frame LRS3 clip (one speaker, faces of 32-66 px)."""
    src = real_fixtures / FULL_FRAME
    path = tmp_path_factory.mktemp("lse") / "speaker.mp4"
    write_mp4(path, read_frames(src, 0.0, 3.0, 25.0), 25.0, read_audio(src, 0.0, 3.0, 16000), 16000)
    return path


def test_every_track_is_scored_on_the_audio_of_its_span(three_seconds, official_file):
    net = syncnet_converter.load_official(str(official_file)).eval()
    scorer = LSEScorer(net, default_detector(), params=SMALL_FACES)
    decoded = scorer.decode(str(three_seconds))
    assert len(decoded) == 1
    first, last, crops, span = decoded[0]
    assert (first, last) == (0, 75) and crops.shape == (75, 224, 224, 3) and len(span) == 3 * 16000
    row = scorer.compute(str(three_seconds), decoded)
    direct = syncnet_lse(net, torch.from_numpy(crops), torch.from_numpy(span))
    assert row["lse_c"] == pytest.approx(float(direct.lse_c)) and row["lse_d"] == pytest.approx(float(direct.lse_d))
    (track,) = row["lse_tracks"]
    assert track["start_sec"] == 0.0 and track["end_sec"] == pytest.approx(last / LSE_FPS)
    assert track["offset_frames"] == direct.offset_frames


def test_a_file_without_a_face_gets_its_row_with_no_face(tmp_path, official_file):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (120, 64, 64, 3), dtype=np.uint8)  # moving noise: not still, no face
    noface = write_mp4(tmp_path / "noise.mp4", frames, 25.0, 0.1 * rng.standard_normal(120 * 640), 16000)
    # 60 frames: no face track can be that short (syncnet_python's tracks have more than 100 frames)
    short = write_mp4(tmp_path / "short.mp4", frames[:60], 25.0, 0.1 * rng.standard_normal(60 * 640), 16000)
    rows = run_score([str(noface), str(short), str(tmp_path / "missing.mp4")], "lse", out=tmp_path / "lse.csv",
                     workers=0, choices={"lse": ModelChoice(weights=f"syncnet:{official_file}")}, progress=False,
                     device="cpu")
    assert [r["lse_reason"] or r["reason"] for r in rows] == ["no_face", "too_short", "missing"]
    assert all(r["status"] == "failed" for r in rows)

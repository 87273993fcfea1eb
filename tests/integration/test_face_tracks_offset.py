"""Face-crop models in ``detect`` and ``score --metrics offset``: each face track is a clip of its own.

The video: two copies of the real LRS3 face-crop fixture side by side (448x224), the left one
talking with the audio of the file (its own), the right one the same face 6 s later (other
speech). Two tracks are found, each scored on its own crops; every track gets a row with its span,
offset, confidence and active-speaker score and flag; the file's row holds the track with the
highest score, and ``detect --timeline`` gives a timeline per track with a flag per window.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avsync.cli import main
from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict
from avsync.detect.detectors import detector_for
from avsync.faces.model_input import FaceOptions, decode_face_clips, fit_crops
from avsync.faces.tracks import TrackParams
from avsync.papers.syncnet.module import SyncNetModule
from avsync.media import read_audio, read_frames, write_mp4
from avsync.weights import load_authors_file

from conftest import REPO_ROOT

CLIP = "lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
SECONDS = 2.4  # 60 frames: tracks of more than 40 detections (--min-track 40)
FACES = ["--min-track", "40"]
OPTIONS = FaceOptions(params=TrackParams(min_track=40))


@pytest.fixture(scope="module")
def two_faces(real_fixtures, tmp_path_factory):
    src = real_fixtures / CLIP
    frames = read_frames(src, 0.0, SECONDS, 25.0)
    other = read_frames(src, 6.0, SECONDS, 25.0)
    root = tmp_path_factory.mktemp("two_faces")
    wav = read_audio(src, 0.0, SECONDS, 16000)
    both = write_mp4(root / "two_faces.mp4", np.concatenate([frames, other], axis=2), 25.0, wav, 16000)
    return both, frames


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save(synthetic_state_dict(read_layout(REPO_ROOT / "tests" / "goldens" / "syncnet" / "syncnet_layout.json")),
               path)
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A toy SyncNet checkpoint (face crops, searched by the suite's score search: fast)."""
    torch.manual_seed(0)
    module = SyncNetModule(arch="syncnet_toy", clip_frames=36, eval_contexts=[5])
    ckpt = tmp_path_factory.mktemp("toy") / "toy.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, ckpt)
    return ckpt


def _score(video, ckpt, out, *extra) -> list[dict]:
    main(["score", str(video), "--metrics", "offset", "--ckpt", str(ckpt), "--out", str(out),
          "--json", str(out.with_suffix(".json")), "--workers", "0", "--no-progress", *FACES, *extra])
    return json.loads(out.with_suffix(".json").read_text())


def test_each_face_is_a_track_with_the_models_input(two_faces, official):
    video, frames = two_faces
    detector = detector_for(load_authors_file(official))
    clips = decode_face_clips(video, detector, OPTIONS)
    assert len(clips) == 2
    assert all((c.first_frame, c.end_frame) == (0, len(frames)) for c in clips)
    assert all(c.frames.shape == (len(frames), 224, 224, 3) and len(c.wav) == len(frames) * 640 for c in clips)
    left = min(clips, key=lambda c: c.index)  # tracks start from frame 0's detections, best first
    assert not torch.equal(clips[0].frames, clips[1].frames) and left.wav.abs().sum() > 0


def test_crops_are_resized_to_the_models_input():
    crops = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    mouth = fit_crops(crops, type("Spec", (), {"frame_size": 96, "crop": "mouth"})())
    assert mouth.shape == (3, 48, 96, 3)


def test_score_per_track_rows_and_the_files_active_track(two_faces, toy, tmp_path):
    video, _ = two_faces
    out = tmp_path / "tracks.csv"
    rows = _score(video, toy, out, "--per-track", "--asd-threshold", "0")
    assert len(rows) == 2 and [r["face_track"] for r in rows] == [0, 1]
    assert all(r["status"] == "ok" and (r["track_start_sec"], r["track_end_sec"]) == (0.0, SECONDS) for r in rows)
    assert all(r["speaking_score"] == r["confidence"] and r["speaking"] is (r["confidence"] >= 0.0) for r in rows)
    assert rows[0]["offset_sec"] != rows[1]["offset_sec"] or rows[0]["confidence"] != rows[1]["confidence"]
    row = max(rows, key=lambda r: r["speaking_score"])

    per_file = tmp_path / "file.csv"
    (file_row,) = _score(video, toy, per_file)
    assert file_row["status"] == "ok" and file_row["active_track"] == row["face_track"]
    assert file_row["offset_sec"] == row["offset_sec"] and file_row["confidence"] == row["confidence"]
    assert [t["face_track"] for t in file_row["offset_tracks"]] == [0, 1]


def test_score_without_a_face_keeps_the_row(tmp_path, toy):
    rng = np.random.default_rng(0)
    noise = write_mp4(tmp_path / "noise.mp4", rng.integers(0, 256, (60, 64, 64, 3), dtype=np.uint8), 25.0,
                      0.1 * rng.standard_normal(60 * 640), 16000)
    out = tmp_path / "r.csv"
    (row,) = _score(noise, toy, out)
    assert row["status"] == "failed" and row["reason"] == "no_face"


def test_detect_timeline_per_track_with_active_speaker(two_faces, toy, tmp_path):
    video, _ = two_faces
    ckpt = toy
    out = tmp_path / "d.json"
    status = main(["detect", "--ckpt", str(ckpt), str(video), "--timeline", str(tmp_path / "t.png"),
                   "--timeline-window", "1.6", "--json", str(out), "--asd-threshold", "0.01", *FACES])
    assert status == 0
    (record,) = json.loads(out.read_text())
    tracks = record["tracks"]
    assert [t["track"] for t in tracks] == [0, 1]
    active = max(tracks, key=lambda t: t["speaking_score"])
    assert record["active_track"] == active["track"] and record["offset_sec"] == active["offset_sec"]
    for track in tracks:
        assert track["speaking"] is (track["speaking_score"] >= 0.01)
        windows = track["timeline_data"]["windows"]
        assert windows and all(w["speaking"] == (w["confidence"] >= 0.01) for w in windows)
        assert windows[0]["start_sec"] == pytest.approx(track["start_sec"])
        assert (tmp_path / f"t_face{track['track']}.png").exists() and (tmp_path / f"t_face{track['track']}.csv").exists()


def test_title_report_clips_use_face_tracks(two_faces):
    from avsync.papers.divas.module import DiVASModule
    from avsync.title.report import predict_title_clips

    video, _ = two_faces
    torch.manual_seed(0)
    module = DiVASModule(arch="divas_toy", input_overrides={"crop": "face"}).eval()
    spec = module.input_spec
    with torch.inference_mode():
        fps, _, clips = predict_title_clips(video, module.scorer(25.0, spec.sample_rate), frame_size=spec.frame_size,
                                            clip_sec=SECONDS, hop_sec=SECONDS, max_shift=module.max_shift,
                                            faces=OPTIONS, crop=spec.crop)
    (clip,) = clips
    assert [t["track"] for t in clip.tracks] == [0, 1]
    best = max(clip.tracks, key=lambda t: t["confidence"])
    assert clip.face_track == best["track"] and clip.confidence == best["confidence"]
    assert clip.offset_frames == best["offset_frames"]


def test_python_api_answers_per_face_track(two_faces, toy):
    import avsync
    from avsync.faces.model_input import FaceOptions

    video, _ = two_faces
    result = avsync.load(str(toy), device="cpu", faces=OPTIONS).predict(video)
    assert result.ok and len(result.tracks) == 2
    best = max(result.tracks, key=lambda t: t["speaking_score"])
    assert result.active_track == best["face_track"] and result.offset_sec == best["offset_sec"]
    off = avsync.load(str(toy), device="cpu", faces=FaceOptions(enabled=False)).predict(video)
    assert off.ok and off.tracks == [] and off.active_track is None


def test_a_still_or_silent_file_is_said_so_before_any_face_is_looked_for(tmp_path, toy):
    """Face-crop models read the whole file's reason first: a still picture or silent audio is
    unsynchronisable whatever faces it shows (not "no face", and never an offset)."""
    rng = np.random.default_rng(1)
    picture = rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8).repeat(60, 0)
    still = write_mp4(tmp_path / "still.mp4", picture, 25.0, 0.1 * rng.standard_normal(60 * 640), 16000)
    moving = rng.integers(0, 256, (60, 64, 64, 3), dtype=np.uint8)
    silent = write_mp4(tmp_path / "silent.mp4", moving, 25.0, np.zeros(60 * 640), 16000)
    rows = [_score(video, toy, tmp_path / f"{video.stem}.csv")[0] for video in (still, silent)]
    assert [(r["status"], r["reason"]) for r in rows] == [("failed", "still_video"), ("failed", "silent_audio")]
    assert all(r["offset_sec"] in (None, "") for r in rows)

"""Unsynchronisable input is said so: silent audio, a still picture, too short (avsync.media.checks,
and ``avsync detect`` answering with the reason instead of an offset)."""
import json

import numpy as np
import pytest

from avsync.cli import main
from avsync.papers.sparsesync.module import SparseSyncModule
from avsync.papers.syncnet.module import SyncNetModule
from avsync.media import MediaError, unsynchronisable_reason
from support.media_cases import write_case
from test_detect import MODELS, _write_checkpoint

SR, FPS = 16000, 25.0


def clip(seconds=3.0, still=False, audio="noise"):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (int(seconds * FPS), 16, 16, 3), dtype=np.uint8)
    if still:
        frames[:] = frames[0]
    wave = {"noise": rng.uniform(-0.1, 0.1, int(seconds * SR)), "silent": np.zeros(int(seconds * SR)),
            "constant": np.full(int(seconds * SR), 0.3)}[audio].astype(np.float32)
    return frames, wave


@pytest.mark.parametrize("kwargs, min_seconds, expected", [
    ({}, 2.0, None),
    ({}, 5.0, "too_short"),
    ({"audio": "silent"}, 2.0, "silent_audio"),
    ({"audio": "constant"}, 2.0, "silent_audio"),
    ({"still": True}, 2.0, "still_video"),
    ({"still": True, "audio": "silent"}, 2.0, "silent_audio"),  # the first reason in REASONS
])
def test_reason(kwargs, min_seconds, expected):
    frames, wave = clip(**kwargs)
    assert unsynchronisable_reason(frames, wave, SR, min_seconds, fps=FPS) == expected


def test_frames_count_only_with_fps():
    frames, wave = clip()
    assert unsynchronisable_reason(frames[:10], wave, SR, 2.0, fps=FPS) == "too_short"
    assert unsynchronisable_reason(frames[:10], wave, SR, 2.0) is None


def test_media_error_codes():
    assert MediaError("a.mp4", "silent audio").code == "silent_audio"
    assert MediaError("a.mp4", "too short: need 5 s").code == "too_short"
    assert MediaError("a.mp4", "decoder stalled: no result after 60 s").code == "decoder_stalled"
    assert MediaError("a.mp4", "cannot decode: Invalid data").code == "unreadable"


def test_detect_gives_the_reason_not_an_offset(tmp_path, capsys):
    silent = write_case(tmp_path / "silent.mp4", 3.0, audio="silent")
    still = write_case(tmp_path / "still.mp4", 3.0, still=True)
    good = write_case(tmp_path / "good.mp4", 3.0)
    cls, kwargs = MODELS["syncnet"]
    ckpt = _write_checkpoint(tmp_path / "syncnet.ckpt", cls, kwargs, with_class_path=True)
    out = tmp_path / "out.json"
    assert main(["detect", "--ckpt", str(ckpt), str(silent), str(still), str(good), "--json", str(out)]) == 1
    records = json.loads(out.read_text())
    assert [(r["path"], r["status"], r.get("reason")) for r in records] == [
        (str(silent), "failed", "silent_audio"), (str(still), "failed", "still_video"), (str(good), "ok", None)]
    err = capsys.readouterr().err
    assert "silent audio" in err and "still video" in err

    cls, kwargs = MODELS["sparsesync"]  # 5 s crops: a 3 s file is too short
    assert cls is SparseSyncModule and MODELS["syncnet"][0] is SyncNetModule
    ckpt = _write_checkpoint(tmp_path / "sparsesync.ckpt", cls, kwargs, with_class_path=True)
    assert main(["detect", "--ckpt", str(ckpt), str(good), "--json", str(out)]) == 1
    (record,) = json.loads(out.read_text())
    assert (record["status"], record["reason"]) == ("failed", "too_short")

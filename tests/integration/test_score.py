"""``avsync score`` end to end on real fixture clips plus every kind of hostile file, with a small
random-init model: every input gets a row, the reasons are right, a rerun skips the done rows and a
killed run resumes. Also the decode pool (a crashing / hanging decoder), the scan and the Python API."""
import csv
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import avsync
from avsync.cli import main
from avsync.detect.loading import CheckpointError
from avsync.papers.syncnet.module import SyncNetModule
from avsync.score.decode_pool import decode_ahead
from avsync.score.scan import scan_inputs
from support.media_cases import write_audio_only, write_case

REAL = ("vggsound/h264_video_25fps_256side_16000hz_aac/3qesirWAGt4_20000_30000.mp4",
        "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4")
EXPECTED = {  # file name -> reason code ("" = scored)
    "real0.mp4": "", "real1.mp4": "", "text.mp4": "unreadable", "empty.mp4": "unreadable",
    "audio_only.mp4": "no_video", "video_only.mp4": "no_audio", "silent.mp4": "silent_audio",
    "still.mp4": "still_video", "short.mp4": "too_short", "nothing_here.mp4": "missing"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """An untrained toy SyncNet on 32 px full frames (score search: needs 35 frames = 1.4 s)."""
    torch.manual_seed(0)
    module = SyncNetModule(arch="syncnet_toy", input_overrides={"crop": "full", "frame_size": 32,
                                                                 "resize_short_side": 32},
                           clip_frames=40, eval_contexts=[5])
    path = tmp_path_factory.mktemp("score_model") / "syncnet.ckpt"
    torch.save({"state_dict": module.state_dict(),
                "hyper_parameters": {**module.hparams, "_class_path": "avsync.papers.syncnet.module.SyncNetModule"}}, path)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory, real_fixtures):
    root = tmp_path_factory.mktemp("score_inputs")
    (root / "sub").mkdir()
    for i, rel in enumerate(REAL):  # links, not copies, of the shared fixtures
        (root / f"real{i}.mp4").symlink_to(real_fixtures / rel)
    (root / "sub" / "text.mp4").write_text("this is not a video\n")
    (root / "empty.mp4").write_bytes(b"")
    write_audio_only(root / "sub" / "audio_only.mp4", 2.0)
    write_case(root / "video_only.mp4", 2.0, with_audio=False)
    write_case(root / "silent.mp4", 2.0, audio="silent")
    write_case(root / "still.mp4", 2.0, still=True)
    write_case(root / "short.mp4", 0.6)
    (root / "notes.txt").write_text("not picked up by the folder scan")
    return root


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _check(rows, folder):
    by_name = {os.path.basename(r["path"]): r for r in rows}
    assert sorted(by_name) == sorted(EXPECTED), "every input has exactly one row"
    assert len(rows) == len(EXPECTED)
    for name, reason in EXPECTED.items():
        row = by_name[name]
        assert row["reason"] == reason and row["offset_reason"] == reason, (name, row)
        assert (row["status"] == "ok") == (reason == ""), row
        assert bool(row["error"]) == bool(reason), row
        if not reason:
            offset = float(row["offset_sec"])
            assert int(row["offset_frames"]) == round(offset * 25)
            assert row["verdict"] == ("in sync" if offset == 0 else
                                      f"audio {'leads' if offset > 0 else 'lags'} by {abs(offset):.2f} s")
            assert len(json.loads(row["alternatives"])) == 3


def test_score_folder_every_input_reasons_and_rerun(ckpt, folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    args = ["score", str(folder), str(folder / "nothing_here.mp4"), "--ckpt", str(ckpt), "--out", str(out),
            "--json", str(tmp_path / "rows.json"), "--device", "cpu", "--workers", "2", "--no-progress"]
    assert main(args) == 0
    rows = _rows(out)
    _check(rows, folder)
    assert [os.path.basename(r["path"]) for r in json.loads((tmp_path / "rows.json").read_text())] == \
        [os.path.basename(r["path"]) for r in rows]
    summary = json.loads((tmp_path / "results.summary.json").read_text())["metrics"]["offset"]
    offsets = [float(r["offset_sec"]) for r in rows if r["status"] == "ok"]
    assert summary["scored"] == 2 and summary["failed"] == 8
    assert summary["failures"] == {"unreadable": 2, "no_video": 1, "no_audio": 1, "silent_audio": 1,
                                   "still_video": 1, "too_short": 1, "missing": 1}
    assert summary["offset_sec"]["mean"] == pytest.approx(sum(offsets) / 2)
    printed = capsys.readouterr().out
    assert "offset: 2 scored, 8 failed" in printed and "mean" in printed
    before = out.read_text()
    assert main(args) == 0  # a rerun scores nothing again
    assert out.read_text() == before
    assert "10 of 10 files already" in capsys.readouterr().out


def test_killed_run_resumes(ckpt, folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    argv = ["score", str(folder), str(folder / "nothing_here.mp4"), "--ckpt", str(ckpt), "--out", str(out),
            "--device", "cpu", "--workers", "0", "--no-progress"]
    proc = multiprocessing.get_context("fork").Process(target=main, args=(argv,))  # a run to kill
    proc.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.is_alive():
        if out.exists() and out.read_text().count("\n") >= 3:  # header + 2 rows (empty.mp4, real0.mp4)
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    written = _rows(out)
    assert 2 <= len(written) < len(EXPECTED), "killed midway"
    with open(out, "a") as f:  # as if killed in the middle of writing a row
        f.write(f"{folder}/half,ok,,,offset,0.1")
    assert main(argv) == 0
    rows = _rows(out)
    _check(rows, folder)
    assert rows[: len(written)] == written, "the rows of the killed run are kept, not redone"
    assert f"{len(written)} of 10 files already" in capsys.readouterr().out


def test_other_metrics_in_the_csv_refuse(ckpt, folder, tmp_path, capsys):
    out = tmp_path / "r.csv"
    out.write_text("path,status\n")
    assert main(["score", str(folder / "short.mp4"), "--ckpt", str(ckpt), "--out", str(out), "--device", "cpu"]) == 2
    assert "other --metrics" in capsys.readouterr().err


def test_python_api_predict_and_score(ckpt, folder, tmp_path):
    model = avsync.load(ckpt, device="cpu")
    result = model.predict(folder / "real0.mp4")
    assert result.ok and result.reason is None and result.offset_frames == round(result.offset_sec * 25)
    assert ("leads" in result.verdict) == (result.offset_sec > 0) and len(result.alternatives) == 3
    short = model.predict(folder / "short.mp4")
    assert not short.ok and short.reason == "too_short" and short.offset_sec is None
    rows = avsync.score([folder / "real0.mp4", folder / "silent.mp4"], metrics="offset", ckpt=str(ckpt),
                        device="cpu")
    assert [r["reason"] for r in rows] == [None, "silent_audio"]
    assert rows[0]["offset_sec"] == result.offset_sec
    with pytest.raises(CheckpointError, match="no such file"):
        avsync.load(tmp_path / "nope.ckpt")


def test_import_avsync_is_light():
    code = "import sys, avsync; assert 'torch' not in sys.modules and 'lightning' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def _decode(path):
    if path == "crash":
        os._exit(3)
    if path == "hang":
        time.sleep(60)
    if path == "raise":
        raise ValueError("bad file")
    return path.upper()


def test_decode_pool_survives_crash_and_hang():
    got = dict(decode_ahead(_decode, ["a", "crash", "b", "hang", "raise", "c"], workers=2, timeout_s=2))
    assert got["a"] == ("ok", "A") and got["c"] == ("ok", "C")
    assert got["crash"][:2] == ("failed", "decoder_crashed") and got["hang"][:2] == ("failed", "timeout")
    assert got["raise"][0] == "raised" and str(got["raise"][1]) == "bad file"


def test_scan_folders_lists_and_missing(tmp_path):
    (tmp_path / "a" / ".hidden").mkdir(parents=True)
    for name in ("a/x.MP4", "a/y.m2ts", "a/z.txt", "a/.hidden/h.mp4", "b.mkv"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# clips\nb.mkv\n\na\nmissing.mov\n")
    found = scan_inputs([f"@{listing}", str(tmp_path / "b.mkv")])
    assert [os.path.relpath(p, tmp_path) for p in found] == ["b.mkv", "a/x.MP4", "a/y.m2ts", "missing.mov"]


def test_readme_python_example_runs(ckpt, folder, tmp_path, capsys):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = readme.split("From Python (same runner, same rows):\n\n```python\n", 1)[1].split("```", 1)[0]
    inputs = [str(folder / "short.mp4"), str(folder / "silent.mp4")]
    for placeholder, value in (('"runs/syncnet/last.ckpt"', repr(str(ckpt))),
                               ('"clip.mp4"', repr(str(write_case(tmp_path / "clip.mp4", 2.0)))),
                               ('["videos/", "other.mp4"]', repr(inputs)),
                               ('"results.csv"', repr(str(tmp_path / "results.csv")))):
        assert placeholder in code, placeholder
        code = code.replace(placeholder, value)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert [r["reason"] for r in namespace["rows"]] == ["too_short", "silent_audio"]
    assert namespace["result"].ok and "audio" in capsys.readouterr().out


def test_offset_and_desync_in_one_run_partial_rows(ckpt, folder, tmp_path):
    """Two metrics, each with its own model (a toy Synchformer for DeSync): a 3 s clip has an offset
    but is too short for DeSync's 8 s (status partial, desync_reason too_short)."""
    from avsync.papers.synchformer.stage2 import SynchformerStage2Module

    torch.manual_seed(0)
    synchformer = SynchformerStage2Module(arch="synchformer_toy", input_overrides={"resize_short_side": 32})
    desync_ckpt = tmp_path / "synchformer.ckpt"
    torch.save({"state_dict": synchformer.state_dict(), "hyper_parameters": {
        **synchformer.hparams, "_class_path": "avsync.papers.synchformer.stage2.SynchformerStage2Module"}}, desync_ckpt)
    three, long = write_case(tmp_path / "three.mp4", 3.0), write_case(tmp_path / "long.mp4", 8.2)
    out = tmp_path / "both.csv"
    assert main(["score", str(long), str(three), str(folder / "empty.mp4"), "--metrics",
                 "offset,desync", "--ckpt", f"offset={ckpt}", "--ckpt", f"desync={desync_ckpt}", "--out", str(out),
                 "--device", "cpu", "--workers", "1", "--no-progress"]) == 0
    real, short, empty = _rows(out)
    assert real["status"] == "ok" and 0 <= float(real["desync_sec"]) <= 2.0
    assert float(real["desync_sec"]) == pytest.approx(
        (abs(float(real["desync_first_offset_sec"])) + abs(float(real["desync_last_offset_sec"]))) / 2)
    assert short["status"] == "partial" and short["offset_sec"] and short["desync_reason"] == "too_short"
    assert empty["status"] == "failed" and empty["offset_reason"] == empty["desync_reason"] == "unreadable"
    summary = json.loads((tmp_path / "both.summary.json").read_text())["metrics"]
    assert summary["desync"]["scored"] == 1 and summary["desync"]["failures"] == {"too_short": 1, "unreadable": 1}
    assert summary["desync"]["desync_sec"]["mean"] == pytest.approx(float(real["desync_sec"]))

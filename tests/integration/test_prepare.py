"""``avsync prepare``: the papers' format, alignment kept, resumable, failures reported not fatal."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from avsync.cli import main as cli_main
from avsync.media import probe, read_clip
from avsync.prepare import FAILURES_NAME, PrepareOptions, prepare

from support.media_cases import FLASH_SEC, write_all, write_case

SMALL = PrepareOptions(short_side=32)  # tiny outputs keep the tests fast; the default is 256
BROKEN = {"corrupt", "no_audio", "no_video", "truncated", "zero_length"}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp("raw"), seconds=2.0)


def subset(cases, names, folder: Path) -> Path:
    folder.mkdir()
    for name in names:
        shutil.copyfile(cases[name], folder / f"{name}.mp4")
    return folder


def flash_and_click(path: Path, fps: float = 25.0, rate: int = 16000) -> tuple[float, float]:
    """Times of the white flash and of the click in a converted clip."""
    clip = read_clip(path, 0.0, 0.0, 1.6, fps, rate)
    return int(np.argmax(clip["video"].mean(axis=(1, 2, 3)))) / fps, int(np.argmax(np.abs(clip["audio"]) > 0.5)) / rate


def test_converts_to_the_papers_format_keeps_sync_and_reports_failures(cases, tmp_path):
    src = subset(cases, cases, tmp_path / "raw")
    result = prepare(src, tmp_path / "out", SMALL, workers=2, progress=False)
    assert {Path(f).stem for f, _ in result.failed} == BROKEN
    reasons = dict((Path(f).stem, r) for f, r in result.failed)
    assert reasons["no_audio"] == "no audio stream" and reasons["no_video"] == "no video stream"
    assert reasons["zero_length"] == "empty file"
    lines = (tmp_path / "out" / FAILURES_NAME).read_text().splitlines()
    assert len(lines) == 1 + len(BROKEN) and all("\t" in line for line in lines)
    assert {Path(f).stem for f in result.converted} == set(cases) - BROKEN
    for name in set(cases) - BROKEN:
        info = probe(tmp_path / "out" / f"{name}.mp4")
        assert (info.video_codec, info.audio_codec, info.video_fps) == ("h264", "aac", 25.0), name
        assert (info.audio_sample_rate, info.audio_channels, min(info.width, info.height)) == (16000, 1, 32), name
    for name in ("good", "fps_30", "vfr", "rate_8k", "rate_44k_stereo", "rate_48k_stereo"):
        flash, click = flash_and_click(tmp_path / "out" / f"{name}.mp4")
        assert flash == pytest.approx(FLASH_SEC) and click == pytest.approx(FLASH_SEC, abs=0.001), name


def test_rerun_skips_finished_outputs_and_redoes_partial_ones(cases, tmp_path):
    src = subset(cases, ["good", "fps_30", "rate_8k", "corrupt"], tmp_path / "raw")
    out = tmp_path / "out"
    first = prepare(src, out, SMALL, progress=False)
    assert len(first.converted) == 3 and len(first.failed) == 1
    again = prepare(src, out, SMALL, progress=False)
    assert again.converted == [] and sorted(again.skipped) == sorted(first.converted)
    assert [Path(f).stem for f, _ in again.failed] == ["corrupt"]  # still reported

    (out / "fps_30.mp4").unlink()                                  # never written
    data = (out / "rate_8k.mp4").read_bytes()
    (out / "rate_8k.mp4").write_bytes(data[: len(data) // 3])     # cut (by hand or a full disk)
    (out / ".good.mp4.partial").write_bytes(b"interrupted")       # a temporary file of a killed run
    mtime = (out / "good.mp4").stat().st_mtime_ns
    third = prepare(src, out, SMALL, progress=False)
    assert sorted(third.converted) == ["fps_30.mp4", "rate_8k.mp4"] and third.skipped == ["good.mp4"]
    assert (out / "good.mp4").stat().st_mtime_ns == mtime and not (out / ".good.mp4.partial").exists()
    assert probe(out / "rate_8k.mp4").has_audio


def test_keep_rates_and_never_mpeg4(cases, tmp_path):
    src = subset(cases, ["fps_30", "rate_44k_stereo"], tmp_path / "raw")
    write_case(src / "part2.mp4", 2.0, vcodec="mpeg4")
    assert probe(src / "part2.mp4").video_codec == "mpeg4"
    prepare(src, tmp_path / "kept", PrepareOptions(short_side=32, keep_rates=True), progress=False)
    kept30, kept44 = probe(tmp_path / "kept" / "fps_30.mp4"), probe(tmp_path / "kept" / "rate_44k_stereo.mp4")
    assert kept30.video_fps == 30.0 and kept44.audio_sample_rate == 44100 and kept44.audio_channels == 1
    assert probe(tmp_path / "kept" / "part2.mp4").video_codec == "h264"
    flash, click = flash_and_click(tmp_path / "kept" / "fps_30.mp4", fps=30.0)
    assert flash == pytest.approx(FLASH_SEC) and click == pytest.approx(FLASH_SEC, abs=0.001)


def test_cli_subcommand(cases, tmp_path, capsys):
    src = subset(cases, ["good", "no_audio"], tmp_path / "raw")
    assert cli_main(["prepare", str(src), str(tmp_path / "out"), "--workers", "1", "--short-side", "32",
                     "--no-progress"]) == 1, "a file failed: the exit status says so"
    assert "converted 1, already done 0, failed 1" in capsys.readouterr().out
    assert "no_audio.mp4\tno audio stream" in (tmp_path / "out" / "prepare_failures.tsv").read_text()
    assert probe(tmp_path / "out" / "good.mp4").width == 42  # 64x48 -> short side 32, even sides

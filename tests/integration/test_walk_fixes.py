"""Fixes from a new user's walk through the commands (issue 20, point 6): each one line, not a traceback."""
import sys

import numpy as np
import pytest

from avsync.cli import main
from avsync.toy.title import write_title
from support.media_cases import write_case


def test_title_report_loads_the_checkpoint_avsync_fit_writes(tmp_path, capsys, repo_root_cwd):
    """A real ``avsync fit`` run (one step of the DiVAS toy config on a tiny toy set) writes last.ckpt
    with LightningCLI's ``_class_path`` in its hyper-parameters; title-report reads it."""
    root = tmp_path / "fit"
    assert main(["fit", "--config", "experiments/divas_toy_dense.yaml", "--trainer.max_steps", "1",
                 "--trainer.limit_val_batches", "0", "--trainer.logger", "false",
                 "--trainer.default_root_dir", str(root), "--data.init_args.root", str(tmp_path / "toy"),
                 "--data.init_args.num_train", "4", "--data.init_args.num_valid", "1", "--data.init_args.num_test",
                 "1", "--data.init_args.clip_duration_sec", "2.5", "--data.init_args.batch_size", "2"]) == 0
    (ckpt,) = root.rglob("last.ckpt")
    video = write_title(tmp_path / "title.mp4", 6.0, lambda t: np.zeros_like(t))
    capsys.readouterr()
    assert main(["title-report", str(video), "--ckpt", str(ckpt), "--out", str(tmp_path / "rep"),
                 "--clip-sec", "2.0"]) == 0
    assert "agreement" in capsys.readouterr().out and (tmp_path / "rep" / "title_sync.json").exists()


def test_title_report_refuses_other_models_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    video = write_case(tmp_path / "v.mp4", 1.0)
    assert main(["title-report", str(video), "--ckpt", str(bad)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_help_has_no_lightning_args_warning(monkeypatch, capsys, recwarn):
    monkeypatch.setattr(sys, "argv", ["avsync", "--help"])  # as the console script is called
    with pytest.raises(SystemExit):
        main()
    assert "Other subcommands" in capsys.readouterr().out
    assert not [w for w in recwarn if "args parameter" in str(w.message)]


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_prepare_with_a_file_or_a_missing_folder_is_one_line(kind, tmp_path, capsys):
    source = tmp_path / "clip.mp4"
    if kind == "file":
        source.write_bytes(b"x")
    assert main(["prepare", str(source), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(source) in err[0] and ("is a file" if kind == "file" else "does not exist") in err[0]


def test_probe_artefacts_refuses_mixed_sample_rates_in_one_line(tmp_path, capsys):
    write_case(tmp_path / "a.mp4", 1.0, sample_rate=16000)
    write_case(tmp_path / "b.mp4", 1.0, sample_rate=22050)
    assert main(["probe-artefacts", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "16000 Hz" in err[0] and "22050 Hz" in err[0]


def test_generate_toy_help_names_the_command_and_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["generate-toy", "--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: avsync generate-toy")
    flags = [line.split()[0] for line in text.splitlines() if line.startswith("  --")]
    documented = [line for line in text.replace("\n                        ", " ").splitlines()
                  if line.startswith("  --")]
    assert flags and all(len(line.split()) > 2 for line in documented), documented

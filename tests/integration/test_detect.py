"""``avsync detect`` on toy mp4s with untrained toy checkpoints of every model, plus the corrected-copy
oracle and the one-line error for a file it cannot read."""
import json

import numpy as np
import pytest
import torch

from avsync.cli import cli_main, main
from avsync.detect.cli import write_corrected
from avsync.detect.loading import load_module
from avsync.detect.result import describe_offset
from avsync.papers.avst.module import AVSTModule
from avsync.papers.divas.module import DiVASModule
from avsync.papers.sparsesync.module import SparseSyncModule
from avsync.papers.synchformer.stage2 import SynchformerStage2Module
from avsync.papers.syncnet.module import SyncNetModule
from avsync.papers.vocalist.module import VocaLiSTModule
from avsync.media import probe, read_audio, read_frames
from avsync.evaluation.score_search import predict_offsets, shift_scores
from avsync.toy.oracle import ToyOracleScorer
from avsync.toy.title import write_title

SMALL = {"frame_size": 32, "resize_short_side": 32}
MODELS = {  # untrained toy configurations, as the experiment configs ask for them
    "sparsesync": (SparseSyncModule, dict(arch="sparsesync_toy", input_overrides=SMALL)),
    "vocalist": (VocaLiSTModule, dict(arch="vocalist_toy", input_overrides={"crop": "full", **SMALL},
                                      clip_frames=40, eval_contexts=[5])),
    "syncnet": (SyncNetModule, dict(arch="syncnet_toy", input_overrides={"crop": "full", **SMALL},
                                    clip_frames=40, eval_contexts=[5])),
    "divas": (DiVASModule, dict(arch="divas_toy")),
    "avst": (AVSTModule, dict(arch="avst_enc_mp_toy", batch_windows=10)),
    "synchformer": (SynchformerStage2Module, dict(arch="synchformer_toy", input_overrides={"resize_short_side": 32})),
}
GRID = ("sparsesync", "synchformer")


def _write_checkpoint(path, cls, kwargs, with_class_path: bool):
    """What Lightning writes (state_dict + hyper_parameters); LightningCLI adds ``_class_path``."""
    torch.manual_seed(0)
    module = cls(**kwargs)
    hparams = dict(module.hparams)
    if with_class_path:
        hparams["_class_path"] = f"{cls.__module__}.{cls.__qualname__}"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams}, path)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect_videos")
    # 5.6 s: one crop of the 5 s grid classifier; 2.4 s: 25 windows for the score search (±15 frames)
    long = write_title(root / "clip.mp4", 5.6, lambda t: np.zeros_like(t), seed=1)
    (root / "short").mkdir()
    short = write_title(root / "short" / "clip.mp4", 2.4, lambda t: np.zeros_like(t), seed=1)
    broken = root / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    return long, short, broken


def test_offset_in_words():
    assert describe_offset(0.4) == "audio leads by 0.40 s"
    assert describe_offset(-0.2) == "audio lags by 0.20 s"
    assert describe_offset(0.0) == "in sync"


@pytest.mark.parametrize("name", list(MODELS))
def test_detect_runs_for_every_model(name, videos, tmp_path, capsys):
    cls, kwargs = MODELS[name]
    ckpt = _write_checkpoint(tmp_path / f"{name}.ckpt", cls, kwargs, with_class_path=name not in ("divas", "avst"))
    assert isinstance(load_module(ckpt), cls)
    long, short, broken = videos
    clip = long if name in GRID else short
    out = {k: tmp_path / f"{k}.{ext}" for k, ext in (("plot", "png"), ("timeline", "png"),
                                                     ("corrected", "mp4"), ("json", "json"))}
    status = main(["detect", "--ckpt", str(ckpt), str(broken), str(clip), "--plot", str(out["plot"]),
                   "--timeline", str(out["timeline"]), "--timeline-hop", "0.5", "--write-corrected",
                   str(out["corrected"]), "--json", str(out["json"])])
    captured = capsys.readouterr()
    assert status == 1, "a file that cannot be read makes the exit status non-zero"
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and str(broken) in errors[0] and "cannot decode" in errors[0], captured.err
    # the readable file after the broken one still got its answer and its outputs
    failure, result = json.loads(out["json"].read_text())  # every input, the failed one with its reason
    assert failure == {"path": str(broken), "status": "failed", "reason": "unreadable",
                       "message": errors[0].split(f"{broken}: ", 1)[1]}
    assert result["status"] == "ok"
    assert result["path"] == str(clip) and result["verdict"] in captured.out
    assert len(result["alternatives"]) == 3 and result["offset_sec"] not in [a["offset_sec"] for a in
                                                                            result["alternatives"]]
    assert ("leads by" in result["verdict"]) == (result["offset_sec"] > 0)
    for key in ("plot", "timeline", "corrected"):  # several videos: the stem is added to each name
        assert result[key] == str(out[key].with_name(f"{out[key].stem}_clip{out[key].suffix}")), key
        assert out[key].with_name(f"{out[key].stem}_clip{out[key].suffix}").stat().st_size > 0, key
    assert abs(probe(result["corrected"]).duration_sec - probe(clip).duration_sec) < 0.1
    timeline = result["timeline_data"]  # the moving window of the model's input length, every 0.5 s
    assert timeline["csv"] == str(out["timeline"].with_name("timeline_clip.csv")) and timeline["windows"]
    assert timeline["window_sec"] >= load_module(ckpt).input_spec.duration_sec - 1e-6 or name not in GRID
    assert all(w["end_sec"] <= probe(clip).duration_sec + 1e-3 for w in timeline["windows"])


def test_bad_checkpoint_is_one_line_and_status_2(videos, tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["detect", "--ckpt", str(bad), str(videos[1])]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _oracle_offset_frames(path, fps=25.0, sample_rate=16000) -> int:
    """Clip-level offset (frames, + = audio leads) found by score search with the toy oracle."""
    info = probe(path)
    seconds = int(info.duration_sec * fps) / fps
    frames = torch.from_numpy(read_frames(path, 0.0, seconds, fps))
    wav = torch.from_numpy(read_audio(path, 0.0, seconds, sample_rate))
    scores = shift_scores(ToyOracleScorer(), frames, wav, fps=fps, sample_rate=sample_rate, window_frames=10,
                          max_shift=15, batch_windows=16)
    return int(predict_offsets(scores, context=len(scores))[0][0])


def test_corrected_copy_is_back_in_sync(tmp_path):
    lead = 0.2  # audio leads the picture by 0.2 s = 5 frames
    shifted = write_title(tmp_path / "lead.mp4", 6.0, lambda t: np.full_like(t, 1000 * lead), seed=2)
    assert abs(_oracle_offset_frames(shifted) - 5) <= 1, "the oracle must see the injected offset"
    corrected = write_corrected(shifted, tmp_path / "fixed.mp4", lead)
    assert abs(_oracle_offset_frames(corrected)) <= 1
    wrong_way = write_corrected(shifted, tmp_path / "worse.mp4", -lead)  # the sign matters: 0.4 s lead
    assert abs(_oracle_offset_frames(wrong_way) - 10) <= 1


def test_checkpoint_written_through_lightning_cli(videos, tmp_path, capsys, repo_root_cwd):
    """A real Lightning checkpoint of a CLI-built model (``_class_path``, ``_instantiator``, loop and
    callback states) loads with ``weights_only=True`` and detects."""
    cli = cli_main(["--config", "experiments/divas_toy_dense.yaml", "--trainer.logger", "false"], run=False)
    cli.trainer.strategy.connect(cli.model)
    ckpt = tmp_path / "cli.ckpt"
    cli.trainer.save_checkpoint(ckpt)
    assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["_class_path"] == "avsync.papers.divas.module.DiVASModule"
    assert main(["detect", "--ckpt", str(ckpt), str(videos[1])]) == 0
    assert "confidence" in capsys.readouterr().out


def test_module_without_offsets_is_refused_in_one_line(videos, tmp_path, capsys):
    """Synchformer's stage 1 (segment-level contrastive pre-training) predicts no offset."""
    from avsync.papers.synchformer.stage1 import SynchformerStage1Module

    ckpt = _write_checkpoint(tmp_path / "stage1.ckpt", SynchformerStage1Module, dict(arch="synchformer_toy"), True)
    assert main(["detect", "--ckpt", str(ckpt), str(videos[1])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not predict offsets" in err[0], err

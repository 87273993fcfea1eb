"""DiVAS active speaker evaluation (Table 6, toy): pairs, calibration on valid, F1 on test, a stage run.

The protocol tests use hand-made confidences (or the toy oracle scorer), not a trained model: the
point is the pairing, the calibration on the validation split only, and the torchmetrics counts.
"""
import numpy as np
import pytest
import torch

from avsync.papers.divas.module import DiVASModule
from avsync.papers.divas.asd import ActiveSpeakerEvaluation, speaker_pairs
from avsync.evaluation.active_speaker import asd_f1, crop_confidence
from avsync.reproduce import load_plan, run_stage
from avsync.toy.oracle import ToyOracleScorer
from avsync.toy.title import render_title

SEARCH = dict(fps=25.0, sample_rate=16000, window_frames=10, max_shift=15, batch_windows=200)


def test_speaker_pairs_own_faces_then_the_next_clips_faces_against_the_same_audio():
    video = torch.arange(3, dtype=torch.uint8)[:, None, None, None, None].expand(3, 2, 4, 4, 3)
    audio = torch.arange(3, dtype=torch.float32)[:, None].expand(3, 8)
    faces, wav, speaking = speaker_pairs(video, audio)
    assert faces[:, 0, 0, 0, 0].tolist() == [0, 1, 2, 1, 2, 0]
    assert wav[:, 0].tolist() == [0, 1, 2, 0, 1, 2]
    assert speaking.tolist() == [1, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="at least 2 clips"):
        speaker_pairs(video[:1], audio[:1])


def oracle_batch(seeds):
    """Toy title clips (4 s; at 3 s one of these speakers scores below a non-speaker) with their
    audio: the oracle scores mouth height against loudness."""
    titles = [render_title(4.0, np.zeros_like, seed=s) for s in seeds]
    return {"video": torch.stack([torch.from_numpy(t.frames) for t in titles]),
            "audio": torch.stack([torch.from_numpy(t.audio) for t in titles])}


def oracle_confidences(faces, audio, batch):
    return torch.tensor([crop_confidence(ToyOracleScorer(), f, a, **SEARCH)[1] for f, a in zip(faces, audio)])


def test_oracle_scenes_calibrated_on_valid_score_f1_one_on_test():
    asd = ActiveSpeakerEvaluation()
    threshold, val_f1 = asd.calibrate_on([oracle_batch([0, 1])], oracle_confidences)
    assert val_f1 == pytest.approx(1.0)
    test = oracle_batch([2, 3, 4])
    faces, audio, speaking = speaker_pairs(test["video"], test["audio"])
    confidence = oracle_confidences(faces, audio, test)
    asd.update(confidence, speaking)
    result = asd.compute()
    assert float(result["asd_f1"]) == pytest.approx(1.0)
    assert float(result["asd_f1"]) == pytest.approx(asd_f1(confidence, speaking, threshold))
    assert asd.threshold == threshold


def test_threshold_comes_from_valid_not_test_and_counts_mistakes():
    # valid: speakers at 5, 6, others at 1, 2 -> threshold 3.5. test: speakers 3, 8 / others 1, 4.
    # at 3.5: decisions speaker-F, speaker-T, other-F, other-T -> precision 1/2, recall 1/2, F1 1/2
    # (a threshold calibrated on test itself would reach F1 0.8)
    asd = ActiveSpeakerEvaluation()
    asd.collect(torch.tensor([5.0, 6.0, 1.0, 2.0]), torch.tensor([1, 1, 0, 0]))
    threshold, f1 = asd.calibrate()
    assert threshold == pytest.approx(3.5) and f1 == pytest.approx(1.0)
    asd.update(torch.tensor([3.0, 8.0, 1.0, 4.0]), torch.tensor([1, 1, 0, 0]))
    result = {k: float(v) for k, v in asd.compute().items()}
    assert result == pytest.approx({"asd_f1": 0.5, "asd_precision": 0.5, "asd_recall": 0.5})


def test_a_fixed_threshold_is_kept_and_missing_calibration_is_an_error():
    fixed = ActiveSpeakerEvaluation(threshold=7.0)
    fixed.collect(torch.tensor([5.0, 1.0]), torch.tensor([1, 0]))
    assert fixed.calibrate()[0] == 7.0
    with pytest.raises(RuntimeError, match="calibrate"):
        ActiveSpeakerEvaluation().update(torch.tensor([1.0]), torch.tensor([1]))
    with pytest.raises(RuntimeError, match="validation split is empty"):
        ActiveSpeakerEvaluation().calibrate()


def test_asd_eval_adds_no_weights_so_offset_checkpoints_load_strictly():
    plain, asd = DiVASModule(arch="divas_toy"), DiVASModule(arch="divas_toy", asd_eval=True)
    asd.load_state_dict(plain.state_dict(), strict=True)
    assert plain.asd is None and asd.asd is not None


def test_asd_stage_tests_a_trained_stage_through_the_runner(tmp_path):
    """The plan's lrs2_face (2 steps) then lrs2_face_asd (fit: false) on a few toy clips."""
    stages, _, plan_dir = load_plan("divas", "toy")
    by_name = {s.name: s for s in stages}
    tiny = ["--data.init_args.root", str(tmp_path / "toy"), "--data.init_args.num_train", "2",
            "--data.init_args.num_valid", "2", "--data.init_args.num_test", "3",
            "--data.init_args.batch_size", "3", "--data.init_args.generator_workers", "1",
            "--trainer.max_steps", "2", "--trainer.val_check_interval", "2", "--trainer.log_every_n_steps", "1"]
    face, asd_stage = by_name["lrs2_face"], by_name["lrs2_face_asd"]
    assert not asd_stage.fit and asd_stage.init_from == "lrs2_face"
    face.args, asd_stage.args = tiny, tiny
    ckpts = {"lrs2_face": run_stage(face, plan_dir, tmp_path, {}, None)["checkpoint"]}
    result = run_stage(asd_stage, plan_dir, tmp_path, ckpts, None)["test"]
    for name in ("asd_f1", "asd_precision", "asd_recall"):
        assert 0.0 <= result[f"test/{name}"] <= 1.0
    assert "test/asd_threshold" in result and "test/asd_calibration_f1" in result
    assert not any(k.startswith("test/acc") for k in result)  # the offset accuracies are replaced

"""DiVAS recipe: contrastive pairs and loss, the PairScorer, score-search evaluation, a CLI fit."""
import pytest
import torch

from avsync.cli import main
from avsync.papers.divas.module import DiVASModule, contrastive_loss
from avsync.evaluation.metrics import tolerance_name
from avsync.evaluation.score_search import shift_scores

CONFIG = "experiments/divas_toy_dense.yaml"


def toy_module(**kwargs):
    torch.manual_seed(0)
    return DiVASModule(arch="divas_toy", **kwargs).eval()


def indexed_clip(n_frames=50, fps=25.0, sr=16000, size=32):
    """Frames whose pixels hold their frame index; audio whose samples hold their time in frames."""
    frames = torch.arange(n_frames, dtype=torch.uint8)[:, None, None, None].expand(n_frames, size, size, 3)
    audio = torch.arange(int(n_frames / fps * sr), dtype=torch.float32) * fps / sr
    return frames.clone(), audio


def test_contrastive_loss_is_eq_1():
    d = torch.tensor([3.0, 5.0, 25.0])
    y = torch.tensor([True, False, False])
    expected = 0.5 * (3.0**2 + (20 - 5.0) ** 2 + 0.0) / 3
    assert float(contrastive_loss(d, y, margin=20.0)) == pytest.approx(expected)


def test_training_pairs_positives_synced_negatives_shifted():
    module = toy_module()
    torch.manual_seed(1)
    frames, audio = indexed_clip()
    shifts = torch.tensor([0, 7, -12, 15] * 16)
    # the data module's clip at offset Δ: audio cut Δ frames later in the source than the video
    video = frames[None].expand(len(shifts), -1, -1, -1, -1)
    wav = torch.stack([torch.roll(audio, -int(d) * 640) for d in shifts])  # 640 samples per frame
    pairs_v, pairs_a, in_sync = module.training_pairs({"video": video, "audio": wav, "target": shifts})
    assert pairs_v.shape == (64, 5, 32, 32, 3) and pairs_a.shape == (64, 3200)
    video_time = pairs_v[:, 0, 0, 0, 0].float()
    audio_time = pairs_a[:, 0]  # the audio's source time, in frames
    gap = (audio_time - video_time).round()
    assert torch.all(gap[in_sync] == 0)
    assert torch.all(gap[~in_sync].abs() >= 1)
    assert 0.25 < in_sync.float().mean() < 0.75  # about half are negatives
    assert gap[~in_sync].abs().max() > 5  # shifts reach far beyond one frame


def test_pair_scores_encode_each_window_once():
    module = toy_module()
    frames, _ = indexed_clip(n_frames=40)
    wav = torch.randn(int(40 / 25 * 16000))
    calls = {"video": 0, "audio": 0}
    module.net.video.register_forward_hook(lambda m, i, o: calls.__setitem__("video", calls["video"] + len(o)))
    module.net.audio.register_forward_hook(lambda m, i, o: calls.__setitem__("audio", calls["audio"] + len(o)))
    scores = shift_scores(module, frames, wav, fps=25.0, sample_rate=16000, window_frames=5, max_shift=15,
                          batch_windows=100)
    n_windows = 40 - 5 - 30 + 1
    assert scores.shape == (n_windows, 31)
    assert calls["video"] == n_windows  # W video encodings, not W x 31
    assert calls["audio"] == n_windows + 30  # one per distinct audio window


def test_predict_clip_returns_distance_matrix_argmin_and_confidence():
    module = toy_module()
    frames = torch.randint(0, 255, (50, 32, 32, 3), dtype=torch.uint8)
    out = module.predict_clip(frames, torch.randn(32000))
    dist = out["distances"]
    assert dist.shape == (16, 31)
    mean = dist.mean(0)
    assert out["pred_frames"] == int(mean.argmin()) - 15
    assert out["confidence"] == pytest.approx(float(mean.median() - mean.min()), abs=1e-5)
    # the same clip at 60 fps: 12-frame windows, the model told the rate
    out60 = module.predict_clip(torch.randint(0, 255, (60, 32, 32, 3), dtype=torch.uint8), torch.randn(16000),
                                fps=60.0)
    assert out60["distances"].shape == (60 - 12 - 30 + 1, 31)
    assert out60["pred_sec"] == pytest.approx(out60["pred_frames"] / 60.0)


@pytest.mark.parametrize("fps, error_frames, accepted", [
    (25.0, 1, (True, True, True)),     # residual +40 ms: inside all three windows
    (25.0, 2, (False, False, True)),   # +80 ms: audio still leads by more than 45 ms
    (25.0, -2, (False, True, True)),   # -80 ms: a lag up to 125 ms goes unnoticed
    (50.0, 2, (True, True, True)),     # the same 2 frames at 50 fps are only +40 ms
    (25.0, 3, (False, False, False)),  # +120 ms: beyond +90 ms
    (25.0, -4, (False, False, True)),  # -160 ms: detectable, still acceptable
])
def test_accuracy_windows_in_ms_at_any_frame_rate(monkeypatch, fps, error_frames, accepted):
    """residual = true - predicted offset; windows [-40, 40], [-125, 45], [-185, 90] ms."""
    module = toy_module(input_overrides={"fps": fps})
    true_shift = 3
    monkeypatch.setattr(module, "predict_clip", lambda v, a, fps=fps: {"pred_sec": (true_shift - error_frames) / fps,
                                                             "confidence": 1.0, "distances": torch.zeros(1, 31)})
    monkeypatch.setattr(module, "log", lambda *a, **k: None)
    module._evaluate({"video": torch.zeros(1), "audio": torch.zeros(1), "target": torch.tensor([true_shift])}, "val")
    metrics = module.evaluators["val"].metrics()
    got = tuple(bool(metrics[f"val/{name}"].compute() == 1) for name in ("acc@±40ms", "acc@-125+45ms", "acc@-185+90ms"))
    assert got == accepted


def test_tolerance_names():
    assert tolerance_name((-40, 40)) == "acc@±40ms"
    assert tolerance_name((-125, 45)) == "acc@-125+45ms"


def test_bad_frames_are_rejected():
    module = toy_module()
    with pytest.raises(ValueError, match="uint8"):
        module.embed(torch.zeros(1, 5, 32, 32, 3), torch.zeros(1, 3200), 25.0, 16000)
    with pytest.raises(ValueError, match="one row per video window"):
        module.pair_scores(torch.zeros(2, 5, 32, 32, 3, dtype=torch.uint8), torch.zeros(3, 3200))


def test_two_step_fit_through_cli_then_test(tmp_path, repo_root_cwd):
    run_dir = tmp_path / "run"
    common = ["--config", CONFIG, "--data.init_args.root", str(tmp_path / "toy"),
              "--data.init_args.num_train", "4", "--data.init_args.num_valid", "2",
              "--data.init_args.num_test", "2", "--data.init_args.batch_size", "2",
              "--data.init_args.clip_duration_sec", "4.0",
              "--trainer.default_root_dir", str(run_dir), "--trainer.logger.init_args.save_dir", str(run_dir),
              "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1"]
    main(["fit", *common, "--trainer.max_steps", "2"])
    ckpts = sorted(run_dir.rglob("last.ckpt"))
    assert ckpts, "fit wrote no last.ckpt"
    state = torch.load(ckpts[0], map_location="cpu", weights_only=True)
    assert state["global_step"] == 2
    assert any(k.startswith("net.video.blocks.") for k in state["state_dict"])
    main(["test", *common, "--ckpt_path", str(ckpts[0])])

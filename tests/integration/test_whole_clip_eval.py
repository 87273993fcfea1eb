"""Whole-clip evaluation (AVST §4.2.1 "densely", DiVAS §4.1 all W = L − F + 1 windows): plans that
keep a clip's whole length at any offset in ±15 frames, the dataset and collate on a real clip,
every-window scoring with unscored edges, AVST's dense evaluation and DiVAS's padded distance matrix."""
import pytest
import torch

from avsync.data_modules.base import ClipRecord
from avsync.data_modules.whole_clip import WholeClipDataset, whole_clip_collate, whole_clip_plans
from avsync.inputs import InputSpec
from avsync.papers.avst.module import AVSTModule
from avsync.papers.divas.module import DiVASModule
from avsync.offsets import RandomFrameShiftSampler
from avsync.evaluation.score_search import predict_offsets, shift_scores

CLIP = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"  # 15.72 s


def test_plans_keep_the_whole_clip_and_the_whole_offset_range():
    durations = {f"c{i}": 2.0 + 0.05 * i for i in range(40)}  # 2.0-3.95 s: the old 2 s crop truncated these
    fixed, short = whole_clip_plans(durations, 25.0, 15, "both", seed=3, min_frames=5)
    assert short == []
    shifts = set()
    for key, duration in durations.items():
        in_sync, shifted = fixed.plans_for(key)
        frames = int(duration * 25 + 1e-6)
        assert (in_sync.offset_sec, in_sync.video_start_sec, in_sync.duration_sec) == (0.0, 0.0, frames / 25)
        d = round(shifted.offset_sec * 25)
        shifts.add(d)
        assert shifted.duration_sec == pytest.approx((frames - abs(d)) / 25)
        assert shifted.video_start_sec == pytest.approx(max(0, -d) / 25)
        assert shifted.audio_start_sec == pytest.approx(max(0, d) / 25)  # both inside [0, duration]
        assert fixed.plans_for(key) == whole_clip_plans({key: duration}, 25.0, 15, "both", 3, 5)[0].plans_for(key)
    assert max(shifts) >= 12 and min(shifts) <= -12  # the short clips get the far offsets too
    _, short = whole_clip_plans({"tiny": 0.7, "ok": 0.8}, 25.0, 15, "random", seed=0, min_frames=5)
    assert short == ["tiny"]  # 17 frames cannot hold a window and a 15-frame offset; it is left out, not narrowed
    assert whole_clip_plans({"tiny": 0.7}, 25.0, 15, "in_sync", seed=0, min_frames=5)[1] == []


def test_dataset_delivers_whole_clips_of_the_real_file(real_fixtures):
    spec = InputSpec(fps=25.0, duration_sec=0.2, frame_size=32, resize_short_side=None, offset_classes=None,
                     max_frame_shift=15)
    sampler = RandomFrameShiftSampler(max_shift=15, fps=25.0, window_frames=5)
    record = ClipRecord(key="pretrain/C8zY0oAdQrs/00018", path=real_fixtures / CLIP, duration_sec=15.72, split="test")
    fixed, _ = whole_clip_plans({record.key: 15.72}, 25.0, 15, "both", seed=1, min_frames=5)
    data = WholeClipDataset([record], spec, False, sampler, fixed, plans_per_clip=2)
    in_sync, shifted = data[0], data[1]
    assert in_sync["video"].shape == (393, 32, 32, 3) and in_sync["audio"].shape == (393 * 640,)
    d = int(shifted["target"])
    assert shifted["video"].shape[0] == 393 - abs(d) and shifted["audio"].shape == ((393 - abs(d)) * 640,)
    batch = whole_clip_collate([in_sync, shifted])
    assert isinstance(batch["video"], list) and [len(v) for v in batch["video"]] == [393, 393 - abs(d)]
    assert batch["target"].tolist() == [0, d]


def test_every_window_is_scored_and_out_of_clip_audio_is_not():
    calls = []

    def scorer(frames, wav):  # score = −|frame index of the video window − frame of its audio|
        calls.append(len(frames))
        return -(frames[:, 0, 0, 0, 0].float() - wav[:, 0]).abs()

    n = 24
    frames = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 2, 2, 3).clone()
    wav = torch.arange(n * 640, dtype=torch.float32) / 640
    scores = shift_scores(type("S", (), {"pair_scores": staticmethod(scorer)}), frames, wav, fps=25, sample_rate=16000,
                          window_frames=5, max_shift=15, batch_windows=4, edges="clip")
    assert scores.shape == (n - 4, 31)  # every window of the clip, none dropped
    for t in range(n - 4):
        for j in range(31):
            a = t - (j - 15)  # candidate d cuts the audio at frame t − d
            if 0 <= a <= n - 5:
                assert scores[t, j] == -abs(t - a)
            else:
                assert scores[t, j] == float("-inf")
    pred, _ = predict_offsets(scores, context=1)
    assert (pred == 0).all()
    assert sum(calls) == int(torch.isfinite(scores).sum())  # unscored candidates cost nothing
    with pytest.raises(ValueError, match="edges"):
        shift_scores(None, frames, wav, fps=25, sample_rate=16000, window_frames=5, edges="pad")


def test_avst_dense_evaluation_scores_every_window_of_whole_clips():
    module = AVSTModule(arch="avst_enc_mp_toy", eval_windows=None, tolerance_frames=1)
    truth = {}

    def oracle(frames, wav):  # best where the audio frame matches the video frame shifted by the truth
        return -(frames[:, 0, 0, 0, 0].float() - wav[:, 0] - truth["d"]).abs()

    module.pair_scores = oracle
    logged = {}
    module.log = lambda name, value, **k: logged.__setitem__(name, value)
    windows = 0
    for d, n in ((0, 30), (6, 40), (-9, 61)):
        truth["d"] = d
        frames = (torch.arange(n, dtype=torch.uint8) % 250)[:, None, None, None].expand(n, 64, 64, 3).clone()
        wav = (torch.arange(n * 640, dtype=torch.float32) / 640).floor()
        batch = {"video": [frames], "audio": [wav], "target": torch.tensor([d])}
        module._eval_step(batch, "test", 0)
        windows += n - 4
    metric = module.evaluators["test"].tolerant()
    assert int(metric.count.sum()) == windows  # one prediction per window of each whole clip
    module._epoch_end("test")
    assert float(logged["test/acc_tol_in_sync"].compute()) == 1.0  # a 30-frame clip (< 5 + 30 + 9) is scored, not dropped


def test_divas_padded_distance_matrix_is_syncnets():
    torch.manual_seed(0)
    module = DiVASModule(arch="divas_toy", eval_edges="pad", eval_batch_windows=7).eval()
    n, fps, sr = 27, 25.0, 16000
    frames = torch.randint(0, 255, (n, 32, 32, 3), dtype=torch.uint8)
    wav = torch.randn(n * 640)
    with torch.no_grad():
        dist = module.padded_distances(frames, wav, fps, sr)
        assert dist.shape == (n - 4, 31)  # W = L − F + 1 windows
        z_v = module.net.encode_video(module.frames(torch.stack([frames[t:t + 5] for t in range(n - 4)])), fps)
        z_a = module.net.encode_audio(torch.stack([wav[k * 640:k * 640 + 3200] for k in range(n - 4)]), sr)
        for t in (0, 3, 11, n - 5):
            for d in (-15, -4, 0, 2, 15):
                a = t - d
                expected = (z_v[t] - z_a[a]).norm() if 0 <= a < n - 4 else z_v[t].norm()  # zero feature outside
                torch.testing.assert_close(dist[t, d + 15], expected, rtol=1e-4, atol=1e-5)
        result = module.predict_clip(frames, wav, fps=fps)
    mean = dist.mean(0)  # §4.1: averaged over all windows, argmin
    assert result["pred_frames"] == int(mean.argmin()) - 15
    assert result["confidence"] == pytest.approx(float(mean.median() - mean.min()), rel=1e-5)


def test_data_module_tests_on_whole_clips_of_the_real_lrs3_clip(real_fixtures, tmp_path):
    from avsync.data_modules.sync_curriculum import LRS3SyncCurriculumDataModule

    split = tmp_path / "test.txt"
    split.write_text("pretrain/C8zY0oAdQrs/00018\n")
    spec = InputSpec(fps=25.0, duration_sec=1.8, frame_size=32, resize_short_side=None, offset_classes=None,
                     max_frame_shift=15, keep_aspect=False)
    data = LRS3SyncCurriculumDataModule(root=str(real_fixtures / "lrs3"), variant="full_frame", input_spec=spec,
                                        split_files={"test": str(split)}, eval_offsets="both", eval_whole_clips=True,
                                        num_workers=0, batch_size=2, probe_cache_dir=str(tmp_path / "probe"))
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    d = int(batch["target"][1])
    assert batch["target"][0] == 0 and [v.shape[:3] for v in batch["video"]] == [(393, 32, 32), (393 - abs(d), 32, 32)]

"""AVST's training recipe and evaluation: InfoNCE, masking, pair_scores for the score search, metrics."""
import pytest
import torch

from avsync.papers.avst.attention_plots import attention_figure
from avsync.papers.avst.module import AVSTModule, info_nce, same_window_mask
from avsync.evaluation.score_search import shift_scores


def test_info_nce_matches_the_formula_and_masks_duplicate_windows():
    scores = torch.tensor([[2.0, 0.5, 1.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0]])
    expected = -torch.stack([scores[i].log_softmax(0)[i] for i in range(3)]).mean()
    torch.testing.assert_close(info_nce(scores), expected)
    same = same_window_mask(["a", "a", "b"], torch.tensor([1.0, 1.0, 1.0]))  # items 0 and 1: one window
    assert same.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    masked = info_nce(scores, same)
    row0 = -(scores[0, 0] - torch.logsumexp(scores[0, [0, 2]], 0))
    row1 = -(scores[1, 1] - torch.logsumexp(scores[1, [1, 2]], 0))
    row2 = -scores[2].log_softmax(0)[2]
    torch.testing.assert_close(masked, (row0 + row1 + row2) / 3)


def test_training_steps_lower_the_info_nce_loss_on_one_batch():
    torch.manual_seed(0)
    module = AVSTModule(arch="avst_enc_mp_toy", lr=1e-3, train_frames=(5,))
    batch = {"video": torch.randint(0, 255, (4, 5, 64, 64, 3), dtype=torch.uint8),
             "audio": torch.randn(4, 3200), "target": torch.zeros(4, dtype=torch.long),
             "key": ["a", "b", "c", "d"], "video_start_sec": torch.zeros(4, dtype=torch.float64)}
    module.log = lambda *a, **k: None
    opt = module.configure_optimizers()
    losses = []
    for _ in range(8):
        loss = module.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3, losses


def test_training_refuses_offset_pairs():
    module = AVSTModule(arch="avst_enc_mp_toy", train_frames=(5,))
    batch = {"video": torch.zeros(2, 5, 64, 64, 3, dtype=torch.uint8), "audio": torch.zeros(2, 3200),
             "target": torch.tensor([0, 3]), "key": ["a", "b"], "video_start_sec": torch.zeros(2)}
    with pytest.raises(ValueError, match="in-sync pairs"):
        module.training_step(batch, 0)


def test_pair_scores_equal_the_forward_pass_and_the_shift_convention():
    torch.manual_seed(0)
    module = AVSTModule(arch="avst_dec_toy", eval_windows=3).eval()
    spec = module.input_spec
    frames = torch.randint(0, 255, (spec.num_frames, 64, 64, 3), dtype=torch.uint8)
    wav = torch.randn(spec.num_samples)
    scores = shift_scores(module, frames, wav, fps=25, sample_rate=16000, window_frames=5, batch_windows=3)
    assert scores.shape == (3, 31)
    with torch.no_grad():
        for t, d in ((15, 0), (16, -7), (17, 15)):   # candidate d cuts the audio at frame t - d
            a0 = (t - d) * 640
            direct = module(frames[None, t:t + 5], wav[None, a0:a0 + 3200])
            torch.testing.assert_close(scores[t - 15, d + 15], direct[0], rtol=1e-4, atol=1e-5)


def test_masking_zeroes_n_frames_of_the_chosen_modality():
    module = AVSTModule(arch="avst_enc_mp_toy", mask_frames=2, mask_modality="audio", train_frames=(5,))
    wav = torch.ones(3, 3200)
    masked = module._mask(wav, 640)
    zero_frames = (masked.view(3, 5, 640) == 0).all(-1).sum(1)
    assert zero_frames.tolist() == [2, 2, 2]
    video = module.video_inputs(torch.full((3, 5, 64, 64, 3), 200, dtype=torch.uint8))
    assert (video != 0).all()  # audio-only masking leaves the frames alone
    with pytest.raises(ValueError, match="mask_modality"):
        AVSTModule(arch="avst_enc_mp_toy", mask_modality="sound")
    with pytest.raises(ValueError, match="unmasked"):
        AVSTModule(arch="avst_enc_mp_toy", mask_frames=5)

def test_audio_mask_zeroes_spectrogram_columns_not_the_waveform():
    """AVST's masked audio segment is zeros in the network's input: the standardised
    log-spectrogram columns of the masked frame are 0 and the other columns are the unmasked
    spectrogram's (zeroing the waveform would make those columns log(eps) outliers instead)."""
    torch.manual_seed(0)
    module = AVSTModule(arch="avst_enc_mp_toy", mask_frames=1, mask_modality="audio", train_frames=(5,))
    wav = torch.randn(4, 3200)
    plain = module.spectrogram(wav)
    masked = module.audio_inputs(wav, 5)
    assert masked.shape == plain.shape == (4, 1, 161, 80)
    per_frame = masked.view(4, 161, 5, 16)
    zero = (per_frame == 0).all(-1).all(1)                # (4, 5): frames whose 16 columns are all zero
    assert zero.sum(1).tolist() == [1, 1, 1, 1]
    keep = ~zero[:, None, :, None].expand_as(per_frame)
    torch.testing.assert_close(per_frame[keep], plain.view(4, 161, 5, 16)[keep])
    assert masked.abs().max() < 20  # no log(eps) outlier columns


def test_eval_step_reports_in_sync_and_random_offset_accuracy():
    """A scorer that knows the truth scores 100 %; the in-sync / shifted split follows the targets."""
    module = AVSTModule(arch="avst_enc_mp_toy", eval_windows=2, tolerance_frames=1)
    spec = module.input_spec
    truth = {}

    def oracle(frames, wav):  # higher for the candidate whose audio start matches the true offset
        n = frames.shape[0]
        return -(torch.arange(n) % 31 - 15 - truth["d"]).abs().float()

    module.pair_scores = oracle
    logged = {}
    module.log = lambda name, value, **k: logged.__setitem__(name, value)  # metric objects, as Lightning gets them
    for d in (0, 4, -9):
        truth["d"] = d
        batch = {"video": torch.zeros(1, spec.num_frames, 64, 64, 3, dtype=torch.uint8),
                 "audio": torch.zeros(1, spec.num_samples), "target": torch.tensor([d])}
        module._eval_step(batch, "test", 1)
    module._epoch_end("test")  # the in-sync / random-offset split is logged once per epoch
    values = {k: float(m.compute()) for k, m in logged.items()}
    assert values["test/acc@1"] == 1.0 and values["test/acc_tol_in_sync"] == 1.0
    assert values["test/acc_tol_random_offset"] == 1.0
    for metric in logged.values():  # what Lightning does at the end of the epoch
        metric.reset()

    truth["d"] = 3  # the scorer now prefers +3 while the clips are in sync: wrong beyond ±1 frame
    batch = {"video": torch.zeros(2, spec.num_frames, 64, 64, 3, dtype=torch.uint8),
             "audio": torch.zeros(2, spec.num_samples), "target": torch.tensor([0, 2])}
    module._eval_step(batch, "test", 1)
    module._epoch_end("test")
    values = {k: float(m.compute()) for k, m in logged.items()}
    assert values["test/acc_tol_in_sync"] == 0.0 and values["test/acc_tol_random_offset"] == 1.0


def test_attention_maps_of_the_dec_variant_and_their_figure():
    module = AVSTModule(arch="avst_dec_toy").eval()
    frames = torch.randint(0, 255, (5, 64, 64, 3), dtype=torch.uint8)
    heat = module.attention_maps(frames, torch.randn(3200))
    assert heat.shape == (5, 4, 4) and float(heat.min()) == 0.0 and float(heat.max()) == 1.0
    fig = attention_figure(frames, heat, "test")
    assert len(fig.axes) == 6  # 5 frames + colour bar
    with pytest.raises(ValueError, match="dec variant"):
        AVSTModule(arch="avst_enc_mp_toy").attention_maps(frames, torch.randn(3200))


def test_frame_step_feeds_every_fifth_frame():
    module = AVSTModule(arch="avst_dec_toy", frame_step=5, train_frames=(50,), eval_window_frames=50,
                        tolerance_frames=5, eval_windows=1).eval()
    assert module.input_spec.num_frames == 50 + 30
    frames = torch.randint(0, 255, (2, 50, 64, 64, 3), dtype=torch.uint8)
    assert module.video_inputs(frames).shape[1] == 10
    with torch.no_grad():
        assert module.pair_scores(frames, torch.randn(2, 32000)).shape == (2,)
    with pytest.raises(ValueError, match="multiples of frame_step"):
        AVSTModule(arch="avst_dec_toy", frame_step=5, train_frames=(7,))


def test_predict_step_gives_one_clip_level_offset_with_confidence():
    module = AVSTModule(arch="avst_enc_mp_toy", eval_windows=3)
    spec = module.input_spec
    module.pair_scores = lambda frames, wav: -(torch.arange(frames.shape[0]) % 31 - 15 - 6).abs().float()
    batch = {"video": torch.zeros(2, spec.num_frames, 64, 64, 3, dtype=torch.uint8),
             "audio": torch.zeros(2, spec.num_samples), "target": torch.tensor([6, 0]), "key": ["a", "b"]}
    out = module.predict_step(batch, 0)
    assert out["pred_offset_frames"].tolist() == [6, 6]
    assert (out["confidence"] > 0).all() and out["true_offset_frames"].tolist() == [6, 0]


def _random_clips(spec, offsets, seed: int) -> list[dict]:
    """Random 64 px clips of the spec's length at the given true offsets (frames)."""
    g = torch.Generator().manual_seed(seed)
    return [{"video": torch.randint(0, 256, (spec.num_frames, 64, 64, 3), generator=g, dtype=torch.uint8),
             "audio": torch.randn(spec.num_samples, generator=g) * 0.1, "target": torch.tensor(d)} for d in offsets]


def _avst_test_metrics(module: AVSTModule, clips: list[dict]) -> dict[str, float]:
    """``trainer.test`` over ``clips`` (batches of 2); the logged test metrics."""
    import lightning as L
    from torch.utils.data import DataLoader

    def collate(items):
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}

    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.test(module, dataloaders=DataLoader(clips, batch_size=2, collate_fn=collate), verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_one_pass_over_eval_lengths_gives_the_metrics_of_one_run_per_length():
    """eval_lengths [5, 7]: one test pass logs for each length exactly what a separate run with
    eval_window_frames at that length logs (same weights, same clips), plus the headline names."""
    torch.manual_seed(0)
    kwargs = dict(arch="avst_enc_mp_toy", train_frames=(5,), eval_windows=2, eval_context=1, batch_windows=2)
    both = AVSTModule(eval_window_frames=5, eval_lengths=[5, 7], **kwargs).eval()
    clips = _random_clips(both.input_spec, (0, 3, -6, 0, 1), seed=1)
    got = _avst_test_metrics(both, clips)
    names = ("acc@1", "acc_tol", "acc_tol_in_sync", "acc_tol_random_offset")
    for length in (5, 7):
        single = AVSTModule(eval_window_frames=length, **kwargs).eval()
        single.load_state_dict(both.state_dict())
        alone = _avst_test_metrics(single, clips)
        assert {f"test/{n}_len{length}": got[f"test/{n}_len{length}"] for n in names} == \
            {f"test/{n}_len{length}": alone[f"test/{n}"] for n in names}
        if length == 5:  # the headline (eval_window_frames) keeps today's names
            assert {f"test/{n}": got[f"test/{n}"] for n in names} == {f"test/{n}": alone[f"test/{n}"] for n in names}
    assert got["test/acc_tol_len5"] != got["test/acc_tol_len7"] or got["test/acc@1_len5"] != got["test/acc@1_len7"]
    with pytest.raises(ValueError, match="repeat"):
        AVSTModule(eval_lengths=[5, 5], **kwargs)


def test_one_pass_over_context_windows_gives_the_metrics_of_one_fixed_length_run_per_column():
    """A fixed 5-frame model's N-frame column (N windows, the N-4 covering N frames averaged) for
    N in [7, 9] in one pass equals a run with eval_windows N, eval_context N-4 (same weights, clips)."""
    torch.manual_seed(0)
    kwargs = dict(arch="avst_enc_toy", train_frames=(5,), eval_window_frames=5, batch_windows=2)
    both = AVSTModule(eval_windows=2, eval_context=1, eval_context_windows=[7, 9], **kwargs).eval()
    clips = _random_clips(both.input_spec, (0, 2, -7, 0, 11), seed=2)
    got = _avst_test_metrics(both, clips)
    names = ("acc@1", "acc_tol", "acc_tol_in_sync", "acc_tol_random_offset")
    for n in (7, 9):
        single = AVSTModule(eval_windows=n, eval_context=n - 4, **kwargs).eval()
        single.load_state_dict(both.state_dict())
        alone = _avst_test_metrics(single, clips)
        assert {k: got[f"test/{k}_len{n}"] for k in names} == {k: alone[f"test/{k}"] for k in names}, n
    single = AVSTModule(eval_windows=2, eval_context=1, **kwargs).eval()
    single.load_state_dict(both.state_dict())
    alone = _avst_test_metrics(single, clips)
    assert {k: got[f"test/{k}"] for k in names} == {k: alone[f"test/{k}"] for k in names}
    with pytest.raises(ValueError, match="repeat"):
        AVSTModule(eval_lengths=[7], eval_context_windows=[7], **kwargs)

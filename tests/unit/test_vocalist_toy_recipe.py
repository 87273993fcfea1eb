"""VocaLiST's toy-scale recipe options: encoder alignment (contrastive warm start) and lr warm-up."""
import pytest
import torch

from avsync.papers.vocalist.encoder_alignment import encoder_alignment_loss, pooled_token_distance
from avsync.papers.vocalist.module import VocaLiSTModule


def toy_module(**kwargs) -> VocaLiSTModule:
    return VocaLiSTModule(arch="vocalist_toy", input_overrides={"crop": "full", "frame_size": 32},
                          clip_frames=40, eval_contexts=[5], log_figures=False, **kwargs)


def pairs(n: int = 4):
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (n, 5, 32, 32, 3), dtype=torch.uint8, generator=g)
    return frames, torch.randn(n, 3200, generator=g) * 0.1, torch.tensor([1.0, 0.0] * (n // 2))


def test_pooled_distance_compares_the_streams_frame_by_frame():
    torch.manual_seed(0)
    vis = torch.rand(3, 5, 8)
    aud = vis.repeat_interleave(3, dim=1)[:, :15]   # 15 audio tokens, 3 per visual frame
    aud = torch.cat([aud, aud[:, -1:]], dim=1)      # 16 = 3.2 x 5, as VocaLiST's mel tokens
    aligned = pooled_token_distance(vis, aud)
    shuffled = pooled_token_distance(vis.flip(1), aud)  # the same tokens in another order
    assert aligned.max() < 0.2 and (shuffled > aligned + 0.2).all()  # pooling mixes neighbours a little
    with pytest.raises(ValueError, match="at least as many"):
        pooled_token_distance(vis, aud[:, :3])
    with pytest.raises(ValueError, match="need tokens"):
        pooled_token_distance(vis, aud[..., :4])


def test_alignment_loss_is_low_for_in_sync_close_pairs_and_for_far_shifted_ones():
    vis = torch.rand(2, 5, 8)
    aud = vis.repeat_interleave(4, dim=1)
    aud[1] = aud[1].flip(0)                          # pair 1: the audio in another order
    right, score = encoder_alignment_loss(vis, aud, torch.tensor([1.0, 0.0]), margin=1.0)
    wrong, _ = encoder_alignment_loss(vis, aud, torch.tensor([0.0, 1.0]), margin=1.0)
    assert right < wrong and score[0] > score[1]


def test_alignment_steps_train_only_the_encoders_then_bce_trains_everything():
    torch.manual_seed(0)
    module = toy_module(align_steps=10, align_weight=0.5)
    module.train()
    frames, wav, y = pairs()
    loss, scores = module.pair_loss(frames, wav, y)   # global_step 0 < 10: alignment stage
    loss.backward()
    assert module.net.vid_prenet[0].conv_block[0].weight.grad.abs().sum() > 0
    assert module.net.aud_prenet[0].conv_block[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in module.net.av_transformer.parameters())
    assert module.net.classifier.weight.grad is None
    assert module.decision_threshold(scores) == scores.median()
    module.align_steps = 0                               # BCE stage (+ 0.5 x alignment)
    module.zero_grad()
    loss, _ = module.pair_loss(frames, wav, y)
    loss.backward()
    assert module.net.classifier.weight.grad.abs().sum() > 0
    assert module.net.av_transformer.layers[0].fc1.weight.grad.abs().sum() > 0
    assert module.decision_threshold(scores) == 0.0


def test_warmup_rises_from_a_hundredth_and_bad_options_raise():
    module = toy_module(lr=1e-3, warmup_steps=10)
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert isinstance(toy_module().configure_optimizers(), torch.optim.Adam)
    with pytest.raises(ValueError, match="align_margin"):
        toy_module(align_margin=0.0)


def test_candidates_hold_the_true_shift_first_and_distinct_far_negatives():
    from avsync.modules.candidate_pairs import draw_candidates
    from avsync.modules.pair_scoring import cut_pairs
    from avsync.offsets import FrameShifts

    g = torch.Generator().manual_seed(1)
    video = torch.randint(0, 256, (3, 40, 8, 8, 3), dtype=torch.uint8, generator=g)
    audio = torch.randn(3, 40 * 640, generator=g)
    delta = torch.tensor([0, 4, -15])
    frames, wav, chosen = draw_candidates(video, audio, delta, shifts=FrameShifts(15), negatives=6, window_frames=5,
                                          fps=25.0, sample_rate=16000, min_gap=5, generator=g)
    assert frames.shape == (3, 5, 8, 8, 3) and wav.shape == (3, 7, 3200) and chosen.shape == (3, 7)
    assert torch.equal(chosen[:, 0], delta)
    assert ((chosen[:, 1:] - delta[:, None]).abs() >= 5).all() and (chosen.abs() <= 15).all()
    assert all(len(set(row.tolist())) == 7 for row in chosen)
    starts = torch.stack([torch.nonzero((video[b].flatten(1) == frames[b, 0].flatten())
                                        .all(1))[0, 0] for b in range(3)])
    for k in range(7):  # every audio column is the score search's cut of its candidate
        assert torch.equal(wav[:, k], cut_pairs(video, audio, starts, chosen[:, k], fps=25.0, sample_rate=16000,
                                                window_frames=5)[1])
    with pytest.raises(ValueError, match="fewer than 30"):
        draw_candidates(video, audio, delta, shifts=FrameShifts(15), negatives=30, window_frames=5, fps=25.0,
                        sample_rate=16000, min_gap=2)


def test_candidate_bce_is_balanced_and_alignment_trains_only_the_encoders():
    torch.manual_seed(0)
    module = toy_module(negatives_per_window=3, align_steps=5)
    module.train()
    frames, wav, _ = pairs(2)
    wav = torch.randn(2, 4, 3200) * 0.1
    loss, scores = module.candidate_loss(frames, wav)               # alignment stage: InfoNCE over 4
    loss.backward()
    assert scores.shape == (2, 4) and (scores <= 0).all()
    assert module.net.vid_prenet[0].conv_block[0].weight.grad.abs().sum() > 0
    assert module.net.classifier.weight.grad is None
    module.align_steps = 0
    torch.nn.init.zeros_(module.net.classifier.weight)
    torch.nn.init.zeros_(module.net.classifier.bias)                # logits 0: balanced BCE is ln 2
    loss, scores = module.candidate_loss(frames, wav)
    assert loss.item() == pytest.approx(0.693147, abs=1e-5) and torch.equal(scores, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="negatives_per_window"):
        toy_module(negatives_per_window=-1)

"""Score search (SyncNet / AVST / VocaLiST / DiVAS protocol) on clips whose offset is known.

The scorer is an oracle: each video frame's brightness and each audio "frame" carry the same
random source signal, so the best candidate is exactly where the two agree. A clip whose audio
leads by d frames (docs/conventions.md) is built the way the samplers build one: the audio heard at frame τ
is the source at τ + d.
"""
import pytest
import torch

from avsync.evaluation.metrics import OffsetAccuracy
from avsync.offsets import FrameShifts
from avsync.evaluation.score_search import ClipTooShortForSearch, predict_offsets, shift_scores

FPS, SR = 25.0, 100  # 4 audio samples per frame keeps the oracle exact and the test fast


class OracleScorer:
    """−|brightness − audio level| per frame: 0 when the windows belong together."""

    def __init__(self):
        self.calls = []

    def pair_scores(self, frames, wav):
        self.calls.append(frames.shape[0])
        level = frames.float().mean((2, 3, 4)) / 255.0  # (N, wf)
        audio = wav.reshape(wav.shape[0], frames.shape[1], -1).mean(-1)  # (N, wf)
        return -(level - audio).abs().mean(-1)


def clip_with_offset(d: int, n_frames: int = 60, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    source = torch.randint(0, 256, (n_frames + 40,), generator=g).float() / 255.0  # frames −20 .. n+20
    frames = (source[20:20 + n_frames] * 255).round().to(torch.uint8)
    frames = frames.view(-1, 1, 1, 1).expand(n_frames, 4, 4, 3).contiguous()
    audio = source[20 + d:20 + d + n_frames]  # audio heard at frame τ = source at τ + d
    return frames, audio.repeat_interleave(SR // int(FPS))


@pytest.mark.parametrize("d", [-15, -7, 0, 1, 5, 15])
def test_every_window_finds_the_true_offset(d):
    frames, wav = clip_with_offset(d)
    scores = shift_scores(OracleScorer(), frames, wav, fps=FPS, sample_rate=SR, window_frames=5)
    assert scores.shape == (60 - 5 - 2 * 15 + 1, 31)
    pred, conf = predict_offsets(scores)
    assert (pred == d).all()
    assert (conf > 0).all()


def test_all_candidates_of_a_window_go_in_one_call():
    scorer = OracleScorer()
    frames, wav = clip_with_offset(3)
    shift_scores(scorer, frames, wav, fps=FPS, sample_rate=SR, window_frames=5, batch_windows=4)
    assert scorer.calls[0] == 4 * 31 and sum(scorer.calls) == 26 * 31


def test_context_averaging_outvotes_a_corrupted_window():
    frames, wav = clip_with_offset(4)
    scores = shift_scores(OracleScorer(), frames, wav, fps=FPS, sample_rate=SR, window_frames=5)
    scores[3] = 0.0
    scores[3, 0] = 1.0  # one window votes for −15
    assert predict_offsets(scores, context=1)[0][3] == -15
    clip_pred, _ = predict_offsets(scores, context=len(scores))
    assert clip_pred.tolist() == [4]


def test_predictions_score_with_the_frame_tolerance_metric():
    """Clip-level predictions in seconds; a truth one frame away is tolerated (±1) but not exact."""
    metric = OffsetAccuracy(FrameShifts(15).offsets_sec(FPS), frames=(1, FPS))
    for d in (-6, 2):
        frames, wav = clip_with_offset(d, seed=d + 10)
        scores = shift_scores(OracleScorer(), frames, wav, fps=FPS, sample_rate=SR, window_frames=5)
        pred, _ = predict_offsets(scores, context=len(scores))
        metric.update_seconds(pred.double() / FPS, torch.tensor([d + 1.0]) / FPS)
    result = metric.compute()
    assert result["acc@1"] == 0.0 and result["acc_tol"] == 1.0


def test_too_short_clip_names_what_it_needs():
    frames, wav = clip_with_offset(0, n_frames=30)
    with pytest.raises(ClipTooShortForSearch, match="35 frames"):
        shift_scores(OracleScorer(), frames, wav, fps=FPS, sample_rate=SR, window_frames=5)

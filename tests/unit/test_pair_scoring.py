"""Pair-scoring training and evaluation: balanced pairs cut like the score search, context accuracy."""
import pytest
import torch

from torchmetrics import Metric

from avsync.modules.pair_scoring import PairScoringModule, cut_pairs, runs_of_equal_rows
from avsync.evaluation.score_search import shift_scores

FPS, SR = 25.0, 16000
SPF = int(SR / FPS)  # 640 samples per frame


def labelled_clip(n_frames: int, delta: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Video frame t shows the value t; the audio is at offset delta (audio leads by delta frames), so
    its samples at clip frame p carry the source frame p + delta."""
    video = torch.arange(n_frames, dtype=torch.uint8).view(-1, 1, 1, 1).expand(n_frames, 2, 2, 3).contiguous()
    audio = (torch.arange(n_frames * SPF) // SPF + delta).float()
    return video, audio


class FrameMatchScorer(PairScoringModule):
    """Scores a pair by how well the source frames of its audio and its picture agree."""

    def __init__(self, **kwargs):
        super().__init__(**{"window_frames": 5, "clip_frames": 40, "max_shift": 15, "tolerance_frames": 1,
                            "eval_contexts": (5, 7), "artificial_offsets": True, "train_window_frames": None,
                            "lr": 1e-3, **kwargs})

    def pair_scores(self, frames, wav):
        picture = frames[:, 0, 0, 0, 0].float()
        sound = wav[:, 0]
        return -(picture - sound).abs()


def capture_logs(module) -> dict:
    """What the module logs, as Lightning would compute it at the end of the epoch (metric objects computed)."""
    logged = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, value)
    return logged


def computed(logged: dict) -> dict[str, float]:
    return {k: float(v.compute() if isinstance(v, Metric) else v) for k, v in logged.items()}


@pytest.mark.parametrize("delta", [0, 7, -15])
def test_draw_pairs_is_balanced_and_in_sync_pairs_match(delta):
    torch.manual_seed(0)
    module = FrameMatchScorer()
    video, audio = labelled_clip(40, delta)
    batch = {"video": video.expand(400, *video.shape), "audio": audio.expand(400, -1),
             "target": torch.full((400,), delta)}
    frames, wav, in_sync = module.draw_pairs(batch, 5)
    assert frames.shape == (400, 5, 2, 2, 3) and wav.shape == (400, 3200)
    assert 0.4 < in_sync.mean() < 0.6
    match = frames[:, 0, 0, 0, 0].float() == wav[:, 0]
    assert torch.equal(match, in_sync.bool())        # in-sync pairs line up, shifted ones never do


def test_cut_pairs_cuts_what_the_score_search_scores():
    torch.manual_seed(1)
    video = torch.randint(0, 256, (40, 2, 2, 3), dtype=torch.uint8)
    audio = torch.randn(40 * SPF)

    class Recorder:
        def pair_scores(self, frames, wav):
            return frames.float().mean((1, 2, 3, 4)) * 1000 + wav.sum(1)

    scores = shift_scores(Recorder(), video, audio, fps=FPS, sample_rate=SR, window_frames=5, max_shift=15)
    starts = torch.tensor([15, 16, 20]), torch.tensor([-15, 3, 15])
    frames, wav = cut_pairs(video[None].expand(3, -1, -1, -1, -1), audio[None].expand(3, -1), *starts,
                            fps=FPS, sample_rate=SR, window_frames=5)
    expected = scores[starts[0] - 15, starts[1] + 15]
    assert torch.allclose(Recorder().pair_scores(frames, wav), expected)
    with pytest.raises(ValueError, match="outside"):
        cut_pairs(video[None], audio[None], torch.tensor([2]), torch.tensor([5]), fps=FPS, sample_rate=SR,
                  window_frames=5)


@pytest.mark.parametrize("delta", [0, 4, -9])
def test_evaluation_finds_the_offset_and_counts_it_per_context(delta):
    module = FrameMatchScorer()
    video, audio = labelled_clip(40, delta)
    module._eval_step({"video": video[None], "audio": audio[None], "target": torch.tensor([delta])}, "val")
    for c, windows in ((5, 6), (7, 4)):
        result = module.evaluators["val"].tolerant(f"{c}f").results()
        assert result["acc@1"] == 1.0
        assert result["confusion"].sum() == windows  # one prediction per run of c - 4 windows


def test_a_wrong_scorer_is_counted_wrong_with_the_tolerance():
    class OffByTwo(FrameMatchScorer):
        def pair_scores(self, frames, wav):
            return -(frames[:, 0, 0, 0, 0].float() + 2 - wav[:, 0]).abs()

    for tol, expected in ((1, 0.0), (2, 1.0)):
        module = OffByTwo(tolerance_frames=tol)
        video, audio = labelled_clip(40, 0)
        module._eval_step({"video": video[None], "audio": audio[None], "target": torch.tensor([0])}, "test")
        result = module.evaluators["test"].tolerant("5f").results()
        assert result["acc@1"] == 0.0 and result["acc_tol"] == expected


def test_protocol_arguments_are_checked():
    with pytest.raises(ValueError, match="cannot hold"):
        FrameMatchScorer(clip_frames=30)
    with pytest.raises(ValueError, match="eval_contexts"):
        FrameMatchScorer(eval_contexts=(15,))
    spec = FrameMatchScorer(artificial_offsets=False).base_spec()
    assert spec.offset_classes is None and spec.max_frame_shift == 0 and spec.num_frames == 40


def test_runs_of_equal_rows():
    x = torch.tensor([[1, 2], [1, 2], [3, 4], [3, 4], [1, 2]])
    first, group = runs_of_equal_rows(x)
    assert first.tolist() == [True, False, True, False, True] and group.tolist() == [0, 0, 1, 1, 2]


def test_predict_step_gives_one_clip_level_offset_with_confidence():
    module = FrameMatchScorer()
    clips = [labelled_clip(40, d) for d in (3, -2)]
    batch = {"video": torch.stack([v for v, _ in clips]), "audio": torch.stack([a for _, a in clips]),
             "target": torch.tensor([3, -2]), "key": ["a", "b"]}
    out = module.predict_step(batch, 0)
    assert out["pred_offset_frames"].tolist() == [3, -2]
    assert (out["confidence"] > 0).all()  # the best candidate stands out from the median


DIVAS_WINDOWS = [[-40, 40], [-125, 45], [-185, 90]]


def _divas_protocol_accuracies(scorer_cls, delta: int) -> dict[str, float]:
    """Test one clip at offset ``delta`` under DiVAS's protocol (the whole clip averaged, ms windows)
    and return the logged metrics."""
    # DiVAS's toy test: 2 s clips at 25 fps, 5-frame windows, ±15 frames: 16 windows = 20 frames averaged
    module = scorer_cls(clip_frames=50, eval_contexts=(20,), eval_windows_ms=DIVAS_WINDOWS, log_figures=False)
    logged = capture_logs(module)
    video, audio = labelled_clip(50, delta)
    module._eval_step({"video": video[None], "audio": audio[None], "target": torch.tensor([delta])}, "test")
    module.on_test_epoch_end()
    return computed(logged)


@pytest.mark.parametrize("delta", [0, 6, -11])
def test_divas_protocol_a_perfect_scorer_is_right_in_every_window(delta):
    logged = _divas_protocol_accuracies(FrameMatchScorer, delta)
    for name in ("test/acc@±40ms", "test/acc@-125+45ms", "test/acc@-185+90ms"):
        assert logged[name] == 1.0 and logged[f"{name}_20f"] == 1.0
    assert logged["test/acc_tol_20f"] == 1.0  # the frame-tolerance metrics are still there


@pytest.mark.parametrize("frames_off, expected", [
    # predicted one frame (40 ms) too large: residual true − predicted = −40 ms, inside all three
    (1, (1.0, 1.0, 1.0)),
    # one frame too small: residual +40 ms, inside all three (45 and 90 ms upper bounds)
    (-1, (1.0, 1.0, 1.0)),
    # two frames too large: residual −80 ms: outside ±40, inside [−125, 45] and [−185, 90]
    (2, (0.0, 1.0, 1.0)),
    # two frames too small: residual +80 ms (audio still leads): outside ±40 and [−125, 45], inside [−185, 90]
    (-2, (0.0, 0.0, 1.0)),
    # three frames too small: +120 ms, outside all three
    (-3, (0.0, 0.0, 0.0)),
])
def test_divas_protocol_windows_are_asymmetric_in_the_residual(frames_off, expected):
    class Off(FrameMatchScorer):
        """Scores highest the candidate ``frames_off`` frames above the true offset."""

        def pair_scores(self, frames, wav):
            return -(frames[:, 0, 0, 0, 0].float() - frames_off - wav[:, 0]).abs()

    logged = _divas_protocol_accuracies(Off, 3)
    got = tuple(logged[n] for n in ("test/acc@±40ms", "test/acc@-125+45ms", "test/acc@-185+90ms"))
    assert got == expected


def test_divas_protocol_windows_are_checked():
    with pytest.raises(ValueError, match="eval_windows_ms"):
        FrameMatchScorer(eval_windows_ms=[[40, -40]])
    with pytest.raises(ValueError, match="eval_windows_ms"):
        FrameMatchScorer(eval_windows_ms=[[-40, 0, 40]])


def test_whole_clip_evaluation_scores_every_window_of_each_whole_clip():
    """DiVAS's protocol for its SyncNet / VocaLiST baselines (DiVAS §4.1; ``eval_whole_clip`` with a
    data module's ``eval_whole_clips``): each test clip comes whole (clips of different lengths, as
    lists), every visual window t = 0 … L − F is scored (W = L − F + 1, none dropped, even in a clip
    shorter than a window + 2 x 15 frames) against the candidates whose audio lies in the clip, each
    candidate's score is averaged over the windows that scored it, and the argmax is the clip's one answer."""
    module = FrameMatchScorer(eval_contexts=(), eval_whole_clip=True, eval_windows_ms=[[-40, 40]], log_figures=False)
    calls = []
    score = module.pair_scores
    module.pair_scores = lambda frames, wav: (calls.append(len(frames)), score(frames, wav))[1]
    cases = ((21, 15), (33, -9), (58, 0))
    clips = [labelled_clip(n, d) for n, d in cases]
    for (n, _), (video, audio) in zip(cases, clips):
        scores = module.whole_clip_scores(video, audio)
        assert scores.shape == (n - 4, 31) and int(torch.isfinite(scores).sum()) == sum(calls)
        calls.clear()
    batch = {"video": [v for v, _ in clips], "audio": [a for _, a in clips],
             "target": torch.tensor([d for _, d in cases])}
    logged = capture_logs(module)
    module._eval_step(batch, "test")
    assert int(module.evaluators["test"].tolerant("clip").count.sum()) == len(cases)  # one answer per whole clip
    module.on_test_epoch_end()
    logged = computed(logged)
    assert logged["test/acc@1_clip"] == logged["test/acc@±40ms"] == 1.0


def test_whole_clip_offset_averages_each_candidate_over_the_windows_that_scored_it():
    from avsync.modules.pair_scoring import whole_clip_offset

    inf = float("inf")
    scores = torch.tensor([[0.0, -inf, 1.0],
                           [0.0, 5.0, -inf],
                           [0.0, 0.0, 1.0]])  # candidates d = -1, 0, 1
    # means over the windows that scored each: 0, 2.5, 1 -> d = 0 (a plain mean over all windows would
    # leave only d = -1 finite)
    assert whole_clip_offset(scores).tolist() == [0]
    # a candidate no window scored never wins, however the others score
    assert whole_clip_offset(torch.tensor([[-inf, -1.0, -2.0], [-inf, -3.0, 0.0]])).tolist() == [1]
    with pytest.raises(ValueError, match="eval_contexts"):
        FrameMatchScorer(eval_whole_clip=True)

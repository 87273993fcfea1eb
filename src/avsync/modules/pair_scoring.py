"""Thin LightningModule base for pair-scoring models trained on balanced in-sync / shifted pairs
(VocaLiST, SyncNet) and evaluated by score search.

Training. The data module delivers clips of ``clip_frames`` frames whose audio sits at a known
frame offset Δ (``target``; 0 for in-sync clips). From each clip one pair is cut: a visual window
of ``window_frames`` frames at a start ``t`` drawn uniformly from the search rows, and the audio
of candidate ``d`` — cut exactly as the score search cuts it (:func:`cut_pairs`). Half of the
pairs take ``d = Δ`` (in sync), half a ``d`` drawn uniformly from the other candidates of
:class:`~avsync.offsets.FrameShifts` (VocaLiST §3.2: "positive and negative examples are sampled
equally"). The subclass turns (frames, audio, in-sync) into its loss.

Evaluation (val/test). :func:`~avsync.evaluation.score_search.shift_scores` scores every visual
window (stride 1) against all 2·max_shift+1 candidates; for each context length L in
``eval_contexts`` the per-offset scores of the L − window + 1 windows of a context are averaged
before the argmax (VocaLiST §4.1), and :class:`~avsync.evaluation.metrics.OffsetAccuracy` counts a
prediction within ±``tolerance_frames`` of Δ as correct (1 on LRS2, 5 on Acappella); every context
is counted in the same pass by a :class:`~avsync.evaluation.score_search_evaluator.ScoreSearchEvaluator`.
The clips are in sync (Δ = 0, the papers' protocol) or at random artificial offsets
(``artificial_offsets=True``: Δ uniform in ±max_shift, fixed per clip by the data module).

DiVAS's protocol (DiVAS Table 1 scores SyncNet and VocaLiST this way): ``eval_windows_ms`` adds,
for every context, the accuracy within each ITU-style millisecond window of the residual
``true − predicted`` (:class:`~avsync.evaluation.metrics.OffsetAccuracy` ``window_ms``), logged under DiVAS's
own names (``test/acc@±40ms``, ``test/acc@-125+45ms``, ...; the shortest context's) and per
context (``test/acc@±40ms_20f``). A context spanning every search row (``clip_frames − 2·max_shift``
frames) is DiVAS's clip-level answer. The frame-tolerance metrics are logged as before.

Whole clips (``eval_whole_clip=True``, with a data module's ``eval_whole_clips``: val/test batches
hold each test clip entire, at a seeded offset in ±max_shift, video and audio as lists): every
visual window of the clip is scored, t = 0 … L − F (all W = L − F + 1 windows, DiVAS §4.1 and
SyncNet's protocol), and the clip's answer is the argmax of each candidate's score averaged over
the windows (:func:`whole_clip_offset`). At the edges a candidate whose audio would lie outside
the clip is not scored and is averaged over the windows that scored it: DiVAS and SyncNet put a
zero audio *feature* there, which a pair classifier such as VocaLiST does not have
(:class:`~avsync.papers.syncnet.module.SyncNetModule` overrides :meth:`whole_clip_scores` to do exactly that). ``eval_contexts``
are not used then; the metrics are logged with the suffix ``clip`` (``test/acc_tol_clip``) and under
DiVAS's names.
"""
from __future__ import annotations

from typing import Sequence

import lightning as L
import torch
from torch import Tensor, nn

from avsync.inputs import InputSpec
from avsync.evaluation.figures import log_figures
from avsync.evaluation.metrics import tolerance_name
from avsync.evaluation.score_search import (clip_answers, frame_start_sample, predict_offsets, shift_scores,
                                            window_samples)
from avsync.evaluation.evaluator import StageEvaluators
from avsync.evaluation.score_search_evaluator import ScoreSearchEvaluator
from avsync.offsets import FrameShifts
from avsync.training.epoch_means import log_epoch_mean

EVAL_STAGES = ("val", "test")


def cut_pairs(video: Tensor, audio: Tensor, starts: Tensor, shifts: Tensor, *, fps: float, sample_rate: int,
              window_frames: int) -> tuple[Tensor, Tensor]:
    """Visual windows ``video[b, t_b : t_b + window]`` and the audio of candidate ``shifts[b]`` for
    each, cut at frame ``t_b − d_b`` with the score search's own rounding (docs/conventions.md sign).

    video (B, T, H, W, 3), audio (B, S) -> frames (B, window, H, W, 3), wav (B, window_samples).
    """
    win_s = window_samples(window_frames, fps, sample_rate)
    a0 = frame_start_sample(starts - shifts, fps, sample_rate)
    if (starts < 0).any() or (starts + window_frames > video.shape[1]).any() or (a0 < 0).any() \
            or (a0 + win_s > audio.shape[1]).any():
        raise ValueError("a pair window falls outside its clip; draw starts from the search rows")
    frame_idx = starts[:, None] + torch.arange(window_frames, device=video.device)
    frames = video[torch.arange(len(video), device=video.device)[:, None], frame_idx]
    wav = audio.gather(1, a0[:, None] + torch.arange(win_s, device=audio.device))
    return frames, wav


class PairScoringModule(L.LightningModule):
    """Subclasses set ``self.net`` and implement :meth:`pair_scores` and :meth:`pair_loss`."""

    net: nn.Module
    input_spec: InputSpec

    def __init__(self, window_frames: int, clip_frames: int, max_shift: int, tolerance_frames: int,
                 eval_contexts: Sequence[int], artificial_offsets: bool, train_window_frames: Sequence[int] | None,
                 lr: float, fps: float = 25.0, sample_rate: int = 16000, eval_batch_windows: int = 4,
                 log_figures: bool = True, eval_windows_ms: Sequence[Sequence[float]] | None = None,
                 eval_whole_clip: bool = False):
        super().__init__()
        if eval_whole_clip and eval_contexts:
            raise ValueError(f"eval_whole_clip averages every window of a whole clip; eval_contexts "
                             f"{list(eval_contexts)} would not be used: leave them empty")
        longest = max([window_frames, *(train_window_frames or [])])
        if clip_frames < longest + 2 * max_shift:
            raise ValueError(f"clip_frames={clip_frames} cannot hold a {longest}-frame window and ±{max_shift} "
                             f"frame shifts (needs {longest + 2 * max_shift})")
        rows = clip_frames - window_frames - 2 * max_shift + 1  # visual windows of one clip in the search
        bad = [c for c in eval_contexts if not window_frames <= c <= window_frames + rows - 1]
        if bad:
            raise ValueError(f"eval_contexts {bad} do not fit: with {window_frames}-frame windows and "
                             f"clip_frames={clip_frames} contexts must lie in [{window_frames}, "
                             f"{window_frames + rows - 1}]")
        self.window_frames, self.clip_frames, self.max_shift = window_frames, clip_frames, max_shift
        self.train_window_frames = tuple(train_window_frames or ())
        self.tolerance_frames, self.eval_contexts = tolerance_frames, tuple(eval_contexts)
        self.eval_whole_clip = bool(eval_whole_clip)
        # metric suffix per evaluated context: "20f" (a run of 20 frames) or "clip" (whole clips)
        self.context_labels = ("clip",) if self.eval_whole_clip else tuple(f"{c}f" for c in self.eval_contexts)
        self.artificial_offsets, self.lr = artificial_offsets, lr
        self.fps, self.sample_rate = float(fps), int(sample_rate)
        self.eval_batch_windows, self.log_figures = eval_batch_windows, log_figures
        self.shifts = FrameShifts(max_shift)
        self.eval_windows_ms = parse_windows_ms(eval_windows_ms)
        self.evaluators = StageEvaluators({stage: self.build_evaluator(stage) for stage in EVAL_STAGES})

    def build_evaluator(self, stage: str) -> ScoreSearchEvaluator:
        """Per context: acc@1, tolerant accuracy and each ms window; the shortest context's tolerant
        and window accuracies under the unsuffixed names too (the headline)."""
        return ScoreSearchEvaluator(stage, self.shifts.offsets_sec(self.fps), frames=(self.tolerance_frames, self.fps),
                                    contexts=self.context_labels, windows_ms=self.eval_windows_ms,
                                    aliases=("acc_tol", *(tolerance_name(w) for w in self.eval_windows_ms)))

    def base_spec(self) -> InputSpec:
        """Clip length, rates and offsets of the protocol; the subclass adds frame size and crop."""
        return InputSpec(fps=self.fps, duration_sec=self.clip_frames / self.fps, sample_rate=self.sample_rate,
                         offset_classes=None, max_frame_shift=self.max_shift if self.artificial_offsets else 0,
                         hflip=False)

    # -- what a subclass provides ------------------------------------------------------------------
    def pair_scores(self, frames: Tensor, wav: Tensor) -> Tensor:
        """uint8 frames (N, window, H, W, 3), audio (N, samples) -> (N,), higher = more in sync."""
        raise NotImplementedError

    def pair_loss(self, frames: Tensor, wav: Tensor, in_sync: Tensor) -> tuple[Tensor, Tensor]:
        """(loss, scores) of a batch of pairs; ``in_sync`` is 1 for in-sync pairs, 0 for shifted ones."""
        raise NotImplementedError

    # -- training -------------------------------------------------------------------------------------
    def draw_pairs(self, batch: dict, window_frames: int) -> tuple[Tensor, Tensor, Tensor]:
        """One balanced pair per clip: (frames, wav, in_sync)."""
        video, audio, delta = batch["video"], batch["audio"], batch["target"].to(torch.long)
        n, device = len(video), video.device
        last = video.shape[1] - window_frames - self.max_shift  # the search rows of this clip length
        starts = torch.randint(self.max_shift, last + 1, (n,), device=device)
        in_sync = torch.rand(n, device=device) < 0.5
        # another candidate, uniform over the 2·max_shift shifts that are not Δ
        other = torch.randint(0, len(self.shifts) - 1, (n,), device=device) - self.max_shift
        other = other + (other >= delta).long()
        shifts = torch.where(in_sync, delta, other)
        frames, wav = cut_pairs(video, audio, starts, shifts, fps=self.fps, sample_rate=self.sample_rate,
                                window_frames=window_frames)
        return frames, wav, in_sync.float()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        window = self.window_frames
        if self.train_window_frames:  # variable-length training: one window length per batch
            window = self.train_window_frames[int(torch.randint(len(self.train_window_frames), ()))]
        frames, wav, in_sync = self.draw_pairs(batch, window)
        loss, scores = self.pair_loss(frames, wav, in_sync)
        n = len(in_sync)
        log_epoch_mean(self, "train/loss", loss, on_step=True, prog_bar=True, batch_size=n)
        pair_acc = ((scores > self.decision_threshold(scores)).float() == in_sync).float().mean()
        log_epoch_mean(self, "train/pair_acc", pair_acc, on_step=False, batch_size=n)
        return loss

    def decision_threshold(self, scores: Tensor) -> Tensor | float:
        """Score above which a single pair is called in sync (0 for logits; the median otherwise)."""
        return scores.median()

    # -- evaluation -----------------------------------------------------------------------------------
    def search(self, frames: Tensor, wav: Tensor) -> Tensor:
        """Score matrix (W, 2·max_shift+1) of one clip (``shift_scores`` with this model)."""
        return shift_scores(self, frames, wav, fps=self.fps, sample_rate=self.sample_rate,
                            window_frames=self.window_frames, max_shift=self.max_shift, stride=1,
                            batch_windows=self.eval_batch_windows)

    def whole_clip_scores(self, frames: Tensor, wav: Tensor) -> Tensor:
        """Scores (L − F + 1, 2·max_shift+1) of every visual window of a whole clip; −inf where the
        candidate's audio lies outside the clip (``shift_scores(edges="clip")``)."""
        return shift_scores(self, frames, wav, fps=self.fps, sample_rate=self.sample_rate,
                            window_frames=self.window_frames, max_shift=self.max_shift, stride=1,
                            batch_windows=self.eval_batch_windows, edges="clip")

    def _eval_step(self, batch: dict, stage: str) -> None:
        evaluator = self.evaluators[stage]
        target_idx = batch["target"].to(torch.long) + self.max_shift
        for b in range(len(target_idx)):
            if self.eval_whole_clip:
                answers = [("clip", whole_clip_offset(self.whole_clip_scores(batch["video"][b], batch["audio"][b])))]
            else:
                scores = self.search(batch["video"][b], batch["audio"][b])
                answers = [(f"{c}f", predict_offsets(scores, context=c - self.window_frames + 1)[0])
                           for c in self.eval_contexts]
            for c, pred in answers:
                pred_idx, true_idx = pred + self.max_shift, target_idx[b].expand_as(pred)
                evaluator.log(self, evaluator.update(c, pred_idx, true_idx))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Clip-level answers (SyncNet/DiVAS style: scores averaged over every window of the clip):
        offset in frames, confidence (median − min of the distances), and the true offset."""
        return clip_answers(self.search, batch)

    def _log_epoch_figures(self, stage: str) -> None:
        result = self.evaluators[stage].results()  # every rank: the states are synchronised
        if self.log_figures and result is not None:  # the shortest context's accuracy per true offset
            log_figures(self, self.evaluators[stage].offset_figures(result))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_figures("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_figures("test")

    def configure_optimizers(self):
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.lr)


def whole_clip_offset(scores: Tensor) -> Tensor:
    """The offset (1,) of a whole clip from its scores (W, O): each candidate's mean over the windows
    that scored it (finite entries), argmax; a candidate no window scored cannot win."""
    scored = torch.isfinite(scores)
    counts = scored.sum(0)
    mean = torch.where(scored, scores, torch.zeros_like(scores)).sum(0) / counts.clamp(min=1)
    mean = mean.masked_fill(counts == 0, float("-inf"))
    return (mean.argmax() - (scores.shape[1] - 1) // 2).reshape(1)


def parse_windows_ms(windows: Sequence[Sequence[float]] | None) -> tuple[tuple[float, float], ...]:
    """``[[lo, hi], ...]`` in ms -> tuple of float pairs; a clear error for anything else."""
    parsed = []
    for w in windows or ():
        if len(w) != 2 or float(w[0]) > float(w[1]):
            raise ValueError(f"eval_windows_ms takes [lo, hi] pairs with lo <= hi (ms), got {list(w)}")
        parsed.append((float(w[0]), float(w[1])))
    return tuple(parsed)


def runs_of_equal_rows(x: Tensor) -> tuple[Tensor, Tensor]:
    """(first, group): a mask of the rows that differ from their predecessor, and for every row the
    index of its run. The score search repeats each visual window for all its candidates, so in
    evaluation a model can encode each window once (``encode(x[first])[group]``)."""
    same = (x[1:] == x[:-1]).flatten(1).all(1)
    first = torch.cat([torch.ones(1, dtype=torch.bool, device=x.device), ~same])
    return first, first.cumsum(0) - 1

"""AVST as a LightningModule: InfoNCE training over k x k pair scores, score-search evaluation.

Training (AVST §3.2, §4.3): a batch holds k in-sync pairs (v_i, a_i); the network scores all k²
combinations and InfoNCE pushes s_ii above every s_ij. Whether the negatives come from other
videos (stage 1) or from the same video at other times (stage 2) is the data module's choice
(``avsync.data_modules.sync_curriculum``). Adam, lr 1e-4. Variable length: each training batch
is cut to one of ``train_frames`` (5-15 frames at 25 fps in the paper). Optional masking
(Tables 4/6): ``mask_frames`` consecutive frames of the audio, the video or both zeroed in the
network's input (normalised frames, standardised spectrogram columns), in training and evaluation alike.

Evaluation (AVST §4.2): every clip is searched with the shared score-search protocol
(:mod:`avsync.evaluation.score_search`): each ``eval_window_frames`` visual window against the
audio at every shift in ±max_shift frames; the prediction is the best shift (per window, or
averaged over ``eval_context`` windows); correct within ±``tolerance_frames``. Accuracies are
reported for all clips, for the in-sync ones (true offset 0, as the paper evaluates) and for the
artificially shifted ones (DiVAS' protocol). ``eval_lengths`` evaluates several visual window
lengths in the same test pass (Tables 2-5 columns: one trained model, every length), each logged
with the suffix ``_len{L}`` (``test/acc_tol_len7``) besides the ``eval_window_frames`` headline
under the plain names (:class:`~avsync.evaluation.score_search_evaluator.ScoreSearchEvaluator`).

General sounds (VGG-Sound Sync): the paper decodes at 25 fps, feeds every 5th frame and counts
±5 frames at 25 fps as correct: ``frame_step=5``, ``tolerance_frames=5`` and windows of 50-150
frames (10-30 at 5 fps).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from avsync.inputs import FrameNormalize, InputSpec
from avsync.papers.avst.attention_plots import attention_figure
from avsync.evaluation.class_breakdown import ClassBreakdown
from avsync.evaluation.evaluator import StageEvaluators
from avsync.evaluation.figures import log_figures
from avsync.evaluation.score_search import clip_answers, predict_offsets, shift_scores
from avsync.evaluation.score_search_evaluator import ScoreSearchEvaluator
from avsync.modules.offset_classification import load_matching_weights
from avsync.papers.avst.network import AVST, AVST_CONFIGS, AudioSpectrogram
from avsync.offsets import FrameShifts
from avsync.training.epoch_means import log_epoch_mean

MASK_MODALITIES = ("audio", "video", "both")
EVAL_STAGES = ("val", "test")


def build_avst(arch: str = "avst_enc_mp", overrides: dict | None = None) -> AVST:
    if arch not in AVST_CONFIGS:
        raise ValueError(f"unknown AVST arch {arch!r}; registered: {sorted(AVST_CONFIGS)}")
    cfg = dataclasses.replace(AVST_CONFIGS[arch], **{k: tuple(v) if isinstance(v, list) else v
                                                      for k, v in (overrides or {}).items()})
    return AVST(cfg)


def info_nce(scores: Tensor, same_window: Tensor | None = None) -> Tensor:
    """InfoNCE over a (k, k) score matrix: −mean_i log softmax_j(s_ij)[i] (AVST Eq. in §3.2).

    ``same_window[i, j]`` (bool) marks off-diagonal pairs that are in sync as well (two draws of
    one window in a stage-2 batch); they are left out of the denominator, not counted as negatives.
    """
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"InfoNCE needs a square score matrix, got {tuple(scores.shape)}")
    if same_window is not None:
        eye = torch.eye(len(scores), dtype=torch.bool, device=scores.device)
        scores = scores.masked_fill(same_window & ~eye, float("-inf"))
    return F.cross_entropy(scores, torch.arange(len(scores), device=scores.device))


def same_window_mask(keys: list[str], video_starts: Tensor) -> Tensor:
    """(k, k) bool: pair (i, j) shows the same clip from the same start."""
    ids = {k: n for n, k in enumerate(dict.fromkeys(keys))}
    key_ids = torch.tensor([ids[k] for k in keys])
    starts = torch.as_tensor(video_starts, dtype=torch.float64).cpu()
    return (key_ids[:, None] == key_ids[None, :]) & ((starts[:, None] - starts[None, :]).abs() < 1e-6)


class AVSTModule(ClassBreakdown, L.LightningModule):
    """AVST training and evaluation around the plain :class:`~avsync.papers.avst.network.AVST` network.

    Args:
        arch: registered configuration (``avst_enc``, ``avst_enc_mp``, ``avst_dec``,
            ``avst_enc_mp_depth{1,2,3}``, ``avst_{enc,enc_mp,dec}_toy``).
        arch_overrides: fields of :class:`~avsync.papers.avst.network.AVSTConfig` to change.
        input_overrides: fields of the :class:`~avsync.inputs.InputSpec` (fps, frame size, ...).
        lr: Adam learning rate (1e-4 in the paper).
        train_frames: window lengths drawn per training batch (frames at the data rate).
        eval_window_frames: visual window of the score search (5 for the LRS tables; Table 2
            varies it 5-15).
        eval_lengths: further visual window lengths scored in the same evaluation pass (e.g.
            ``[5, 7, 9, 11, 13, 15]``), logged as ``{stage}/acc_tol_len{L}`` etc.; each searches
            the same clip prefix a run with ``eval_window_frames: L`` searches.
        eval_context_windows: further settings of a fixed-length model (the SyncNet / PM protocol
            of §4.4): for each N, N windows of ``eval_window_frames`` frames, the scores of the
            N − ``eval_window_frames`` + 1 windows covering N frames averaged, as a run with
            ``eval_windows: N, eval_context: N − eval_window_frames + 1`` (logged as ``…_len{N}``),
            in the same evaluation pass; with ``eval_windows: None`` every window of the clip, as a
            run with ``eval_context: N − eval_window_frames + 1``.
        eval_windows: visual windows per evaluation clip (the clip holds window + 2·max_shift +
            eval_windows − 1 frames). ``None``: every window of the delivered clip, each against
            every shift whose audio lies in the clip (AVST §4.2.1 "computed densely"; use with a
            data module's ``eval_whole_clips``, which delivers whole test clips).
        eval_context: windows whose per-shift scores are averaged before the argmax (1 = one
            prediction per window as the paper; ``None`` = one per clip).
        max_shift: candidate shifts ±max_shift frames (15).
        tolerance_frames: ±frames counted correct (1 for speech, 5 for general sounds).
        frame_step: feed every n-th frame to the network (5: VGG-Sound Sync's 5 fps from 25 fps).
        mask_frames, mask_modality: zero ``mask_frames`` consecutive frames of ``audio``,
            ``video`` or ``both`` (independent positions) in every input (Tables 4/6).
        log_attention: log the dec variant's audio-to-visual attention over the frames (Fig. 4/8/9).
        batch_windows: visual windows per ``pair_scores`` call in the score search.
        init_from: checkpoint of the same architecture to start from (the curriculum's stage 2
            continues stage 1 as a new run; every tensor must fit).
    """

    def __init__(self, arch: str = "avst_enc_mp", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, lr: float = 1e-4,
                 train_frames: tuple[int, ...] = (5, 7, 9, 11, 13, 15), eval_window_frames: int = 5,
                 eval_windows: int | None = 10, eval_context: int | None = 1, max_shift: int = 15,
                 tolerance_frames: int = 1, frame_step: int = 1, mask_frames: int = 0,
                 mask_modality: str = "both", log_attention: bool = True, batch_windows: int = 1,
                 init_from: str | None = None, eval_lengths: Sequence[int] = (),
                 eval_context_windows: Sequence[int] = ()):
        super().__init__()
        self.save_hyperparameters()
        self.net = build_avst(arch, arch_overrides)
        if init_from:
            missing = load_matching_weights(self.net, init_from, prefix="net.")
            if missing:
                raise ValueError(f"{init_from} does not fit {arch}: {len(missing)} tensors missing, e.g. {missing[:3]}")
        if mask_modality not in MASK_MODALITIES:
            raise ValueError(f"mask_modality must be one of {MASK_MODALITIES}, got {mask_modality!r}")
        self.eval_lengths = tuple(int(n) for n in eval_lengths)
        self.eval_context_windows = tuple(int(n) for n in eval_context_windows)
        named = (*self.eval_lengths, *self.eval_context_windows)
        if len(set(named)) != len(named):
            raise ValueError(f"eval_lengths / eval_context_windows repeat a length: {list(named)}")
        if self.eval_context_windows and min(self.eval_context_windows) < eval_window_frames:
            raise ValueError(f"eval_context_windows {list(self.eval_context_windows)} must be >= "
                             f"eval_window_frames={eval_window_frames}")
        lengths = (*train_frames, eval_window_frames, *self.eval_lengths)
        if frame_step < 1 or any(n % frame_step for n in lengths):
            raise ValueError(f"window lengths {lengths} must be multiples of frame_step={frame_step}")
        if max(lengths) // frame_step > self.net.cfg.max_frames:
            raise ValueError(f"windows of {max(lengths)} frames (step {frame_step}) exceed the temporal "
                             f"encodings of {self.net.cfg.max_frames} frames")
        if not 0 <= mask_frames < min(lengths) // frame_step:
            raise ValueError(f"mask_frames={mask_frames} must leave frames of the shortest window unmasked")
        if eval_windows is not None and (eval_windows < 1 or (eval_context is not None and
                                                             not 1 <= eval_context <= eval_windows)):
            raise ValueError(f"eval_context={eval_context} must be in [1, eval_windows={eval_windows}] or None")
        if eval_context is not None and eval_context < 1:
            raise ValueError(f"eval_context must be >= 1 or None, got {eval_context}")
        self.lr, self.train_frames = lr, tuple(int(n) for n in train_frames)
        self.eval_window_frames, self.eval_windows, self.eval_context = eval_window_frames, eval_windows, eval_context
        self.max_shift, self.frame_step, self.batch_windows = max_shift, frame_step, batch_windows
        self.mask_frames, self.mask_modality, self.log_attention = mask_frames, mask_modality, log_attention

        longest = max((eval_window_frames, *self.eval_lengths))
        most_windows = max((eval_windows, *self.eval_context_windows)) if eval_windows else 1
        clip_frames = max(max(self.train_frames), longest + 2 * max_shift + most_windows - 1)
        spec = InputSpec(fps=25.0, duration_sec=clip_frames / 25.0, frame_size=16 * self.net.cfg.grid,
                         resize_short_side=None, offset_classes=None, max_frame_shift=max_shift)
        spec = dataclasses.replace(spec, **(input_overrides or {}))
        self.input_spec = dataclasses.replace(
            spec, duration_sec=clip_frames / spec.fps,
            train_durations=tuple(n / spec.fps for n in self.train_frames))
        self.frames = FrameNormalize()
        self.spectrogram = AudioSpectrogram(self.net.cfg.n_fft, self.net.cfg.hop_length)
        self.tolerance_frames = tolerance_frames
        self.evaluators = StageEvaluators({s: self.build_evaluator(s) for s in EVAL_STAGES})
        self._attention_example: dict | None = None

    def build_evaluator(self, stage: str, class_names: Sequence[str] = ()) -> ScoreSearchEvaluator:
        """acc@1, tolerant, in-sync and random-offset accuracy of the headline length and of each
        of ``eval_lengths``; per dataset class (headline) when the test data has classes."""
        spec = self.input_spec
        return ScoreSearchEvaluator(stage, FrameShifts(self.max_shift).offsets_sec(spec.fps),
                                    frames=(self.tolerance_frames, spec.fps),
                                    contexts=(None, *(f"len{n}" for n in (*self.eval_lengths,
                                                                          *self.eval_context_windows))),
                                    in_sync_split=True,
                                    class_names=class_names)

    # -- inputs -----------------------------------------------------------------------------
    def _mask(self, x: Tensor, units_per_frame: int, dim: int = 1) -> Tensor:
        """Zero ``mask_frames`` consecutive frames at a random position per example along ``dim``
        (the time axis: 1 for frames (B, T, ...), -1 for spectrogram columns (B, 1, F, C))."""
        dim = dim % x.ndim
        length = x.shape[dim]
        n_frames = length // units_per_frame
        start = torch.randint(0, n_frames - self.mask_frames + 1, (x.shape[0],), device=x.device)
        t = torch.arange(length, device=x.device) // units_per_frame
        keep = (t[None] < start[:, None]) | (t[None] >= start[:, None] + self.mask_frames)  # (B, length)
        shape = [x.shape[0]] + [1] * (x.ndim - 1)
        shape[dim] = length
        return x * keep.view(shape).to(x.dtype)

    def video_inputs(self, frames: Tensor) -> Tensor:
        """uint8 (B, T, H, W, 3) -> normalised (B, T', 3, H, W): every frame_step-th frame, masked if asked."""
        if frames.ndim != 5 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8 (B, T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
        video = self.frames(frames[:, :: self.frame_step])
        if self.mask_frames and self.mask_modality in ("video", "both"):
            video = self._mask(video, 1)
        return video

    def audio_inputs(self, wav: Tensor, num_frames: int) -> Tensor:
        """float (B, S) covering ``num_frames`` fed frames -> log-spectrogram (B, 1, F, columns), masked if asked.

        The mask zeroes the spectrogram columns of the masked frames in the network's input (the
        standardised log-spectrogram), as the paper's "audio segments replaced with zeros": zeroing
        the waveform instead would put log(eps) columns, far outliers after the per-window
        standardisation, into the input.
        """
        if wav.ndim != 2:
            raise ValueError(f"wav must be (B, S), got {tuple(wav.shape)}")
        spec = self.spectrogram(wav)
        if self.mask_frames and self.mask_modality in ("audio", "both"):
            if spec.shape[-1] % num_frames:
                raise ValueError(f"{spec.shape[-1]} spectrogram columns do not divide into {num_frames} frames")
            spec = self._mask(spec, spec.shape[-1] // num_frames, dim=-1)
        return spec

    def model_inputs(self, frames: Tensor, wav: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 (B, T, H, W, 3) + float (B, S) -> the network's frames and spectrogram."""
        if wav.shape[0] != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} clips of frames but {wav.shape[0]} of audio")
        video = self.video_inputs(frames)
        return video, self.audio_inputs(wav, video.shape[1])

    def forward(self, frames: Tensor, wav: Tensor) -> Tensor:
        return self.net(*self.model_inputs(frames, wav))

    def pair_scores(self, frames: Tensor, wav: Tensor) -> Tensor:
        """Score-search interface: (N,) scores of N (window, audio) pairs, higher = more in sync.

        The backbones run once per distinct input: the 2·max_shift+1 candidates of a window share
        its frames, and neighbouring windows share most audio windows (W + 2·max_shift distinct
        ones instead of W·(2·max_shift+1)). Only the synchronisation module sees all N pairs.
        With masking on, each distinct input gets one random mask. Evaluation only (batch-norm
        in eval mode keeps every pair independent of the others).
        """
        if frames.shape[0] != wav.shape[0]:
            raise ValueError(f"{frames.shape[0]} visual windows but {wav.shape[0]} audio windows")
        frames_u, frame_idx = torch.unique(frames.flatten(1), dim=0, return_inverse=True)
        wav_u, wav_idx = torch.unique(wav, dim=0, return_inverse=True)
        video = self.video_inputs(frames_u.view(-1, *frames.shape[1:]))
        vis = self.net.visual_features(video)
        aud = self.net.audio_features(self.audio_inputs(wav_u, video.shape[1]), vis.shape[1])
        return self.net.sync(vis[frame_idx], aud[wav_idx])

    # -- training ---------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        if (batch["target"] != 0).any():
            raise ValueError("AVST trains on in-sync pairs (InfoNCE positives); the batch has offsets "
                             f"{batch['target'].tolist()}: use avsync.data_modules.sync_curriculum")
        video, spec = self.model_inputs(batch["video"], batch["audio"])
        scores = self.net.score_matrix(video, spec)
        loss = info_nce(scores, same_window_mask(list(batch["key"]), batch["video_start_sec"]).to(scores.device))
        k = scores.shape[0]
        acc = (scores.argmax(1) == torch.arange(k, device=scores.device)).float().mean()
        log_epoch_mean(self, "train/loss", loss, on_step=True, prog_bar=True, batch_size=k)
        log_epoch_mean(self, "train/retrieval_acc", acc, on_step=True, batch_size=k)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    # -- evaluation -------------------------------------------------------------------------
    def _eval_step(self, batch: dict, stage: str, batch_idx: int) -> None:
        evaluator = self.evaluators[stage]
        # clips are decoded as long as the longest training window; the search uses a prefix of
        # both streams (the offset between them is unchanged) holding exactly eval_windows windows,
        # or (eval_windows None) every window of the clip; whole clips come as lists
        settings = self.eval_settings()
        windows = {}  # per window length, the most windows a setting reads (one search each)
        for _, length, n_windows, _ in settings:
            windows[length] = None if n_windows is None else max(n_windows, windows.get(length) or 0)
        for b in range(len(batch["video"])):
            searched = {length: self._search_prefix(batch["video"][b], batch["audio"][b], length, n)
                        for length, n in windows.items()}
            for context, length, n_windows, n_context in settings:
                scores = searched[length] if n_windows is None else searched[length][:n_windows]
                n_context = len(scores) if n_context is None else min(n_context, len(scores))
                pred, _ = predict_offsets(scores, n_context)
                true = batch["target"][b].expand_as(pred)
                classes = batch["class_index"][b].expand_as(pred) if "class_index" in batch else None
                evaluator.log(self, evaluator.update(context, pred + self.max_shift, true + self.max_shift, classes))
        if stage == "val" and batch_idx == 0 and self._attention_example is None:
            self._keep_attention_example(batch)

    def eval_settings(self) -> list[tuple[str | None, int, int | None, int | None]]:
        """(metric suffix, window frames, windows, context) of every evaluation setting: the
        headline, each of ``eval_lengths``, each of ``eval_context_windows``."""
        base = (self.eval_windows, self.eval_context)
        return [(None, self.eval_window_frames, *base), *((f"len{n}", n, *base) for n in self.eval_lengths),
                *((f"len{n}", self.eval_window_frames, n if self.eval_windows else None, n - self.eval_window_frames + 1)
                  for n in self.eval_context_windows)]

    def _search_prefix(self, frames: Tensor, wav: Tensor, window_frames: int | None = None,
                       n_windows: int | None = None) -> Tensor:
        """Score matrix (eval_windows, 2·max_shift+1) of one clip with ``window_frames``-frame visual
        windows (default ``eval_window_frames``; a prefix of the clip, see _eval_step); with
        ``eval_windows=None`` every window of the clip, −inf where a shift's audio is outside it."""
        spec = self.input_spec
        window_frames = window_frames or self.eval_window_frames
        if self.eval_windows is None:
            return shift_scores(self, frames, wav, fps=spec.fps, sample_rate=spec.sample_rate,
                                window_frames=window_frames, max_shift=self.max_shift,
                                batch_windows=self.batch_windows, edges="clip")
        n_frames = window_frames + 2 * self.max_shift + (n_windows or self.eval_windows) - 1
        n_samples = round(n_frames / spec.fps * spec.sample_rate)
        return shift_scores(self, frames[:n_frames], wav[:n_samples], fps=spec.fps, sample_rate=spec.sample_rate,
                            window_frames=window_frames, max_shift=self.max_shift,
                            batch_windows=self.batch_windows)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Clip-level answers (scores averaged over every window of the clip): offset in frames,
        SyncNet confidence, and the true offset."""
        return clip_answers(self._search_prefix, batch)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val", batch_idx)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test", batch_idx)

    def _epoch_end(self, stage: str) -> None:
        """The in-sync / random-offset split (logged once per epoch) and the per-offset figure."""
        evaluator = self.evaluators[stage]
        result = evaluator.results()  # every rank: the states are synchronised
        evaluator.log(self, evaluator.split_metrics(result))
        if result is not None:
            log_figures(self, evaluator.offset_figures(result))

    def on_validation_epoch_start(self) -> None:
        self._attention_example = None

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")
        self._log_attention()

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")
        self.keep_breakdown()

    # -- attention maps (dec) -------------------------------------------------------------------
    def _keep_attention_example(self, batch: dict) -> None:
        """An in-sync window of the first in-sync clip of the batch (none: no map this epoch)."""
        in_sync = (batch["target"] == 0).nonzero().flatten()
        if not (self.log_attention and self.net.cfg.variant == "dec" and len(in_sync)):
            return
        b, w = int(in_sync[0]), self.eval_window_frames
        n_samples = round(w / self.input_spec.fps * self.input_spec.sample_rate)
        self._attention_example = {"frames": batch["video"][b][:w], "wav": batch["audio"][b][:n_samples]}

    def attention_maps(self, frames: Tensor, wav: Tensor) -> Tensor:
        """dec variant: (T', h, w) attention of the audio queries over the visual grid of each fed frame,
        last decoder layer, averaged over heads and audio tokens, min-max normalised per clip."""
        if self.net.cfg.variant != "dec":
            raise ValueError(f"attention maps are the dec variant's cross-attention; this model is "
                             f"{self.net.cfg.variant!r}")
        self.net.sync.record_attention(True)
        try:
            with torch.no_grad():
                self.pair_scores(frames[None], wav[None])
            att = self.net.sync.last_attention  # (1, heads, 1 + Ta, T'·h·w)
        finally:
            self.net.sync.record_attention(False)
        g = self.net.cfg.grid
        heat = att[0, :, 1:].mean((0, 1)).view(-1, g, g)
        return (heat - heat.min()) / (heat.max() - heat.min()).clamp_min(1e-12)

    def _log_attention(self) -> None:
        example, self._attention_example = self._attention_example, None
        if example is None:
            return

        def draw():
            heat = self.attention_maps(example["frames"], example["wav"])
            return attention_figure(example["frames"][:: self.frame_step], heat, "dec: audio-to-visual attention")
        log_figures(self, {"val/attention_dec": draw})

"""DiVAS as a LightningModule: the paper's contrastive recipe and distance-matrix evaluation.

Training (§3.1, Eq. 1): from each delivered clip one 0.2 s video window and one 0.2 s audio
window are cut; with probability ``negative_fraction`` (0.5) the audio is moved by 1 frame up to
as far as the clip allows (a negative), otherwise it is the synchronised audio. The loss is
``1/2N Σ y d² + (1 − y) max(0, m − d)²`` with ``d = ||z_a − z_v||`` and margin m = 20; Adam 1e-5.
The data module may deliver clips at any offset (its label is known): the synchronised audio of
the video window at frame t lies at frame ``t − Δ`` (docs/conventions.md), so positives stay exact.

Evaluation (§4.1): every clip goes through the shared score search
(:func:`avsync.evaluation.score_search.shift_scores`, W windows x 31 offsets), the distances are
averaged over all windows, the offset is their argmin and the confidence median − min. Accuracy
is counted in milliseconds under the three ITU-style windows [−40, 40], [−125, 45], [−185, 90],
so it means the same at every frame rate (:class:`~avsync.evaluation.distance_evaluator.DistanceEvaluator`).
``eval_contexts`` adds, in the same pass, the accuracy of shorter contexts: every run of windows
covering c frames answers on its own (``test/acc@±40ms_20f``).

Frame rates: a batch may carry ``fps`` (one value per clip, all equal within the batch), the
rate its clips were decoded at; without it the clips are at ``input_spec.fps``. A training batch
may also be a dict of such batches (one per rate, as Lightning's CombinedLoader delivers
:class:`~data_modules.multirate.MultiRateToyDataModule`'s loaders): their windows share one
zero-padded batch, as in the paper's LRS3-multfps training. Evaluation reads each batch's rate.

Grid evaluation (Table 5): with ``input_overrides: {offset_classes: 21}`` the clips carry offsets
of the 21-class grid; the predicted offset (searched over ±``max_shift`` frames, which must reach
the grid's ends) is snapped to the nearest class and ``acc@1`` / ``acc_tol`` (±1 class) are
logged besides the millisecond accuracies.

Active speaker detection (Table 6): with ``asd_eval: true`` validation and test score each
clip's own face (a speaker) and another clip's face (not the voice) against the clip's audio by
their sync confidence (:mod:`avsync.papers.divas.asd`); the threshold is calibrated on the
validation split at the start of a test, and ``test/asd_f1`` / ``_precision`` / ``_recall`` /
``_threshold`` are logged instead of the offset accuracies.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import lightning as L
import torch
from torch import Tensor

from avsync.inputs import FrameNormalize, InputSpec
from avsync.evaluation.distance_evaluator import DistanceEvaluator
from avsync.evaluation.evaluator import StageEvaluators
from avsync.evaluation.figures import log_figures
from avsync.papers.divas.asd import ActiveSpeakerEvaluation, speaker_pairs
from avsync.papers.divas.network import DIVAS_CONFIGS, DiVAS, pad_windows
from avsync.offsets import FrameShifts, get_grid
from avsync.evaluation.score_search import (ClipTooShortForSearch, frame_start_sample, predict_offsets,
                                           shift_scores, window_samples)
from avsync.training.epoch_means import log_epoch_mean

WINDOW_SEC = 0.2
PAPER_TOLERANCES_MS: tuple[tuple[float, float], ...] = ((-40.0, 40.0), (-125.0, 45.0), (-185.0, 90.0))
STAGES = ("val", "test")


def build_divas(arch: str = "divas_face", overrides: dict | None = None) -> DiVAS:
    if arch not in DIVAS_CONFIGS:
        raise ValueError(f"unknown DiVAS arch {arch!r}; registered: {sorted(DIVAS_CONFIGS)}")
    return DiVAS(dataclasses.replace(DIVAS_CONFIGS[arch], **(overrides or {})))


def contrastive_loss(distance: Tensor, in_sync: Tensor, margin: float) -> Tensor:
    """Eq. 1: mean over pairs of ``y d² + (1 − y) max(0, m − d)²``, halved."""
    y = in_sync.to(distance.dtype)
    return 0.5 * (y * distance.pow(2) + (1 - y) * (margin - distance).clamp_min(0).pow(2)).mean()


class RateBoundScorer:
    """A :class:`~avsync.evaluation.score_search.PairScorer` of one DiVAS at given frame and sample rates."""

    def __init__(self, module: "DiVASModule", fps: float, sample_rate: int):
        self.module, self.fps, self.sample_rate = module, float(fps), int(sample_rate)

    def pair_scores(self, frames: Tensor, wav: Tensor) -> Tensor:
        return self.module.pair_scores(frames, wav, fps=self.fps, sample_rate=self.sample_rate)


class DiVASModule(L.LightningModule):
    """Contrastive DiVAS training, score-search evaluation.

    Args:
        arch: ``divas_face`` (96 px face crops), ``divas_frame`` (240 px full frames) or ``divas_toy``.
        arch_overrides: fields of :class:`~avsync.papers.divas.network.DiVASConfig` (``time_aware: false``
            is the "Base" model of Table 2).
        input_overrides: fields of the :class:`~avsync.inputs.InputSpec` (fps, clip length, size).
            The clip must hold a 0.2 s window plus ±``max_shift`` frames for evaluation.
        lr: Adam learning rate (paper 1e-5). margin: m of Eq. 1 (20).
        negative_fraction: share of out-of-sync training pairs (0.5).
        audio_gain: fixed scale of the raw waveform (1: as decoded, the paper). Speech at ~0.1 RMS
            gives 128-sample patch embeddings ~20x weaker than the unit sinusoidal positions they
            are added to; a gain > 1 lets the content through at initialisation.
        tolerances_ms: residual windows of the reported accuracies.
        eval_batch_windows: visual windows (each with its 31 candidates) per encoder call.
        log_figures: log the first evaluation clip's distance curve (paper Fig. 2) to TensorBoard.
        asd_eval: evaluate active speaker detection (Table 6) instead of offsets.
        asd_threshold: a fixed ASD confidence threshold; ``None`` calibrates it on the validation split.
        eval_edges: ``inside`` scores the windows whose audio at every offset lies in the clip (the
            interior of a 2 s crop); ``pad`` is the paper's protocol (§4.1, SyncNet's): all
            W = L − F + 1 windows of the clip, an audio window outside the clip counted as a zero
            feature (distance = the video feature's norm), as SyncNet's zero-padded audio features.
            Use ``pad`` with a data module's ``eval_whole_clips`` (whole test clips).
        eval_contexts: context lengths in frames (at the batch's rate) evaluated besides the clip
            answer, each from the runs of windows covering that many frames (``_{c}f`` metrics).
        negatives: ``crop``: the module draws each pair from the delivered crop (a negative's shift
            is limited by the crop); ``data``: the data module delivers the pairs, one window each,
            drawn anywhere in the whole clip (its ``train_pair_negatives``; §3.1 "as large as
            possible, only limited by the clip length"), out of sync when their offset is not 0.
    """

    def __init__(self, arch: str = "divas_face", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, lr: float = 1e-5, margin: float = 20.0,
                 negative_fraction: float = 0.5, max_shift: int = 15, audio_gain: float = 1.0,
                 tolerances_ms: Sequence[Sequence[float]] = PAPER_TOLERANCES_MS, eval_batch_windows: int = 64,
                 log_figures: bool = True, asd_eval: bool = False, asd_threshold: float | None = None,
                 eval_edges: str = "inside", negatives: str = "crop", eval_contexts: Sequence[int] = ()):
        super().__init__()
        self.save_hyperparameters()
        if eval_edges not in ("inside", "pad"):
            raise ValueError(f"eval_edges must be 'inside' or 'pad', got {eval_edges!r}")
        self.eval_edges = eval_edges
        if negatives not in ("crop", "data"):
            raise ValueError(f"negatives must be 'crop' or 'data', got {negatives!r}")
        self.negatives = negatives
        self.net = build_divas(arch, arch_overrides)
        crop = "face" if arch == "divas_face" else "full"
        spec = InputSpec(fps=25.0, duration_sec=2.0, frame_size=self.net.cfg.frame_size, resize_short_side=None,
                         crop=crop, sample_rate=16000, offset_classes=None, max_frame_shift=max_shift)
        self.input_spec = dataclasses.replace(spec, **(input_overrides or {}))
        if not 0.0 <= negative_fraction <= 1.0:
            raise ValueError(f"negative_fraction must be in [0, 1], got {negative_fraction}")
        self.lr, self.margin, self.negative_fraction = lr, margin, negative_fraction
        self.audio_gain = float(audio_gain)
        self.log_figures = log_figures
        self._figure_logged: dict[str, bool] = {}
        self.max_shift, self.eval_batch_windows = max_shift, eval_batch_windows
        self.tolerances_ms = tuple(tuple(float(v) for v in w) for w in tolerances_ms)
        self.frames = FrameNormalize()
        self.grid = get_grid(self.input_spec.offset_classes) if self.input_spec.offset_classes else None
        if self.grid is not None:
            reach = max_shift / self.input_spec.fps
            if reach + 1e-9 < max(abs(v) for v in self.grid.values):
                raise ValueError(f"max_shift={max_shift} frames reaches ±{reach:.2f} s at {self.input_spec.fps:g} fps; "
                                 f"the {len(self.grid)}-class grid needs ±{max(self.grid.values):g} s")
        self.eval_contexts = tuple(int(c) for c in eval_contexts)
        if any(c < self.window_frames() for c in self.eval_contexts):
            raise ValueError(f"eval_contexts {list(self.eval_contexts)} must hold a {self.window_frames()}-frame window")
        offsets = FrameShifts(max_shift).offsets_sec(self.input_spec.fps)
        self.evaluators = StageEvaluators({stage: DistanceEvaluator(
            stage, offsets, self.tolerances_ms, None if self.grid is None else self.grid.values, self.eval_contexts)
            for stage in STAGES})
        self.asd = ActiveSpeakerEvaluation(asd_threshold) if asd_eval else None
        self.asd_calibration: dict[str, float] | None = None  # threshold + F1 on valid, set at test start

    @classmethod
    def from_checkpoint(cls, path: str, map_location: str = "cpu") -> "DiVASModule":
        """A trained module from a Lightning checkpoint, read with ``weights_only=True``."""
        from avsync.detect.loading import load_module  # LightningCLI's _class_path etc. are not arguments

        module = load_module(path, map_location)
        if not isinstance(module, cls):
            raise TypeError(f"{path} holds a {type(module).__name__}, not a {cls.__name__}")
        return module

    # -- windows --------------------------------------------------------------------------
    def window_frames(self, fps: float | None = None) -> int:
        """Frames in 0.2 s at ``fps`` (5 at 25, 6 at 30, 12 at 60)."""
        return max(1, int(round(WINDOW_SEC * float(fps or self.input_spec.fps))))

    def embed(self, frames: Tensor, wav: Tensor, fps, sample_rate, num_frames: Tensor | None = None,
              num_samples: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """uint8 frames (N, F, H, W, 3) and audio (N, S) -> common-space embeddings (N, D) each.
        ``fps`` / ``sample_rate`` and the valid lengths may be per item (zero-padded windows)."""
        _check_frames(frames, wav)
        return self.net(self.frames(frames), wav.float() * self.audio_gain, fps, sample_rate,
                        num_frames, num_samples)

    def pair_scores(self, frames: Tensor, wav: Tensor, fps: float | None = None,
                    sample_rate: int | None = None) -> Tensor:
        """PairScorer: −distance of each (video window, audio window) pair, higher = more in sync.

        Repeated windows are encoded once: the score search sends every video window with its 31
        candidate audio windows, and neighbouring windows share audio, so the encoders run about
        once per window (W times per clip, not W·O), as the paper's distance matrix does.
        """
        _check_frames(frames, wav)
        fps = float(fps or self.input_spec.fps)
        sample_rate = int(sample_rate or self.input_spec.sample_rate)
        video_idx, video_unique = _runs(frames)
        audio_unique, audio_idx = torch.unique(wav, dim=0, return_inverse=True)
        z_v = self.net.encode_video(self.frames(video_unique), fps)
        z_a = self.net.encode_audio(audio_unique.float() * self.audio_gain, sample_rate)
        return -DiVAS.distance(z_v[video_idx], z_a[audio_idx])

    def scorer(self, fps: float, sample_rate: int) -> RateBoundScorer:
        """This model as a PairScorer for clips at other rates (e.g. unseen 60 fps)."""
        return RateBoundScorer(self, fps, sample_rate)

    # -- training ---------------------------------------------------------------------------
    def training_pairs(self, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        """One (video window, audio window, in-sync flag) per clip, drawn as in §3.1, at the
        batch's frame rate (:func:`batch_fps`)."""
        video, audio, shift = batch["video"], batch["audio"], batch["target"].long()
        spec = self.input_spec
        fps = batch_fps(batch, spec.fps)
        n_win = self.window_frames(fps)
        n_samp = window_samples(n_win, fps, spec.sample_rate)
        if self.negatives == "data":  # pairs drawn by the data module anywhere in the clip
            if video.shape[1] < n_win or audio.shape[1] < n_samp:
                raise ValueError(f"delivered pairs of {video.shape[1]} frames / {audio.shape[1]} samples cannot hold a "
                                 f"{n_win}-frame window ({n_samp} samples) at {fps:g} fps: raise the spec's duration_sec")
            return video[:, :n_win], audio[:, :n_samp], shift == 0
        last = video.shape[1] - n_win  # last window start (frames) of video and of audio
        last_audio = int((audio.shape[1] - n_samp) * fps / spec.sample_rate)
        frames, waves, flags = [], [], []
        for i in range(len(video)):
            d = int(shift[i])
            lo, hi = max(0, d), min(last, last_audio + d)  # video starts whose synced audio fits
            if hi < lo:
                raise ValueError(f"clip {i}: {video.shape[1]} frames cannot hold a {n_win}-frame window "
                                 f"at offset {d} frames")
            t = int(torch.randint(lo, hi + 1, ()))
            a = t - d
            negative = bool(torch.rand(()) < self.negative_fraction) and last_audio > 0
            if negative:  # any other audio start: 1 frame up to the clip length away
                a = int(torch.randint(0, last_audio, ()))
                a += a >= t - d
            s0 = int(round(a * spec.sample_rate / fps))
            frames.append(video[i, t:t + n_win])
            waves.append(audio[i, s0:s0 + n_samp])
            flags.append(not negative)
        return torch.stack(frames), torch.stack(waves), torch.tensor(flags, device=video.device)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        parts = [batch] if "video" in batch else list(batch.values())  # dict of per-rate batches
        spec = self.input_spec
        if len(parts) == 1:
            frames, wav, in_sync = self.training_pairs(parts[0])
            d = DiVAS.distance(*self.embed(frames, wav, batch_fps(parts[0], spec.fps), spec.sample_rate))
        else:  # windows of several rates: one zero-padded batch, per-item rates and lengths
            pairs = [self.training_pairs(p) for p in parts]
            fps = torch.cat([torch.full((len(f),), batch_fps(p, spec.fps), dtype=torch.float64)
                             for p, (f, _, _) in zip(parts, pairs)])
            frames, wav, n_f, n_s = pad_windows([w for f, _, _ in pairs for w in f],
                                                [w for _, a, _ in pairs for w in a])
            in_sync = torch.cat([y for _, _, y in pairs])
            d = DiVAS.distance(*self.embed(frames, wav, fps.to(frames.device), spec.sample_rate,
                                           n_f.to(frames.device), n_s.to(frames.device)))
        loss = contrastive_loss(d, in_sync, self.margin)
        n = len(d)
        log_epoch_mean(self, "train/loss", loss, on_step=True, prog_bar=True, batch_size=n)
        if in_sync.any():
            self.log("train/dist_pos", d[in_sync].mean().detach(), on_step=True, batch_size=n)
        if (~in_sync).any():
            self.log("train/dist_neg", d[~in_sync].mean().detach(), on_step=True, batch_size=n)
        return loss

    # -- evaluation -------------------------------------------------------------------------
    def predict_clip(self, frames: Tensor, wav: Tensor, fps: float | None = None,
                     sample_rate: int | None = None) -> dict[str, Any]:
        """One clip (T, H, W, 3) uint8 + (S,) -> predicted offset (frames, s), confidence and the
        W x O distance matrix (§4.1: offset = argmin of the window-averaged distances)."""
        fps = float(fps or self.input_spec.fps)
        sample_rate = int(sample_rate or self.input_spec.sample_rate)
        if self.eval_edges == "pad":
            scores = -self.padded_distances(frames, wav, fps, sample_rate)
        else:
            scores = shift_scores(self.scorer(fps, sample_rate), frames, wav, fps=fps, sample_rate=sample_rate,
                                  window_frames=self.window_frames(fps), max_shift=self.max_shift,
                                  batch_windows=self.eval_batch_windows)
        pred, confidence = predict_offsets(scores, context=len(scores))
        return {"pred_frames": int(pred[0]), "pred_sec": float(pred[0]) / fps,
                "confidence": float(confidence[0]), "distances": -scores}

    def padded_distances(self, frames: Tensor, wav: Tensor, fps: float, sample_rate: int) -> Tensor:
        """The paper's distance matrix D (W, 2·max_shift+1) of one clip (§4.1, SyncNet's protocol).

        Row t: the video window at frame t, for every t = 0 … L − F (W = L − F + 1); column j: the
        audio window at frame t − d, d = j − max_shift (the score search's sign). The encoders run
        once per video window and once per audio window start; an audio window that would start
        before the clip or end after it is SyncNet's zero padding: a zero feature, so the distance
        is the video feature's norm.
        """
        _check_frames(frames[None], wav[None])
        n_win = self.window_frames(fps)
        n_samp = window_samples(n_win, fps, sample_rate)
        n_windows = frames.shape[0] - n_win + 1
        starts = frame_start_sample(torch.arange(frames.shape[0], device=wav.device), fps, sample_rate)
        n_audio = int((starts + n_samp <= wav.shape[0]).sum())
        if n_windows < 1:
            raise ClipTooShortForSearch(f"the clip has {frames.shape[0]} frames, fewer than one {n_win}-frame window")
        step = self.eval_batch_windows
        z_v = torch.cat([self.net.encode_video(self.frames(torch.stack([frames[t:t + n_win] for t in
                                                                        range(i, min(i + step, n_windows))])), fps)
                         for i in range(0, n_windows, step)])
        idx = torch.arange(n_samp, device=wav.device)
        z_a = [self.net.encode_audio(wav[starts[i:min(i + step, n_audio), None] + idx].float() * self.audio_gain,
                                     sample_rate) for i in range(0, n_audio, step)]
        z_a = torch.cat(z_a) if z_a else z_v.new_zeros(0, z_v.shape[1])
        shifts = torch.arange(-self.max_shift, self.max_shift + 1, device=wav.device)
        audio_at = torch.arange(n_windows, device=wav.device)[:, None] - shifts[None, :]  # (W, O)
        inside = (audio_at >= 0) & (audio_at < n_audio)
        padded = torch.cat([z_a, z_a.new_zeros(1, z_a.shape[1])])                        # row n_audio: zeros
        chosen = padded[torch.where(inside, audio_at, torch.full_like(audio_at, n_audio))]
        return DiVAS.distance(z_v[:, None], chosen)

    def true_offsets_sec(self, batch: dict) -> Tensor:
        """The batch's true offsets in seconds: grid classes or frame shifts at the batch's rate."""
        target = batch["target"].detach().to(self.device)
        if self.grid is not None:
            return self.grid.as_tensor(torch.float64).to(self.device)[target.long()]
        return target.double() / batch_fps(batch, self.input_spec.fps)

    def _evaluate(self, batch: dict, stage: str) -> list[dict]:
        fps = batch_fps(batch, self.input_spec.fps)
        results = [self.predict_clip(v, a, fps=fps) for v, a in zip(batch["video"], batch["audio"])]
        pred_sec = torch.tensor([r["pred_sec"] for r in results], dtype=torch.float64, device=self.device)
        true_sec = self.true_offsets_sec(batch)
        window_pred = window_true = None
        if self.grid is None and all(r.get("distances") is not None for r in results):
            window_pred = torch.cat([(r["distances"].argmin(1) - self.max_shift).double() / fps for r in results])
            window_true = torch.cat([t.expand(len(r["distances"])) for r, t in zip(results, true_sec.cpu())])
            window_pred, window_true = window_pred.to(self.device), window_true.to(self.device)
        self.evaluators[stage].update(pred_sec, true_sec, window_pred_sec=window_pred, window_true_sec=window_true,
                                      context_answers=self._context_answers(results, true_sec, fps))
        self.log(f"{stage}/confidence", sum(r["confidence"] for r in results) / len(results),
                 batch_size=len(results))  # one value per loader (frame rate) when there are several
        if not self._figure_logged.get(stage) and self.log_figures and self.grid is None:
            distances, true_frames = results[0]["distances"], int(batch["target"][0])
            log_figures(self, {f"{stage}/distance_curve": lambda: self._distance_curve(stage, distances, true_frames,
                                                                                      fps)})
            self._figure_logged[stage] = True
        return results

    def _context_answers(self, results: list[dict], true_sec: Tensor, fps: float) -> dict[int, tuple[Tensor, Tensor]]:
        """Per context c (frames): the answer (s) of every run of windows covering c frames, and its clip's truth."""
        answers = {}
        if any(r.get("distances") is None for r in results):
            return answers
        n_win = self.window_frames(fps)
        for c in self.eval_contexts:
            preds, truths = [], []
            for r, t in zip(results, true_sec.cpu()):
                scores = -r["distances"]
                pred, _ = predict_offsets(scores, context=min(c - n_win + 1, len(scores)))
                preds.append(pred.double() / fps)
                truths.append(t.expand(len(pred)))
            answers[c] = torch.cat(preds).to(self.device), torch.cat(truths).to(self.device)
        return answers

    @staticmethod
    def _distance_curve(stage: str, distances: Tensor, true_frames: int, fps: float):
        """The first clip's distance curve (paper Fig. 2), once per evaluation epoch."""
        from avsync.papers.divas.plots import distance_curve_figure

        return distance_curve_figure(distances, fps, true_frames, f"{stage} clip 0")

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.asd is not None:
            self.asd.collect(*self._speaker_confidences(batch, "val"))
            return
        self._evaluate(batch, "val")  # several loaders (frame rates) add up in the same metrics

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.asd is not None:
            self.asd.update(*self._speaker_confidences(batch, "test"))
            return
        self._evaluate(batch, "test")

    # -- active speaker detection (asd_eval) ------------------------------------------------------
    def speaker_confidences(self, faces: Tensor, audio: Tensor, batch: dict) -> Tensor:
        """Sync confidence of each face (N, T, H, W, 3) against its audio (N, S), at the batch's rate."""
        fps = batch_fps(batch, self.input_spec.fps)
        return torch.tensor([self.predict_clip(v, a, fps=fps)["confidence"] for v, a in zip(faces, audio)],
                            dtype=torch.float64, device=faces.device)

    def _speaker_confidences(self, batch: dict, stage: str) -> tuple[Tensor, Tensor]:
        faces, audio, speaking = speaker_pairs(batch["video"], batch["audio"])
        confidence = self.speaker_confidences(faces, audio, batch)
        n = len(batch["video"])
        self.log(f"{stage}/asd_confidence_speaker", confidence[:n].mean(), batch_size=n)
        self.log(f"{stage}/asd_confidence_other", confidence[n:].mean(), batch_size=n)
        return confidence, speaking

    def on_test_start(self) -> None:
        if self.asd is None or self.asd.fixed_threshold is not None:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            raise RuntimeError("asd_eval calibrates its threshold on the validation split: test with a "
                               "datamodule (or set asd_threshold)")
        datamodule.setup("validate")
        loaders = datamodule.val_dataloader()
        loaders = list(loaders.values()) if isinstance(loaders, dict) else \
            list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]
        batches = (self.transfer_batch_to_device(b, self.device, 0) for loader in loaders for b in loader)
        with torch.no_grad():
            threshold, f1 = self.asd.calibrate_on(batches, self.speaker_confidences)
        self.asd_calibration = {"threshold": threshold, "val_f1": f1}

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        fps = batch_fps(batch, self.input_spec.fps)
        results = [self.predict_clip(v, a, fps=fps) for v, a in zip(batch["video"], batch["audio"])]
        return {"key": batch.get("key"), "pred_offset_sec": [r["pred_sec"] for r in results],
                "confidence": [r["confidence"] for r in results],
                "true_offset_sec": self.true_offsets_sec(batch).tolist()}

    def _asd_epoch_end(self, stage: str) -> None:
        if stage == "val":  # the threshold that fits the validation split (its F1 there is optimistic)
            threshold, f1 = self.asd.calibrate()
            self.log("val/asd_threshold", threshold)
            self.log("val/asd_f1", f1)
            return
        self.log_dict({f"test/{name}": metric for name, metric in self.asd.decisions.items()})
        self.log("test/asd_threshold", float(self.asd.threshold))
        if self.asd_calibration is not None:
            self.log("test/asd_calibration_f1", self.asd_calibration["val_f1"])

    def _epoch_end(self, stage: str) -> None:
        if self.asd is not None:
            self._asd_epoch_end(stage)
            return
        self._figure_logged[stage] = False
        # logged once per epoch, not per step: the batches of every loader (frame rate) add up in
        # the same metrics, and a key logged from a step would be one per loader
        evaluator = self.evaluators[stage]
        evaluator.log(self, evaluator.metrics())

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def batch_fps(batch: dict, default: float) -> float:
    """The frame rate a batch was decoded at: its ``fps`` entry (one value per clip, all equal)
    or ``default`` (the model's InputSpec rate)."""
    fps = batch.get("fps")
    if fps is None:
        return float(default)
    fps = torch.as_tensor(fps, dtype=torch.float64).reshape(-1)
    if len(fps) == 0 or bool((fps != fps[0]).any()):
        raise ValueError(f"a batch must hold clips of one frame rate, got {sorted(set(fps.tolist()))}")
    return float(fps[0])


def _check_frames(frames: Tensor, wav: Tensor) -> None:
    if frames.dtype != torch.uint8 or frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (N, F, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    if wav.ndim != 2 or len(wav) != len(frames):
        raise ValueError(f"wav must be (N, S) with one row per video window, got {tuple(wav.shape)} "
                         f"for {len(frames)} windows")


def _runs(x: Tensor) -> tuple[Tensor, Tensor]:
    """Index of each row's run of identical consecutive rows, and one row per run."""
    flat = x.reshape(len(x), -1)
    new = torch.ones(len(x), dtype=torch.bool, device=x.device)
    if len(x) > 1:
        new[1:] = (flat[1:] != flat[:-1]).any(1)
    return torch.cumsum(new, 0) - 1, x[new]

"""How each kind of model turns one decoded file into scores over its candidate offsets.

Both kinds give an :class:`OffsetScores`: one row of scores over the offsets per *window* of the
file (a model-length crop for grid classifiers, a short visual window for score-search models),
with the window's centre time. The file-level answer averages the rows; the timeline averages
them over a moving window.

* :class:`GridDetector` — SparseSync, Synchformer (any :class:`OffsetClassificationModule`): softmax over
  the offset grid of each crop of the model's length; crops every ``hop_sec``.
* :class:`ScoreSearchDetector` — VocaLiST, SyncNet (:class:`PairScoringModule`), AVST and DiVAS:
  :func:`~avsync.evaluation.score_search.shift_scores` rows (one per frame), the clip-level
  answer by :func:`~avsync.evaluation.score_search.predict_offsets` over all rows.
* :class:`VocaLiSTClipDetector` — the paper-size VocaLiST: the authors' ``test_lrs2.py`` procedure
  (:mod:`avsync.papers.vocalist.clip_protocol`: ``cv2.resize`` of the stored face crops, whole-clip mel,
  zero-padded and masked search), the clip's answer from the window-averaged logits.
* :class:`SyncNetClipDetector` — the paper-size SyncNet (224 px face crops, e.g. converted official
  ``syncnet-v2`` weights): syncnet_python's own ``evaluate`` (whole-clip MFCC, zero-padded edges,
  :mod:`avsync.evaluation.lse`), so ``detect`` gives its offset and its confidence (= LSE-C).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import lightning as L
import numpy as np
import torch

from avsync.evaluation.score_search import ClipTooShortForSearch, PairScorer, predict_offsets, shift_scores
from avsync.modules.offset_classification import OffsetClassificationModule
from avsync.modules.pair_scoring import PairScoringModule
from avsync.offsets import FrameShifts
from avsync.registry import entry_for_module

if TYPE_CHECKING:  # the papers' modules are imported by whoever built the module, not here
    from avsync.papers.avst.module import AVSTModule
    from avsync.papers.divas.module import DiVASModule
    from avsync.papers.syncnet.module import SyncNetModule
    from avsync.papers.vocalist.module import VocaLiSTModule

__all__ = ["OffsetScores", "frame_starts", "GridDetector", "ScoreSearchDetector", "SyncNetClipDetector", "VocaLiSTClipDetector",
           "PROTOCOLS",
           "detector_for"]


@dataclass
class OffsetScores:
    """Scores of the windows of one file: ``rows[i, j]`` = window i (centred at ``times_sec[i]``),
    candidate offset ``offsets_sec[j]`` (docs/conventions.md sign). ``kind``: "probability" or "score"."""

    offsets_sec: np.ndarray
    times_sec: np.ndarray
    rows: np.ndarray
    kind: str

    def file_curve(self) -> np.ndarray:
        """Mean over the windows; a NaN (a candidate a protocol did not score there) is left out."""
        return np.nanmean(self.rows, 0) if np.isnan(self.rows).any() else self.rows.mean(0)


def frame_starts(last_start: int, hop_sec: float, fps: float) -> list[int]:
    """First frames of windows every ``hop_sec``: window k starts at the frame nearest k x hop_sec
    (halves up), so the hop is honoured exactly on average and never drifts (0.5 s at 25 fps: 12
    and 13 frames in turn, starts 0, 0.52, 1.0, 1.52, 2.0 ... s), not rounded once to 13 frames
    (every 0.52 s). Starts up to ``last_start``; a hop under one frame gives every frame once."""
    if hop_sec <= 0:
        raise ValueError(f"the hop must be positive, got {hop_sec}")
    starts, k = [], 0
    while (start := math.floor(k * hop_sec * fps + 0.5 + 1e-9)) <= last_start:
        if not starts or start != starts[-1]:
            starts.append(start)
        k += 1
    return starts


class GridDetector:
    """A grid classifier on crops of its own length (``input_spec.duration_sec``)."""

    kind = "probability"

    def __init__(self, module: OffsetClassificationModule):
        self.module, self.spec = module, module.input_spec
        self.offsets_sec = np.asarray(module.grid.values, dtype=np.float64)

    def crop_starts(self, num_frames: int, hop_sec: float | None, max_crops: int | None) -> list[int]:
        """First frames of the crops: every ``hop_sec`` (default: back to back), at most ``max_crops``
        of them spread evenly over the file."""
        length = self.spec.num_frames
        if num_frames < length:
            raise ClipTooShortForSearch(f"too short: the model takes {self.spec.duration_sec:g} s crops, the file "
                                        f"has {num_frames / self.spec.fps:.2f} s")
        starts = frame_starts(num_frames - length, hop_sec or self.spec.duration_sec, self.spec.fps)
        if max_crops and len(starts) > max_crops:
            starts = [starts[round(i)] for i in np.linspace(0, len(starts) - 1, max_crops)]
        return starts

    @torch.inference_mode()
    def scores(self, frames: torch.Tensor, wav: torch.Tensor, hop_sec: float | None = None,
               max_crops: int | None = 8, progress: bool = False) -> OffsetScores:
        spec, device = self.spec, self.module.device
        samples = spec.num_samples
        rows, times = [], []
        starts = self.crop_starts(len(frames), hop_sec, max_crops)
        if progress:  # long files in avsync detect
            from tqdm import tqdm

            starts = tqdm(starts, desc="scoring crops", unit="crop", leave=False)
        for start in starts:
            s0 = round(start / spec.fps * spec.sample_rate)
            audio = wav[s0:s0 + samples]
            if len(audio) < samples:
                audio = torch.nn.functional.pad(audio, (0, samples - len(audio)))
            batch = {"video": frames[start:start + spec.num_frames][None].to(device), "audio": audio[None].to(device)}
            rows.append(self.module(batch).softmax(-1)[0].double().cpu().numpy())
            times.append((start + spec.num_frames / 2) / spec.fps)
        return OffsetScores(self.offsets_sec, np.asarray(times), np.stack(rows), self.kind)

    def file_prediction(self, scores: OffsetScores) -> tuple[int, float]:
        """(index of the offset, confidence = its mean probability over the crops)."""
        curve = scores.file_curve()
        best = int(curve.argmax())
        return best, float(curve[best])


@dataclass
class SearchSetup:
    scorer: PairScorer
    fps: float
    sample_rate: int
    window_frames: int
    max_shift: int
    batch_windows: int


class ScoreSearchDetector:
    """A pair-scoring model searched over ±max_shift frames, with clip-level context."""

    kind = "score"

    def __init__(self, module: L.LightningModule, setup: SearchSetup):
        self.module, self.spec, self.setup = module, module.input_spec, setup
        self.offsets_sec = np.asarray(FrameShifts(setup.max_shift).offsets_sec(setup.fps), dtype=np.float64)

    @torch.inference_mode()
    def scores(self, frames: torch.Tensor, wav: torch.Tensor, progress: bool = False, **_) -> OffsetScores:
        s = self.setup
        device = self.module.device
        rows = shift_scores(s.scorer, frames.to(device), wav.to(device), fps=s.fps, sample_rate=s.sample_rate,
                            window_frames=s.window_frames, max_shift=s.max_shift, batch_windows=s.batch_windows,
                            progress=progress)
        times = (s.max_shift + np.arange(len(rows)) + s.window_frames / 2) / s.fps
        return OffsetScores(self.offsets_sec, times, rows.double().cpu().numpy(), self.kind)

    def file_prediction(self, scores: OffsetScores) -> tuple[int, float]:
        """(index of the offset, SyncNet confidence max − median) with every window as context."""
        rows = torch.from_numpy(scores.rows)
        pred, confidence = predict_offsets(rows, context=len(rows))
        return int(pred[0]) + self.setup.max_shift, float(confidence[0])


def _pair_scoring(module: PairScoringModule) -> ScoreSearchDetector:
    return ScoreSearchDetector(module, SearchSetup(module, module.fps, module.sample_rate, module.window_frames,
                                                   module.max_shift, module.eval_batch_windows))


class _AuthorsClipDetector:
    """An authors' clip procedure over 5-frame windows and ±vshift frames (scores, higher = better);
    subclasses give ``scores`` and ``file_prediction``."""

    kind = "score"

    def __init__(self, module: L.LightningModule, vshift: int = 15):
        self.module, self.spec, self.vshift = module, module.input_spec, vshift
        self.offsets_sec = np.asarray(FrameShifts(vshift).offsets_sec(self.spec.fps), dtype=np.float64)

    @property
    def setup(self) -> SearchSetup:
        """For the timeline (:mod:`avsync.detect.timeline`): 5-frame windows, and no frames kept aside
        for the shifts — the authors' search zero-pads the audio, so every window has a row."""
        return SearchSetup(None, self.spec.fps, self.spec.sample_rate, 5, 0, 0)

    def _offset_scores(self, rows: np.ndarray) -> OffsetScores:
        """Rows in the authors' column order (offset ``vshift − i``) -> ascending offsets, window centres."""
        rows = np.ascontiguousarray(rows[:, ::-1], dtype=np.float64)
        return OffsetScores(self.offsets_sec, (np.arange(len(rows)) + 2.5) / self.spec.fps, rows, self.kind)


class SyncNetClipDetector(_AuthorsClipDetector):
    """SyncNet as syncnet_python's ``evaluate`` runs it (:func:`avsync.evaluation.lse.syncnet_lse`).

    Row w = 5-frame window w, scores = −distance at each offset (columns ascending from −vshift:
    syncnet_python's column i is offset ``vshift − i``, + = audio leads); the file curve is minus its
    mean distance curve, so the best offset is its argmin and the confidence max − median of the
    curve is its LSE-C."""

    @torch.inference_mode()
    def scores(self, frames: torch.Tensor, wav: torch.Tensor, progress: bool = False, **_) -> OffsetScores:
        from avsync.evaluation.lse import syncnet_lse

        try:
            result = syncnet_lse(self.module.net, frames, wav, vshift=self.vshift, sample_rate=self.spec.sample_rate)
        except ValueError as err:  # fewer samples or frames than one window
            raise ClipTooShortForSearch(str(err)) from err
        return self._offset_scores(-result.dists.double().cpu().numpy())

    def file_prediction(self, scores: OffsetScores) -> tuple[int, float]:
        """(index of the offset, LSE-C): :func:`avsync.evaluation.lse.lse_from_dists` on the float32
        distances, so the numbers are the protocol's to the last bit."""
        from avsync.evaluation.lse import lse_from_dists

        result = lse_from_dists(torch.from_numpy(-scores.rows).float().flip(1), vshift=self.vshift)
        return int(result.offset_frames) + self.vshift, float(result.lse_c)


class VocaLiSTClipDetector(_AuthorsClipDetector):
    """VocaLiST as the authors' ``test_lrs2.py`` scores a clip (:mod:`avsync.papers.vocalist.clip_protocol`).

    Frames are decoded as stored (face crops: the authors resize them to 96x96 with ``cv2.resize``
    and keep the lower half), the mel is the whole clip's. Row w = window w's sync logits over the
    offsets (columns ascending from −vshift; the authors' column i is offset ``vshift − i``), masked
    candidates (audio outside the clip) NaN; the clip's answer is the argmax of the window-averaged
    logits (every window as context, as the paper's longest context), confidence max − median."""

    def decode(self, path):
        from avsync.detect.decoding import decode_for_model

        return decode_for_model(path, self.spec, native_size=True)

    @torch.inference_mode()
    def scores(self, frames: torch.Tensor, wav: torch.Tensor, progress: bool = False, **_) -> OffsetScores:
        from avsync.papers.vocalist.clip_protocol import (MASKED_LOGIT, vocalist_clip_frames, vocalist_clip_logits,
                                                    vocalist_clip_mel, vocalist_window_count)

        count = vocalist_window_count(len(frames), len(wav))
        if count < 1:
            raise ClipTooShortForSearch(f"{len(frames)} frames and {len(wav)} samples give no 5-frame window")
        logits = vocalist_clip_logits(self.module.net, vocalist_clip_frames(frames), vocalist_clip_mel(wav), count,
                                      vshift=self.vshift)
        rows = logits.double().numpy()
        rows[rows == MASKED_LOGIT] = np.nan
        return self._offset_scores(rows)

    def file_prediction(self, scores: OffsetScores) -> tuple[int, float]:
        curve = scores.file_curve()
        best = int(np.nanargmax(curve))
        return best, float(curve[best] - np.nanmedian(curve))


def _vocalist(module: VocaLiSTModule) -> VocaLiSTClipDetector | ScoreSearchDetector:
    """The paper-size VocaLiST: the authors' clip procedure; toy VocaLiSTs: the search."""
    if module.hparams.get("arch") == "vocalist":
        return VocaLiSTClipDetector(module, module.max_shift)
    return _pair_scoring(module)


def _syncnet(module: SyncNetModule) -> SyncNetClipDetector | ScoreSearchDetector:
    """The paper-size SyncNet on 224 px frames: syncnet_python's protocol; toy SyncNets: the search."""
    if module.hparams.get("arch") == "syncnet" and module.input_spec.frame_size == 224:
        return SyncNetClipDetector(module, module.max_shift)
    return _pair_scoring(module)


def _divas(module: DiVASModule) -> ScoreSearchDetector:
    spec = module.input_spec
    return ScoreSearchDetector(module, SearchSetup(module.scorer(spec.fps, spec.sample_rate), spec.fps,
                                                   spec.sample_rate, module.window_frames(spec.fps),
                                                   module.max_shift, module.eval_batch_windows))


def _avst(module: AVSTModule) -> ScoreSearchDetector:
    spec = module.input_spec
    return ScoreSearchDetector(module, SearchSetup(module, spec.fps, spec.sample_rate, module.eval_window_frames,
                                                   module.max_shift, module.batch_windows))


#: detector protocol (the registry's ``detector`` of a model) -> detector factory
PROTOCOLS: dict[str, Callable[[L.LightningModule], GridDetector | ScoreSearchDetector]] = {
    "grid": GridDetector,
    "pair_scoring": _pair_scoring,
    "syncnet": _syncnet,
    "vocalist": _vocalist,
    "divas": _divas,
    "avst": _avst,
}
# a module no name is registered for (a user's subclass of a protocol base) runs by its base's protocol
_BASE_PROTOCOLS = ((OffsetClassificationModule, "grid"), (PairScoringModule, "pair_scoring"))


def detector_for(module: L.LightningModule) -> GridDetector | ScoreSearchDetector:
    """The detector of ``module``: its registered model's protocol (:mod:`avsync.registry`)."""
    entry = entry_for_module(module)
    protocol = entry.detector if entry is not None else next(
        (name for base, name in _BASE_PROTOCOLS if isinstance(module, base)), None)
    if protocol is None:
        raise TypeError(f"{type(module).__name__} does not predict offsets (its registered model has no detector "
                        f"protocol; see avsync.registry)")
    return PROTOCOLS[protocol](module)

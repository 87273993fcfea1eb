"""The metrics ``avsync score`` computes, each with its model, its decoding and its columns.

A metric is split in two so that decoding runs ahead in worker processes: :meth:`decode` (in a
worker; returns numpy arrays) and :meth:`compute` (in the main process, on the model's device).

* ``offset`` — the offset of the file with any of the suite's offset models, exactly as ``avsync
  detect`` computes it (:mod:`avsync.detect`: same decoding, same crops, same decision).
* ``desync`` — av-benchmark's DeSync with a Synchformer (:mod:`avsync.evaluation.desync`).
* ``lse`` — syncnet_python's LSE-C / LSE-D per face track (:mod:`avsync.score.lse`).

Models: ``--ckpt`` (a checkpoint of this suite), ``--weights`` (an official weight file, converted
on the fly by :mod:`avsync.convert`; ``MODEL:PATH`` says which model when the metric allows several),
``--model`` (official weights by name).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avsync.detect.loading import CheckpointError, load_module, module_from_checkpoint
from avsync.faces.detectors import face_detector_named
from avsync.score.reasons import Unsynchronisable

__all__ = ["ModelChoice", "OffsetMetric", "DeSyncMetric", "METRICS", "build_metric", "load_choice"]


@dataclass(frozen=True)
class ModelChoice:
    """At most one of: a checkpoint, an official weight file (``[MODEL:]PATH``), an official name."""

    ckpt: str | None = None
    weights: str | None = None
    model: str | None = None


def load_choice(choice: ModelChoice, device: str, default_converter: str | None = None,
                default_model: str | None = None):
    """The LightningModule a choice names, in eval mode on ``device``."""
    given = [k for k in ("ckpt", "weights", "model") if getattr(choice, k)]
    if len(given) > 1:
        raise CheckpointError(f"give one of --ckpt, --weights, --model for a metric, not {' and '.join(given)}")
    if choice.ckpt:
        return load_module(choice.ckpt, device)
    if choice.weights:
        from avsync.registry import converter_names, get_converter

        name, sep, path = choice.weights.partition(":")
        if not sep or name not in converter_names():
            name, path = default_converter, choice.weights
        if name is None:
            raise CheckpointError(f"--weights {choice.weights}: say which model the file is, as MODEL:PATH "
                                  f"(MODEL one of {converter_names()})")
        try:
            state = get_converter(name).lightning_checkpoint(path)
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            raise CheckpointError(f"{path}: cannot read it as official {name} weights ({err})") from err
        return module_from_checkpoint(state, device, source=path)
    if choice.model or default_model:
        from avsync.weights import load_official

        return load_official(choice.model or default_model, device)
    raise CheckpointError("no model: give --ckpt, --weights or --model")


def _check_synchronisable(path: str, frames: np.ndarray, wav: np.ndarray, fps: float, sample_rate: int) -> None:
    from avsync.media.checks import unsynchronisable_reason

    code = unsynchronisable_reason(frames, wav, sample_rate, 0.0, fps)
    if code:
        raise Unsynchronisable(code, f"{code.replace('_', ' ')}: nothing to synchronise")


class OffsetMetric:
    """The file's offset (``avsync detect``'s answer) in seconds and frames, sign in words.

    Face-crop models (SyncNet, VocaLiST, DiVAS face) are given each face track of the file
    (:mod:`avsync.detect.face_tracks`) unless ``faces.enabled`` is False: the row's offset is the
    active track's (the face whose lips sync best), ``offset_tracks`` lists every track (span,
    offset, confidence, active-speaker score and flag), and with ``per_track`` each track gets a row
    of its own (``face_track``, ``track_start_sec`` ...). No track: reason ``no_face``."""

    name = "offset"
    columns = ("offset_sec", "offset_frames", "verdict", "confidence", "confidence_kind", "alternatives")
    values = ("offset_sec", "abs_offset_sec")  # summarised (abs_offset_sec is derived)
    TRACK_COLUMNS = ("face_track", "track_start_sec", "track_end_sec", "speaking_score", "speaking",
                     "asd_threshold")

    def __init__(self, module, max_crops: int | None = 8, faces=None, asd_threshold: float | None = None,
                 per_track: bool = False):
        from avsync.detect.detectors import detector_for
        from avsync.detect.face_tracks import asd_threshold_of, wants_faces
        from avsync.faces.model_input import FaceOptions

        try:
            self.detector = detector_for(module)
        except TypeError as err:  # a module that predicts no offset
            raise CheckpointError(str(err)) from err
        self.max_crops = max_crops
        self.faces = faces if faces is not None else FaceOptions()
        self.use_faces = wants_faces(self.detector, self.faces)
        self.threshold = asd_threshold_of(module, asd_threshold) if self.use_faces else None
        self.per_track = per_track and self.use_faces
        if self.use_faces:
            self.columns = (*type(self).columns, *(self.TRACK_COLUMNS if self.per_track else
                                                   ("active_track", "offset_tracks")))
        # the face pipeline runs in the forked decoding workers: its detector stays on the CPU
        self._face_detector = self.faces.face_detector() if self.use_faces else None

    def decode(self, path: str):
        if self.use_faces:
            from avsync.faces.model_input import decode_face_clips

            clips = decode_face_clips(path, self.detector, self.faces, self._face_detector)
            return [(c.span(), c.frames.numpy(), c.wav.numpy()) for c in clips]
        from avsync.detect.decoding import decode_for_detector

        # silent / still / too short: detect_decoded says so (with the model's own minimum length)
        frames, wav = decode_for_detector(path, self.detector)
        return frames.numpy(), wav.numpy()

    def _detect(self, path: str, frames, wav) -> dict:
        from avsync.detect.run import detect_decoded

        detection, _ = detect_decoded(self.detector, path, torch.from_numpy(frames), torch.from_numpy(wav),
                                      max_crops=self.max_crops)
        return {"offset_sec": detection.offset_sec,
                "offset_frames": int(round(detection.offset_sec * self.detector.spec.fps)),
                "verdict": detection.verdict, "confidence": detection.confidence,
                "confidence_kind": detection.confidence_kind,
                "alternatives": [{"offset_sec": o, "score": s} for o, s in detection.alternatives]}

    def compute(self, path: str, decoded) -> dict:
        if not self.use_faces:
            return self._detect(path, *decoded)
        from avsync.score.reasons import failure

        tracks, failed = [], []
        for span, frames, wav in decoded:
            try:
                row = self._detect(path, frames, wav)
            except Exception as err:  # noqa: BLE001 - a still or too short track; the others are scored
                code, message = failure(err)
                failed.append({"face_track": span["track"], "track_start_sec": span["start_sec"],
                               "track_end_sec": span["end_sec"], "first_frame": span["first_frame"],
                               "end_frame": span["end_frame"], "offset_reason": code, "offset_error": message})
                if len(failed) == len(decoded):
                    raise
                continue
            speaking = None if self.threshold is None else bool(row["confidence"] >= self.threshold)
            tracks.append({"face_track": span["track"], "track_start_sec": span["start_sec"],
                           "track_end_sec": span["end_sec"], "first_frame": span["first_frame"],
                           "end_frame": span["end_frame"], **row, "speaking_score": row["confidence"],
                           "speaking": speaking, "asd_threshold": self.threshold})
        active = max(tracks, key=lambda t: t["speaking_score"])
        if self.per_track:  # the runner writes one row per entry, failed tracks with their reason
            keep = (*type(self).columns, *self.TRACK_COLUMNS, "offset_reason", "offset_error")
            rows = [{k: t[k] for k in keep if k in t} for t in tracks + failed]
            return {"_per_track": sorted(rows, key=lambda r: r["face_track"])}
        return {**{k: active[k] for k in type(self).columns}, "active_track": active["face_track"],
                "offset_tracks": sorted(tracks + failed, key=lambda t: t["face_track"])}


class DeSyncMetric:
    """av-benchmark's DeSync: mean |offset| of the first and the last 4.8 s of the first 8 s."""

    name = "desync"
    columns = ("desync_sec", "desync_first_offset_sec", "desync_last_offset_sec", "desync_first_probability",
               "desync_last_probability")
    values = ("desync_sec",)

    def __init__(self, module, duration_sec: float | None = None):
        from avsync.papers.synchformer.stage2 import SynchformerStage2Module
        from avsync.evaluation.desync import DURATION_SEC

        if not isinstance(module, SynchformerStage2Module):
            raise CheckpointError(f"DeSync needs a Synchformer (stage II); got {type(module).__name__}")
        self.module = module
        self.duration_sec = float(duration_sec or DURATION_SEC)

    def decode(self, path: str):
        from avsync.evaluation.desync import SAMPLE_RATE, decode_for_desync

        frames, wav = decode_for_desync(path, self.duration_sec, self.module.input_spec.frame_size)
        frames, wav = frames.numpy(), wav.numpy()
        _check_synchronisable(path, frames, wav, 25.0, SAMPLE_RATE)
        return frames, wav

    def compute(self, path: str, decoded) -> dict:
        from avsync.evaluation.desync import desync_of

        frames, wav = (torch.from_numpy(x) for x in decoded)
        return desync_of(self.module, frames, wav).as_row()


class LSEMetric:
    """syncnet_python's LSE-C / LSE-D, mean over the file's face tracks, and every track's own
    (:class:`avsync.score.lse.LSEScorer`)."""

    name = "lse"
    columns = ("lse_c", "lse_d", "lse_tracks")
    values = ("lse_c", "lse_d")

    def __init__(self, module, face_detector: str = "dlib", params=None):
        from avsync.papers.syncnet.module import SyncNetModule
        from avsync.score.lse import LSEScorer

        if not isinstance(module, SyncNetModule):
            raise CheckpointError(f"LSE needs SyncNet (e.g. --model lse=syncnet-v2); got {type(module).__name__}")
        # the face pipeline runs in the forked decoding workers: its detector stays on the CPU
        self.scorer = LSEScorer(module.net, face_detector_named(face_detector), params=params)

    def decode(self, path: str):
        return self.scorer.decode(path)

    def compute(self, path: str, decoded) -> dict:
        return self.scorer.compute(path, decoded)


METRICS = ("offset", "lse", "desync")


def build_metric(name: str, choice: ModelChoice, device: str, *, max_crops: int | None = 8,
                 desync_duration_sec: float | None = None, face_detector: str = "dlib", faces=None,
                 asd_threshold: float | None = None, per_track: bool = False):
    """The metric ``name`` with its model loaded (CheckpointError: a one-line reason). ``faces``
    (:class:`avsync.faces.model_input.FaceOptions`) for face-crop models of ``offset``; its detector
    name is ``face_detector``."""
    if name == "offset":
        import dataclasses

        from avsync.faces.model_input import FaceOptions

        faces = dataclasses.replace(faces or FaceOptions(), detector=face_detector)
        return OffsetMetric(load_choice(choice, device), max_crops=max_crops, faces=faces,
                            asd_threshold=asd_threshold, per_track=per_track)
    if name == "desync":
        module = load_choice(choice, device, default_converter="synchformer", default_model="synchformer-audioset")
        return DeSyncMetric(module, desync_duration_sec)
    if name == "lse":
        module = load_choice(choice, device, default_converter="syncnet", default_model="syncnet-v2")
        return LSEMetric(module, face_detector, params=faces.params if faces is not None else None)
    raise CheckpointError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")

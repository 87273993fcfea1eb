"""``--metrics lse``: LSE-C / LSE-D of every face track of a file, as syncnet_python's pipeline
computes them (the numbers talking-head papers report; Wav2Lip's ``scores_LSE`` scripts call
the same ``run_pipeline`` + ``run_syncnet``).

Per file: decode at 25 fps (native size) and 16 kHz mono; face tracks and their 0.4-scale 224 px
crops (:mod:`avsync.faces`, syncnet_python's tracking and cropping); per track, SyncNet's search
over the audio of the track's span (:func:`avsync.evaluation.lse.syncnet_lse`). The row's ``lse_c``
/ ``lse_d`` are the mean over the file's tracks (as those scripts average their per-track lines);
``lse_tracks`` lists every track (frames, seconds, offset, LSE-C, LSE-D). No track: ``no_face``.

The face pipeline runs in the decoding workers, so only the crops cross to the model's process.
"""
from __future__ import annotations

import numpy as np
import torch

from avsync.score.reasons import Unsynchronisable

__all__ = ["LSE_FPS", "LSE_SAMPLE_RATE", "LSEScorer"]

LSE_FPS, LSE_SAMPLE_RATE = 25.0, 16000  # syncnet_python converts every input to these


class LSEScorer:
    """Decode + face tracks (:meth:`decode`, in a worker), SyncNet's search per track (:meth:`compute`).

    ``net``: :class:`avsync.papers.syncnet.network.SyncNet` (e.g. ``SyncNetModule.net`` of converted
    official ``syncnet-v2`` weights); ``detector``: an :class:`avsync.faces.FaceDetector` (default:
    :func:`avsync.faces.default_detector`; :class:`avsync.faces.S3FD` for syncnet_python's own);
    ``params``: the tracker's limits (syncnet_python's defaults: tracks of 100+ frames, faces of
    100+ px, so small faces of low-resolution files give ``no_face`` as they do there)."""

    def __init__(self, net, detector=None, vshift: int = 15, params=None):
        from avsync.faces import TrackParams

        self.net, self.detector, self.vshift = net.eval(), detector, vshift
        self.params = params if params is not None else TrackParams()

    def decode(self, path: str):
        from avsync.faces import face_track_crops
        from avsync.media import probe, read_audio, read_frames
        from avsync.media.checks import is_silent

        info = probe(path)
        seconds = min(info.duration_sec, info.audio_duration_sec or info.duration_sec)
        count = int(np.floor(seconds * LSE_FPS + 1e-6))
        frames = read_frames(path, 0.0, count / LSE_FPS, LSE_FPS)
        wav = read_audio(path, 0.0, count / LSE_FPS, LSE_SAMPLE_RATE)
        if is_silent(wav):
            raise Unsynchronisable("silent_audio", "silent audio: nothing to synchronise")
        if count <= self.params.min_track:  # no track can be long enough (a still face is scored: LSE-C says so)
            raise Unsynchronisable("too_short", f"too short: {count} frames at 25 fps, a face track needs more "
                                                f"than {self.params.min_track}")
        found = face_track_crops(frames, LSE_FPS, self.detector, self.params)
        if found.reason:
            raise Unsynchronisable(found.reason, f"{found.reason.replace('_', ' ')}: no face track to score")
        per_track = []
        for t in found.tracks:
            first, last = int(t.track.frames[0]), int(t.track.frames[-1]) + 1
            span = wav[int(round(first / LSE_FPS * LSE_SAMPLE_RATE)):int(round(last / LSE_FPS * LSE_SAMPLE_RATE))]
            per_track.append((first, last, t.crops, span))
        return per_track

    def compute(self, path: str, decoded) -> dict:
        from avsync.evaluation.lse import syncnet_lse

        tracks = []
        for first, last, crops, span in decoded:
            try:
                result = syncnet_lse(self.net, torch.from_numpy(crops), torch.from_numpy(span), vshift=self.vshift)
            except ValueError as err:  # a track shorter than one window and its search
                tracks.append({"first_frame": first, "end_frame": last, "reason": "too_short", "error": str(err)})
                continue
            tracks.append({"first_frame": first, "end_frame": last, "start_sec": first / LSE_FPS,
                           "end_sec": last / LSE_FPS, "offset_frames": int(result.offset_frames),
                           "lse_c": float(result.lse_c), "lse_d": float(result.lse_d)})
        scored = [t for t in tracks if "lse_c" in t]
        if not scored:
            raise Unsynchronisable("too_short", "too short: no face track long enough for SyncNet's search")
        return {"lse_c": float(np.mean([t["lse_c"] for t in scored])),
                "lse_d": float(np.mean([t["lse_d"] for t in scored])), "lse_tracks": tracks}

"""``avsync detect --ckpt CKPT VIDEO [VIDEO ...]``: the offset of each file, in words.

For each file: "audio leads by 0.40 s" / "audio lags by 0.40 s" / "in sync" (SPEC §1 sign), a
confidence and the next three candidates. ``--plot``, ``--timeline`` and ``--write-corrected``
write a PNG of the score over the offsets, a sync-score timeline under a moving window (AVST
Fig. 7) and an audio-shifted corrected copy; with several videos the file stem is added to each
name. A file that cannot be read gets one line on stderr (file and reason) and the exit status
is 1; the other files are still processed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


from avsync.detect.decoding import decode_for_model
from avsync.detect.detectors import OffsetScores, detector_for
from avsync.detect.loading import CheckpointError, load_module
from avsync.detect.plots import moving_average, save, score_curve_figure, timeline_figure
from avsync.detect.result import Detection, detection_from_curve
from avsync.media import MediaError, shift_audio_copy
from avsync.protocols.score_search import ClipTooShortForSearch

__all__ = ["detect_file", "write_corrected", "timeline_series", "main"]


def detect_file(detector, path: str | Path, *, max_crops: int | None = 8) -> tuple[Detection, OffsetScores, tuple]:
    """(detection, the window scores behind it, the decoded (frames, wav)) of one file."""
    frames, wav = decode_for_model(path, detector.spec)
    scores = detector.scores(frames, wav, max_crops=max_crops)
    best, confidence = detector.file_prediction(scores)
    kind = "mean probability" if scores.kind == "probability" else "max - median score"
    detection = detection_from_curve(str(path), scores.offsets_sec, scores.file_curve(), best, confidence, kind)
    return detection, scores, (frames, wav)


def write_corrected(video: str | Path, out: str | Path, offset_sec: float) -> Path:
    """A copy whose audio is moved back by the detected offset (Δ > 0: the audio led, so it is
    delayed by Δ; :func:`~avsync.media.shift_audio_copy` with −Δ)."""
    return shift_audio_copy(video, out, -offset_sec)


def timeline_series(detector, decoded: tuple, scores: OffsetScores, window_sec: float | None = None,
                    hop_sec: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(window centres (N,), scores (N, O), window length) along the clip. Grid classifiers: one
    crop of the model's length every ``hop_sec`` (default 0.2 s); score search: the per-frame rows
    of ``scores`` averaged over ``window_sec`` (default 1 s) with a stride of one frame (AVST Fig. 7)."""
    if detector.kind == "probability":
        grid = detector.scores(*decoded, hop_sec=hop_sec or 0.2, max_crops=None)
        return grid.times_sec, grid.rows, detector.spec.duration_sec
    window_sec = window_sec or 1.0
    width = max(1, min(round(window_sec * detector.setup.fps), len(scores.rows)))
    times = moving_average(scores.times_sec[:, None], width)[:, 0]
    return times, moving_average(scores.rows, width), width / detector.setup.fps


def _output(template: str | None, video: str, several: bool) -> Path | None:
    if template is None:
        return None
    path = Path(template)
    return path.with_name(f"{path.stem}_{Path(video).stem}{path.suffix}") if several else path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avsync detect", description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", metavar="VIDEO")
    parser.add_argument("--ckpt", required=True, help="a checkpoint of any of the suite's LightningModules")
    parser.add_argument("--plot", help="PNG of the score over the candidate offsets")
    parser.add_argument("--timeline", help="PNG of the sync score along the clip (moving window)")
    parser.add_argument("--timeline-window", type=float, default=None,
                        help="seconds averaged per timeline point (score-search models; default 1)")
    parser.add_argument("--timeline-hop", type=float, default=None,
                        help="seconds between crops on the timeline (grid classifiers; default 0.2)")
    parser.add_argument("--write-corrected", help="mp4 with the audio shifted by minus the detected offset")
    parser.add_argument("--max-crops", type=int, default=8, help="crops averaged per file (grid classifiers)")
    parser.add_argument("--json", help="write the detections as JSON")
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        detector = detector_for(load_module(args.ckpt, args.device))
    except (CheckpointError, TypeError) as err:  # unreadable, unknown model, or one that predicts no offset
        print(f"avsync detect: {args.ckpt}: {' '.join(str(err).split())}" if isinstance(err, TypeError)
              else f"avsync detect: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    several, failed, results = len(args.videos) > 1, 0, []
    for video in args.videos:
        try:
            detection, scores, decoded = detect_file(detector, video, max_crops=args.max_crops)
            print(detection.line(), flush=True)
            record = detection.as_dict()
            if args.plot:
                record["plot"] = str(save(score_curve_figure(scores, detection), _output(args.plot, video, several)))
            if args.timeline:
                series = timeline_series(detector, decoded, scores, args.timeline_window, args.timeline_hop)
                figure = timeline_figure(*series[:2], scores, detection, series[2])
                record["timeline"] = str(save(figure, _output(args.timeline, video, several)))
            if args.write_corrected:
                record["corrected"] = str(write_corrected(video, _output(args.write_corrected, video, several),
                                                          detection.offset_sec))
            results.append(record)
        except (MediaError, ClipTooShortForSearch, OSError) as err:
            failed += 1
            reason = err.reason if isinstance(err, MediaError) else str(err)
            print(f"avsync detect: {video}: {' '.join(reason.split())}", file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 1 if failed else 0



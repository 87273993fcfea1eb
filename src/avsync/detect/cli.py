"""``avsync detect --ckpt CKPT | --model NAME | --weights PATH VIDEO [VIDEO ...]``: the offset of each file, in words.

For each file: "audio leads by 0.40 s" / "audio lags by 0.40 s" / "in sync" (docs/conventions.md sign), a
confidence and the next three candidates. ``--plot``, ``--timeline`` and ``--write-corrected``
write a PNG of the score over the offsets, a sync-score timeline under a moving window (AVST
Fig. 7, :mod:`~avsync.detect.timeline`; its numbers in a CSV beside the PNG and in ``--json``)
and an audio-shifted corrected copy; with several videos the file stem is added to each
name. A file that cannot be read, or holds nothing to synchronise (silent audio, a still
picture, too short for the model: :func:`~avsync.media.unsynchronisable_reason`), gets one line
on stderr (file and reason) instead of an offset, and the exit status is 1; the other files are
still processed. ``--json`` lists every input in order: ``"status": "ok"`` with the detection,
or ``"status": "failed"`` with a reason code (``too_short``, ``silent_audio``, ``still_video``,
``unreadable``, ...) and the message.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from avsync.detect.detectors import detector_for
from avsync.detect.face_tracks import face_file_record, wants_faces
from avsync.faces.options import add_face_arguments, face_options
from avsync.detect.loading import CheckpointError, load_module
from avsync.detect.plots import save, score_curve_figure, timeline_figure
from avsync.detect.run import LONG_FILE_SEC, detect_decoded, detect_file, write_corrected
from avsync.detect.timeline import DEFAULT_HOP_SEC, timeline
from avsync.media import MediaError
from avsync.evaluation.score_search import ClipTooShortForSearch

__all__ = ["detect_file", "detect_decoded", "write_corrected", "main"]


def _output(template: str | None, video: str, several: bool) -> Path | None:
    if template is None:
        return None
    path = Path(template)
    return path.with_name(f"{path.stem}_{Path(video).stem}{path.suffix}") if several else path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avsync detect", description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", metavar="VIDEO")
    parser.add_argument("--ckpt", help="a checkpoint of any of the suite's LightningModules")
    parser.add_argument("--model", metavar="NAME", help="the authors' published weights by name (`avsync weights "
                        "list`), downloaded, checked and converted on first use, then cached")
    parser.add_argument("--weights", metavar="PATH", help="an authors'-format checkpoint file (offline), converted "
                        "on the fly; with --model NAME its converter is used and a published checksum checked")
    parser.add_argument("--plot", help="PNG of the score over the candidate offsets")
    parser.add_argument("--timeline", help="PNG of the score over the offsets along the clip under a moving "
                        "window (AVST Fig. 7); the numbers go to a CSV of the same name and to --json")
    parser.add_argument("--timeline-window", type=float, default=None,
                        help="window length in seconds (default: the model's input; score-search models only, "
                             "grid classifiers always take their input length)")
    parser.add_argument("--timeline-hop", type=float, default=DEFAULT_HOP_SEC,
                        help=f"seconds between timeline windows (default {DEFAULT_HOP_SEC:g}); window k starts at "
                             "the frame nearest k x hop, so 0.5 s at 25 fps alternates 12 and 13 frames")
    parser.add_argument("--write-corrected", help="mp4 with the audio shifted by minus the detected offset")
    parser.add_argument("--max-crops", type=int, default=8, help="crops averaged per file (grid classifiers)")
    parser.add_argument("--json", help="write the detections as JSON")
    parser.add_argument("--device", default="cpu")
    add_face_arguments(parser)
    return parser


def _load(args):
    """The module of --ckpt, or of the authors' weights named by --model / given by --weights."""
    if args.ckpt is not None:
        return load_module(args.ckpt, args.device)
    from avsync.weights import DownloadError, WeightsError, load_authors_file, load_official

    try:
        if args.weights is not None:
            return load_authors_file(args.weights, args.model, args.device)
        return load_official(args.model, args.device)
    except (DownloadError, WeightsError, KeyError, ValueError) as err:  # KeyError: unknown name
        raise CheckpointError(err.args[0] if isinstance(err, KeyError) else str(err)) from err


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.timeline_hop <= 0 or (args.timeline_window is not None and args.timeline_window <= 0):
        print("avsync detect: --timeline-hop and --timeline-window must be positive", file=sys.stderr)
        return 2
    if (args.ckpt is None) == (args.model is None and args.weights is None):
        print("avsync detect: give one of --ckpt CKPT, --model NAME, --weights PATH", file=sys.stderr)
        return 2
    try:
        detector = detector_for(_load(args))
    except (CheckpointError, TypeError) as err:  # unreadable, unknown model, or one that predicts no offset
        source = args.ckpt or args.weights or args.model
        print(f"avsync detect: {source}: {' '.join(str(err).split())}" if isinstance(err, TypeError)
              else f"avsync detect: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    if args.timeline and args.timeline_window is not None and detector.kind == "probability":
        print(f"avsync detect: --timeline-window: {type(detector.module).__name__} scores crops of its input "
              f"length ({detector.spec.duration_sec:g} s); leave the window out", file=sys.stderr)
        return 2
    several, failed, results = len(args.videos) > 1, 0, []
    faces = face_options(args)
    for video in args.videos:
        try:
            if wants_faces(detector, faces):  # a face-crop model: one detection per face track
                results.append(face_file_record(
                    detector, video, faces, threshold=args.asd_threshold, max_crops=args.max_crops,
                    plot=_output(args.plot, video, several), timeline_png=_output(args.timeline, video, several),
                    timeline_window=args.timeline_window, timeline_hop=args.timeline_hop,
                    corrected=_output(args.write_corrected, video, several), echo=lambda s: print(s, flush=True)))
                continue
            detection, scores, decoded = detect_file(detector, video, max_crops=args.max_crops, progress=True)
            print(detection.line(), flush=True)
            record = {"status": "ok", **detection.as_dict()}
            if args.plot:
                record["plot"] = str(save(score_curve_figure(scores, detection), _output(args.plot, video, several)))
            if args.timeline:
                line = timeline(detector, decoded, scores, args.timeline_window, args.timeline_hop,
                                progress=len(decoded[0]) > LONG_FILE_SEC * detector.spec.fps)
                png = save(timeline_figure(line, detection), _output(args.timeline, video, several))
                record["timeline"] = str(png)
                record["timeline_data"] = {"csv": str(line.write_csv(png.with_suffix(".csv"))), **line.as_dict()}
            if args.write_corrected:
                record["corrected"] = str(write_corrected(video, _output(args.write_corrected, video, several),
                                                          detection.offset_sec))
            results.append(record)
        except (MediaError, ClipTooShortForSearch, OSError) as err:
            failed += 1
            reason = err.reason if isinstance(err, MediaError) else str(err)
            code = (err.code if isinstance(err, MediaError) else
                    "too_short" if isinstance(err, ClipTooShortForSearch) else "unreadable")
            print(f"avsync detect: {video}: {' '.join(reason.split())}", file=sys.stderr, flush=True)
            results.append({"path": str(video), "status": "failed", "reason": code,
                            "message": " ".join(reason.split())})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 1 if failed else 0



"""``avsync score PATH... --metrics offset,desync --ckpt offset=model.ckpt --out results.csv``

Scores every video of the files, folders (searched recursively for .mp4 .mov .mkv .webm .avi .ts
.mts .m2ts) and list files (@list.txt, one path a line) given, one CSV row per file, failures
included with a reason code. The run is resumable: rerun the same command after an interruption
and the files already in the CSV are skipped.
"""
from __future__ import annotations

import argparse
import sys

from avsync.detect.loading import CheckpointError
from avsync.faces.options import add_face_arguments, face_options
from avsync.score.metrics import METRICS, ModelChoice
from avsync.score.runner import run_score

__all__ = ["main"]

_EPILOG = """\
Models, per metric: --ckpt/--weights/--model take VALUE (every metric that can use it) or
METRIC=VALUE (one metric), and repeat:
  --ckpt offset=fit.ckpt                a checkpoint of this suite (avsync fit, avsync convert)
  --weights desync=synchformer.pt       an official weight file, converted on the fly
  --weights offset=sparsesync:ss.pt     MODEL:PATH when the metric takes several models
  --model desync=synchformer-audioset   official weights by name (the default for desync)
  --model lse=syncnet-v2                 (the default for lse)

Columns: path, status (ok / partial / failed), reason and error (the first failure), then each
metric's values and its own <metric>_reason / <metric>_error. Reason codes: missing, unreadable,
no_video, no_audio, too_short, silent_audio, still_video, no_face, frame_too_small,
decoder_crashed, timeout, error. Offsets: + = audio leads (sign also in words, column verdict).
DeSync: av-benchmark's mean |offset| over the first and last 4.8 s of the first 8 s (seconds).
LSE: syncnet_python's LSE-C / LSE-D, mean over the file's face tracks; lse_tracks lists each track.
Face-crop models (SyncNet, VocaLiST, DiVAS face) in --metrics offset get each face track (--faces off:
the centre crop): the row holds the active track's offset (the face whose lips sync best), and
offset_tracks every track; --per-track writes one row per track with its active-speaker score.
The summary (count, failures by reason, mean, median, std) is printed and written beside --out as
NAME.summary.json.
"""


def _per_metric(values: list[str] | None, metrics: list[str]) -> dict[str, str]:
    """``METRIC=VALUE`` for one metric; a bare ``VALUE`` for every metric not named explicitly."""
    explicit, bare = {}, None
    for value in values or []:
        name, sep, rest = value.partition("=")
        if sep and name in METRICS:
            explicit[name] = rest
        else:
            bare = value
    return {m: explicit.get(m, bare) for m in metrics if explicit.get(m, bare) is not None}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avsync score", description=__doc__.split("\n\n")[1],
                                     epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, folders, or @list.txt")
    parser.add_argument("--metrics", default="offset", help=f"comma-separated subset of {','.join(METRICS)} "
                        "(default offset)")
    parser.add_argument("--ckpt", action="append", metavar="[METRIC=]CKPT", help="a checkpoint of this suite")
    parser.add_argument("--weights", action="append", metavar="[METRIC=][MODEL:]PATH", help="an official weight file")
    parser.add_argument("--model", action="append", metavar="[METRIC=]NAME", help="official weights by name")
    parser.add_argument("--out", default="results.csv", help="CSV of the rows, appended as files finish "
                        "(default results.csv); rerunning skips the files already in it")
    parser.add_argument("--json", help="also write the rows as JSON (at the end)")
    parser.add_argument("--retry-failed", action="store_true", help="score again the files whose row failed")
    parser.add_argument("--workers", type=int, default=1, help="processes decoding ahead of the model (default 1; "
                        "0 decodes in the main process)")
    parser.add_argument("--decode-timeout", type=float, default=600.0,
                        help="seconds one file may take to decode before its row says timeout (default 600)")
    parser.add_argument("--device", default="auto", help="auto (the GPU when present), cpu, cuda, cuda:1 ...")
    parser.add_argument("--max-crops", type=int, default=8, help="crops averaged per file by grid classifiers "
                        "(as avsync detect)")
    parser.add_argument("--desync-duration", type=float, default=None,
                        help="seconds of each clip DeSync reads (default 8, av-benchmark's)")
    parser.add_argument("--face-detector", default="dlib", choices=("dlib", "s3fd"),
                        help="face tracks (--metrics lse, and offset with face-crop models): dlib (HOG, default; its model ships in dlib-bin) or "
                        "s3fd (syncnet_python's, official weights fetched by name)")
    parser.add_argument("--per-track", action="store_true", help="face-crop models (--metrics offset): one row "
                        "per face track (face_track, track_start_sec, track_end_sec, offset, confidence, "
                        "speaking_score, speaking) instead of the active track's row per file")
    add_face_arguments(parser, with_detector=False)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        print(f"avsync score: --metrics: unknown {','.join(bad) or '(none)'}; choose from {','.join(METRICS)}",
              file=sys.stderr)
        return 2
    options = {k: _per_metric(getattr(args, k), metrics) for k in ("ckpt", "weights", "model")}
    choices = {m: ModelChoice(**{k: options[k].get(m) for k in options}) for m in metrics}
    try:
        run_score(args.paths, metrics, choices=choices, out=args.out, json_out=args.json, workers=args.workers,
                  device=args.device, max_crops=args.max_crops, desync_duration_sec=args.desync_duration,
                  face_detector=args.face_detector, faces=face_options(args), asd_threshold=args.asd_threshold,
                  per_track=args.per_track,
                  decode_timeout_s=args.decode_timeout, retry_failed=args.retry_failed,
                  progress=not args.no_progress, echo=print)
    except (CheckpointError, ValueError, FileNotFoundError) as err:
        print(f"avsync score: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0

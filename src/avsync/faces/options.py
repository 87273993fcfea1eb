"""The face-track options shared by ``avsync detect``, ``avsync score`` and ``avsync title-report``."""
from __future__ import annotations

import argparse

from avsync.faces.model_input import FaceOptions
from avsync.faces.tracks import TrackParams

__all__ = ["add_face_arguments", "face_options"]

_DEFAULTS = TrackParams()


def add_face_arguments(parser: argparse.ArgumentParser, with_detector: bool = True) -> None:
    """``--faces``, ``--face-detector``, ``--min-face-size``, ``--min-track``, ``--asd-threshold``."""
    group = parser.add_argument_group("face tracks (models that take face crops: SyncNet, VocaLiST, DiVAS face)")
    group.add_argument("--faces", choices=("auto", "off"), default="auto",
                       help="auto (default): face-crop models get each face track (detection, tracking, crop "
                       "scale 0.4, as syncnet_python), one result per track; off: the centre crop of the "
                       "frame, for files that are face crops already")
    if with_detector:
        group.add_argument("--face-detector", default="dlib", choices=("dlib", "s3fd"),
                           help="dlib (HOG, default; its model ships in dlib-bin) or s3fd (syncnet_python's, "
                           "official weights fetched by name)")
    group.add_argument("--min-face-size", type=float, default=_DEFAULTS.min_face_size,
                       help=f"mean face side (px) a track needs (default {_DEFAULTS.min_face_size:g}, "
                       "syncnet_python's; lower it for small faces)")
    group.add_argument("--min-track", type=int, default=_DEFAULTS.min_track,
                       help=f"a track needs more detections than this many frames at 25 fps (default "
                       f"{_DEFAULTS.min_track}, syncnet_python's; shorter shots are skipped)")
    group.add_argument("--asd-threshold", type=float, default=None,
                       help="active-speaker threshold on a track's sync confidence (default: the one "
                       "calibrated into the model, else no speaking flag, only the score)")


def face_options(args: argparse.Namespace) -> FaceOptions:
    params = TrackParams(min_track=args.min_track, min_face_size=args.min_face_size)
    return FaceOptions(args.faces != "off", getattr(args, "face_detector", "dlib"), params)

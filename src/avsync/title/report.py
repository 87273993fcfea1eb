"""``avsync title-report VIDEO``: clip predictions over a whole title, the verdict, JSON and timeline.

The video is read at its own frame rate (DiVAS consumes media as it is), cut into clips of
``clip_sec`` every ``hop_sec``; each clip goes through the score search
(:mod:`avsync.evaluation.score_search`, all windows averaged: one offset and one confidence per
clip), and :mod:`avsync.title.timeline` turns the series into the verdict. Any
:class:`~avsync.evaluation.score_search.PairScorer` works; the command line loads a DiVAS checkpoint.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from avsync.media import probe, read_audio, read_frames
from avsync.evaluation.score_search import ClipTooShortForSearch, PairScorer, predict_offsets, shift_scores
from avsync.title.timeline import TitleThresholds, classify_title

__all__ = ["ClipPrediction", "clip_starts", "predict_title_clips", "title_report", "timeline_figure", "main"]


@dataclass
class ClipPrediction:
    start_sec: float
    center_sec: float
    offset_frames: int
    offset_ms: float
    confidence: float
    face_track: int | None = None  # face-crop models: the clip's most confident track (its speaker)
    tracks: list[dict] | None = None  # face-crop models: every track of the clip


def _face_prediction(scorer, frames: np.ndarray, wav: torch.Tensor, start: float, faces, face_detector, *,
                     fps: float, sample_rate: int, frame_size: int, crop: str, **search):
    """The clip's face tracks, each searched against the audio under it; the most confident one
    answers for the clip (the face whose lips sync: the suite's active-speaker rule). None: no face."""
    import dataclasses

    from avsync.faces.model_input import face_clips
    from avsync.inputs import InputSpec

    spec = InputSpec(fps=fps, frame_size=frame_size, crop=crop, sample_rate=sample_rate)
    # a clip is short: a track may span it (more detections than its frames at 25 fps less one)
    limit = max(1, min(faces.params.min_track, int(round(len(frames) * 25.0 / fps)) - 1))
    options = dataclasses.replace(faces, params=dataclasses.replace(faces.params, min_track=limit))
    tracks = []
    for clip in face_clips(frames, wav, spec, options, face_detector):
        try:
            scores = shift_scores(scorer, clip.frames, clip.wav, fps=fps, sample_rate=sample_rate, **search)
        except ClipTooShortForSearch:
            continue
        pred, confidence = predict_offsets(scores, context=len(scores))
        tracks.append({**clip.span(), "start_sec": start + clip.start_sec, "end_sec": start + clip.end_sec,
                       "offset_frames": int(pred[0]), "confidence": float(confidence[0])})
    if not tracks:
        return None
    best = max(tracks, key=lambda t: t["confidence"])
    return ClipPrediction(start, start + len(frames) / fps / 2, best["offset_frames"],
                          1000.0 * best["offset_frames"] / fps, best["confidence"], best["track"], tracks)


def clip_starts(duration_sec: float, clip_sec: float, hop_sec: float) -> list[float]:
    """Starts of the clips that fit in the title, every ``hop_sec``."""
    if clip_sec <= 0 or hop_sec <= 0:
        raise ValueError(f"clip_sec and hop_sec must be > 0, got {clip_sec} and {hop_sec}")
    n = int(math.floor((duration_sec - clip_sec) / hop_sec + 1e-9)) + 1
    return [round(i * hop_sec, 6) for i in range(max(n, 0))]


def _square(frames: np.ndarray, size: int) -> np.ndarray:
    """Keep the height, cut the sides (DiVAS §5.1), after a short-side resize to ``size``."""
    h, w = frames.shape[1:3]
    y0, x0 = (h - size) // 2, (w - size) // 2
    return frames[:, y0:y0 + size, x0:x0 + size]


def predict_title_clips(path: str | Path, scorer: PairScorer, *, frame_size: int, sample_rate: int = 16000,
                        window_sec: float = 0.2, clip_sec: float = 3.0, hop_sec: float = 3.0,
                        max_shift: int = 15, fps: float | None = None, batch_windows: int = 64,
                        progress: bool = False, faces=None, crop: str = "face"
                        ) -> tuple[float, float, list[ClipPrediction]]:
    """(fps, duration, per-clip predictions) of a title, read at its native rate unless ``fps``.

    ``faces`` (:class:`avsync.faces.model_input.FaceOptions`, for face-crop models): each clip's
    face tracks instead of the centre square (``crop`` "face" or "mouth" says how the model takes
    them); a clip without a face track is left out of the series."""
    info = probe(path)
    fps = float(fps or info.video_fps)
    window_frames = max(1, int(round(window_sec * fps)))
    audio = torch.from_numpy(read_audio(path, 0.0, None, sample_rate))
    duration = min(info.duration_sec, len(audio) / sample_rate)
    clip_samples = int(round(clip_sec * sample_rate))
    predictions = []
    starts = clip_starts(duration, clip_sec, hop_sec)
    face_detector = faces.face_detector() if faces is not None else None
    for k, start in enumerate(starts):
        s0 = int(round(start * sample_rate))
        wav = audio[s0:s0 + clip_samples]
        if faces is not None:
            found = _face_prediction(scorer, read_frames(path, start, clip_sec, fps, None), wav, start, faces,
                                     face_detector, fps=fps, sample_rate=sample_rate, frame_size=frame_size,
                                     crop=crop, window_frames=window_frames, max_shift=max_shift,
                                     batch_windows=batch_windows)
            if found is not None:
                predictions.append(found)
            if progress:
                print(f"clip {k + 1}/{len(starts)} at {start:.1f} s: " + (
                    "no face" if found is None else f"face {found.face_track}: {found.offset_ms:+.0f} ms "
                    f"(confidence {found.confidence:.3f})"), flush=True)
            continue
        frames = torch.from_numpy(_square(read_frames(path, start, clip_sec, fps, frame_size), frame_size))
        scores = shift_scores(scorer, frames, wav, fps=fps, sample_rate=sample_rate, window_frames=window_frames,
                              max_shift=max_shift, batch_windows=batch_windows)
        pred, confidence = predict_offsets(scores, context=len(scores))
        offset = int(pred[0])
        predictions.append(ClipPrediction(start, start + clip_sec / 2, offset, 1000.0 * offset / fps,
                                          float(confidence[0])))
        if progress:
            print(f"clip {k + 1}/{len(starts)} at {start:.1f} s: {1000.0 * offset / fps:+.0f} ms "
                  f"(confidence {float(confidence[0]):.3f})", flush=True)
    return fps, duration, predictions


def title_report(path: str | Path, scorer: PairScorer, out_dir: str | Path, *,
                 thresholds: TitleThresholds | None = None, **clip_kwargs) -> dict:
    """Predict, classify, and write ``<stem>_sync.json`` and ``<stem>_timeline.png`` to ``out_dir``."""
    fps, duration, clips = predict_title_clips(path, scorer, **clip_kwargs)
    thresholds = thresholds or TitleThresholds.for_fps(fps)
    verdict = classify_title([c.center_sec for c in clips], [c.offset_ms for c in clips],
                             [c.confidence for c in clips], thresholds)
    report = {
        "video": str(path), "fps": fps, "duration_sec": duration,
        "verdict": verdict.kind, "confidence": verdict.agreement,
        **{k: v for k, v in verdict.as_dict().items() if k not in ("kind", "agreement", "kept", "inlier")},
        "thresholds": asdict(thresholds),
        "clips": [{**asdict(c), "kept": bool(k), "inlier": bool(i)}
                  for c, k, i in zip(clips, verdict.kept, verdict.inlier)],
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    report["json"] = str(out / f"{stem}_sync.json")
    report["plot"] = str(out / f"{stem}_timeline.png")
    Path(report["json"]).write_text(json.dumps(report, indent=2))
    fig = timeline_figure(report)
    fig.savefig(report["plot"], dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return report


def timeline_figure(report: dict):
    """Offset (ms) against title time; marker size = confidence; the fitted line over the kept clips."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clips = report["clips"]
    t = np.array([c["center_sec"] for c in clips]) / 60.0
    y = np.array([c["offset_ms"] for c in clips])
    conf = np.array([c["confidence"] for c in clips])
    size = 20 + 180 * conf / max(float(conf.max()), 1e-9) if len(conf) else conf
    groups = (("inlier", "tab:blue"), ("outlier", "tab:red"), ("dropped (low confidence)", "lightgrey"))
    masks = (np.array([c["inlier"] for c in clips], bool),
             np.array([c["kept"] and not c["inlier"] for c in clips], bool),
             np.array([not c["kept"] for c in clips], bool))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for (label, colour), mask in zip(groups, masks):
        if mask.any():
            ax.scatter(t[mask], y[mask], s=size[mask], c=colour, label=label, alpha=0.8, edgecolors="none")
    if report.get("start_offset_ms") is not None and masks[0].any():
        kept_t = t[np.array([c["kept"] for c in clips], bool)]
        ax.plot([kept_t.min(), kept_t.max()], [report["start_offset_ms"], report["end_offset_ms"]], "k--", lw=1)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("title time (min)")
    ax.set_ylabel("offset (ms, + = audio leads)")
    ax.set_title(f"{Path(report['video']).name}: {report['verdict']} (agreement {report['confidence']:.0%})")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="avsync title-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("video")
    parser.add_argument("--ckpt", required=True, help="DiVAS checkpoint (required): any Lightning .ckpt of "
                        "DiVASModule, e.g. the last.ckpt that avsync fit writes")
    parser.add_argument("--out", default=None, help="output folder (default: beside the video)")
    parser.add_argument("--clip-sec", type=float, default=3.0)
    parser.add_argument("--hop-sec", type=float, default=None, help="default: clip length (contiguous clips)")
    parser.add_argument("--min-confidence", type=float, default=None,
                        help="absolute confidence threshold (default: half the title's median confidence)")
    parser.add_argument("--device", default="cpu")
    from avsync.faces.options import add_face_arguments, face_options

    add_face_arguments(parser)
    args = parser.parse_args(argv)

    from avsync.detect.loading import CheckpointError, load_module
    from avsync.papers.divas.module import DiVASModule

    try:  # any checkpoint avsync fit writes (LightningCLI's _class_path, callbacks) or a plain one
        module = load_module(args.ckpt, args.device)
    except CheckpointError as err:
        print(f"avsync title-report: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    if not isinstance(module, DiVASModule):
        print(f"avsync title-report: {args.ckpt} holds a {type(module).__name__}; the title report needs a "
              "DiVAS checkpoint (DiVASModule)", file=sys.stderr)
        return 2
    fps = probe(args.video).video_fps
    spec = module.input_spec
    overrides = {} if args.min_confidence is None else {"min_confidence": args.min_confidence}
    from avsync.faces.model_input import uses_faces

    faces = face_options(args) if uses_faces(spec) and args.faces != "off" else None
    with torch.inference_mode():
        report = title_report(
            args.video, module.scorer(fps, spec.sample_rate), args.out or Path(args.video).parent,
            thresholds=TitleThresholds.for_fps(fps, **overrides), frame_size=spec.frame_size,
            sample_rate=spec.sample_rate, clip_sec=args.clip_sec, hop_sec=args.hop_sec or args.clip_sec,
            max_shift=module.max_shift, batch_windows=module.eval_batch_windows, progress=True, faces=faces,
            crop=spec.crop)
    print(f"{report['verdict']} (agreement {report['confidence']:.0%}); report {report['json']}, "
          f"timeline {report['plot']}")
    return 0

#!/usr/bin/env python
"""Goldens of syncnet_python's whole LSE pipeline (``run_pipeline.py`` + ``run_syncnet.py``), run
with the authors' scripts, for ``tests/integration/test_parity_lse_pipeline.py``.

    pip install --no-deps --target /tmp/sd051 scenedetect==0.5.1     # the version syncnet_python pins
    PYTHONPATH=/tmp/sd051 /work/venvs/ref/bin/python tests/parity/make_goldens_lse_pipeline.py \\
        --authors-repo /work/ref/syncnet_python

Needs ``ffmpeg`` on PATH (the authors' scripts shell out to it), OpenCV, SciPy,
python_speech_features, PySceneDetect 0.5.1, dlib and PyAV. Not run by the tests.

The two scripts run unchanged (``runpy``), per clip, with these replacements made from outside:

* their S3FD (``detectors.S3FD``) is a stand-in whose ``detect_faces(image)`` returns avsync's
  default detector's boxes for that very image (dlib HOG, upsample 1, loaded from this checkout
  by file path) — the official S3FD weights cannot be downloaded here, and this way both
  pipelines get the same detector on the frames each of them decodes;
* SyncNet's weights: avsync's deterministic synthetic state dict in the official layout
  (``tests/goldens/syncnet/syncnet_layout.json``), loaded by their ``loadParameters``;
* ``.cuda()`` is a no-op (no GPU); ``pdb.set_trace`` (their reaction to a failed ffmpeg call)
  raises; PySceneDetect 0.5.1's ``cv2.split`` result is made a list (today's OpenCV returns a
  tuple, which 0.5.1 assigns into).

Variants (``--variants``):

* ``published`` — nothing else changed: ffmpeg re-encodes the input to MPEG-4 (``-qscale:v 2``),
  frames go through JPEG, crops through an XVID AVI and JPEG again;
* ``lossless`` — the same steps with lossless intermediates: ``-c:v ffv1 -c:a pcm_s16le`` for their
  25 fps AVI (published: MPEG-4 and MP3), ``-c:v png`` for their frame files (OpenCV reads them by
  content), FFV1 instead of XVID for the crop videos. What is left is ffmpeg's ``-r 25 -async 1``
  conversion and decoding vs avsync's (PyAV, frames by presentation time), and the pipeline;
* ``same_frames`` — as ``lossless``, and the frame files and the 16 kHz wav their pipeline reads
  are avsync's own decoding of the clip (``avsync.media.read_frames`` at 25 fps,
  ``read_audio`` at 16 kHz rounded to int16). What is left is the pipeline alone: scene cuts,
  tracking, smoothing, cropping, audio cut, MFCC, SyncNet search.

Per clip and variant, per track: its frames, boxes (interpolated), smoothed centre/size, the
crops' SHA-256 and per-frame means (read back from their crop video: exact in the lossless
variants), offset, LSE-C (median − min of the mean distances) and LSE-D (min). Written to
``tests/goldens/lse_pipeline/lse_pipeline.json``.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import pickle
import runpy
import shlex
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from synthetic_by_path import load_synthetic_weights  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures" / "real"
CLIPS = {  # name -> (fixture path, tracker limits as run_pipeline.py options)
    "lrs3_face_crop": ("lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4",
                       {"min_track": 100, "min_face_size": 100}),
    "lrs3_full_frame": ("lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4",
                        {"min_track": 100, "min_face_size": 20}),  # its faces are 32-66 px
    "vggsound_ZYc410CE4Rg": ("vggsound/h264_video_25fps_256side_16000hz_aac/ZYc410CE4Rg_0_10000.mp4",
                             {"min_track": 100, "min_face_size": 20}),
    "vggsound_3qesirWAGt4": ("vggsound/h264_video_25fps_256side_16000hz_aac/3qesirWAGt4_20000_30000.mp4",
                             {"min_track": 100, "min_face_size": 20}),
}
LAYOUT = ROOT / "tests" / "goldens" / "syncnet" / "syncnet_layout.json"
OUT = ROOT / "tests" / "goldens" / "lse_pipeline" / "lse_pipeline.json"
VARIANTS = ("published", "lossless", "same_frames")


def compact_json(data) -> str:
    """JSON with each list of numbers (boxes, means, curves) on one line: short to read and to diff."""
    import re

    text = json.dumps(data, indent=1)
    return re.sub(r"\[[-0-9.,eE\s\[\]]*\]", lambda m: re.sub(r"\s+", "", m.group(0)), text) + "\n"


def crops_digest(frames: np.ndarray) -> dict:
    """How the goldens identify a track's crops: SHA-256 of the (N, 224, 224, 3) uint8 BGR array and
    the mean of each frame."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    return {"sha256": hashlib.sha256(frames.tobytes()).hexdigest(),
            "frame_means": [round(float(m), 6) for m in frames.reshape(len(frames), -1).mean(1)]}


def stand_in_detectors(avsync_detector) -> types.ModuleType:
    """A ``detectors`` module whose S3FD gives avsync's boxes for the image it is given."""

    class S3FD:
        def __init__(self, device="cuda"):
            pass

        def detect_faces(self, image, conf_th=0.8, scales=(1,)):
            return np.asarray(avsync_detector(image), dtype=np.float64).reshape(-1, 5)

    return types.SimpleNamespace(S3FD=S3FD)


_ORIGINAL: dict = {}


def patch_environment(variant: str, avsync_frames, avsync_wav16):
    """ffmpeg / OpenCV / pdb / cuda / PySceneDetect replacements of the variant (see the docstring)."""
    import pdb

    import cv2
    import scenedetect.detectors.content_detector as content

    _ORIGINAL.setdefault("call", subprocess.call)
    _ORIGINAL.setdefault("fourcc", cv2.VideoWriter_fourcc)
    _ORIGINAL.setdefault("split", cv2.split)

    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.cuda = lambda self, *a, **k: self

    def no_debugger(*_a, **_k):
        raise RuntimeError("an ffmpeg call of the authors' scripts failed")

    pdb.set_trace = no_debugger
    split = _ORIGINAL["split"]
    content.cv2 = types.SimpleNamespace(split=lambda im: list(split(im)), cvtColor=cv2.cvtColor,
                                        COLOR_BGR2HSV=cv2.COLOR_BGR2HSV)
    fourcc = _ORIGINAL["fourcc"]
    cv2.VideoWriter_fourcc = fourcc if variant == "published" else (
        lambda *code: fourcc(*("FFV1" if "".join(code) == "XVID" else "".join(code))))
    original_call = _ORIGINAL["call"]

    def call(command, *args, **kwargs):
        if variant != "published":
            command = command.replace("-qscale:v 2 -async 1 -r 25", "-qscale:v 2 -async 1 -r 25 -c:v ffv1 -c:a pcm_s16le")
            command = command.replace("-f image2", "-f image2 -c:v png")
        if variant == "same_frames" and "pyframes" in command:  # run_pipeline's frame files: avsync's
            out = Path(shlex.split(command)[-1]).parent
            for i, frame in enumerate(avsync_frames):
                cv2.imwrite(str(out / f"{i + 1:06d}.jpg"), np.ascontiguousarray(frame[..., ::-1]))
            return 0
        status = original_call(command, *args, **kwargs)
        if variant == "same_frames" and "pyavi" in command and command.rstrip().endswith("audio.wav") \
                and "-ar 16000" in command:  # run_pipeline's 16 kHz wav: avsync's
            from scipy.io import wavfile

            wavfile.write(shlex.split(command)[-1], 16000, avsync_wav16)
        return status

    subprocess.call = call


def write_png_frames_as_jpg_names():
    """cv2.imwrite picks the format from the extension; the frame files must be PNG under .jpg names."""
    import cv2

    imwrite = cv2.imwrite

    def write(path, image, params=()):
        if str(path).endswith(".jpg"):
            ok, data = cv2.imencode(".png", image)
            Path(path).write_bytes(data.tobytes())
            return ok
        return imwrite(path, image, params)

    cv2.imwrite = write


def read_video_bgr(path: Path) -> np.ndarray:
    import cv2

    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames)


def run_clip(authors: Path, clip: Path, limits: dict, weights: Path, work: Path) -> dict:
    """run_pipeline.py then run_syncnet.py on ``clip``; what they found and computed, per track."""
    argv = sys.argv
    results = []
    sys.path.insert(0, str(authors))
    try:
        sys.argv = ["run_pipeline.py", "--videofile", str(clip), "--reference", "clip", "--data_dir", str(work),
                    "--min_track", str(limits["min_track"]), "--min_face_size", str(limits["min_face_size"])]
        runpy.run_path(str(authors / "run_pipeline.py"), run_name="__main__")
        with open(work / "pywork" / "clip" / "tracks.pckl", "rb") as f:
            tracks = pickle.load(f)
        crops = [read_video_bgr(p) for p in sorted((work / "pycrop" / "clip").glob("0*.avi"))]
        instance = importlib.import_module("SyncNetInstance")
        evaluate = instance.SyncNetInstance.evaluate

        def recording(self, opt, videofile):
            offset, conf, dists = evaluate(self, opt, videofile)
            mdist = torch.mean(torch.stack([torch.from_numpy(np.asarray(r)) for r in dists], 1), 1)
            results.append({"offset": int(offset), "lse_c": float(conf), "lse_d": float(mdist.min()),
                            "lse_c_recomputed": float(torch.median(mdist) - mdist.min()), "windows": len(dists),
                            "mean_dists": mdist.tolist()})
            return offset, conf, dists

        instance.SyncNetInstance.evaluate = recording
        sys.argv = ["run_syncnet.py", "--initial_model", str(weights), "--data_dir", str(work), "--reference",
                    "clip", "--videofile", str(clip)]
        runpy.run_path(str(authors / "run_syncnet.py"), run_name="__main__")
        instance.SyncNetInstance.evaluate = evaluate
    finally:
        sys.argv = argv
        sys.path.remove(str(authors))
    out = []
    for track, frames, result in zip(tracks, crops, results):
        t, proc = track["track"], track["proc_track"]
        out.append({"first_frame": int(t["frame"][0]), "end_frame": int(t["frame"][-1]) + 1,
                    "boxes": np.round(np.asarray(t["bbox"], dtype=np.float64), 6).tolist(),
                    "smoothed": {k: np.round(np.asarray(proc[k], dtype=np.float64), 6).tolist() for k in "xys"},
                    "crops": {"count": len(frames), **crops_digest(frames)}, **result})
    return {"tracks": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors-repo", required=True, type=Path, help="checkout of joonson/syncnet_python")
    parser.add_argument("--clips", nargs="*", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    authors = args.authors_repo.resolve()
    sys.path.append(str(ROOT / "src"))  # avsync's detector and decoder (after the authors' modules)
    from avsync.faces.detectors import DlibHogDetector

    sys.modules["detectors"] = stand_in_detectors(DlibHogDetector(upsample=1))
    synthetic = load_synthetic_weights()
    golden = json.loads(args.out.read_text()) if args.out.exists() else {"clips": {}}
    golden.update({"authors_scripts": "syncnet_python run_pipeline.py + run_syncnet.py (unchanged, run by runpy)",
                   "detector": "avsync.faces.DlibHogDetector(upsample=1) in place of S3FD, on the authors' frames",
                   "weights": "avsync.convert.synthetic_weights of tests/goldens/syncnet/syncnet_layout.json",
                   "variants": {"published": "as published (MPEG-4 q2 AVI, JPEG frames, XVID crops)",
                                "lossless": "FFV1 / PNG intermediates; ffmpeg's decoding of the input",
                                "same_frames": "lossless, and avsync's decoded frames and 16 kHz wav as input"}})
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "syncnet_v2.model"
        torch.save(synthetic.synthetic_state_dict(synthetic.read_layout(LAYOUT)), weights)
        write_png_frames_as_jpg_names()
        for variant in args.variants:
            for name in args.clips:
                relative, limits = CLIPS[name]
                clip = FIXTURES / relative
                entry = golden["clips"].setdefault(name, {"clip": relative, "limits": limits})
                frames = wav16 = None
                if variant == "same_frames":
                    import avsync.media as media
                    info = media.probe(clip)
                    seconds = min(info.duration_sec, info.audio_duration_sec or info.duration_sec)
                    count = int(np.floor(seconds * 25.0 + 1e-6))
                    frames = media.read_frames(clip, 0.0, count / 25.0, 25.0)
                    wav = media.read_audio(clip, 0.0, count / 25.0, 16000)
                    wav16 = np.clip(np.round(wav.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
                patch_environment(variant, frames, wav16)
                work = Path(tmp) / f"{name}_{variant}"
                entry[variant] = run_clip(authors, clip, limits, weights, work)
                print(name, variant, [(t["first_frame"], t["end_frame"], t["offset"], round(t["lse_c"], 6),
                                       round(t["lse_d"], 6)) for t in entry[variant]["tracks"]], flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)  # after every run: a long run keeps its part
                args.out.write_text(compact_json(golden))


if __name__ == "__main__":
    main()

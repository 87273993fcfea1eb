"""Time syncnet_python's own pipeline (``run_pipeline.py`` + ``run_syncnet.py``) per clip, as published.

Run in the authors' environment (``benchmarks/score_throughput.py --reference`` calls it)::

    PYTHONPATH=/tmp/sd051 /work/venvs/ref/bin/python benchmarks/reference_syncnet_python.py \\
        --authors-repo /work/ref/syncnet_python CLIP...

The scripts run unchanged, with the replacements of ``tests/parity/make_goldens_lse_pipeline.py``
(its ``published`` variant: ffmpeg, JPEG and XVID as the authors run them; avsync's dlib detector
in place of S3FD, whose weights cannot be downloaded here; synthetic official-layout SyncNet
weights). One JSON line per clip: its wall seconds (both scripts, model loading included, as a
per-video loop over them runs, e.g. Wav2Lip's ``calculate_scores_real_videos.sh``) and the tracks'
offsets, LSE-C and LSE-D.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _goldens_script():
    path = ROOT / "tests" / "parity" / "make_goldens_lse_pipeline.py"
    spec = importlib.util.spec_from_file_location("make_goldens_lse_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--authors-repo", required=True, type=Path)
    parser.add_argument("--min-track", type=int, default=100)
    parser.add_argument("--min-face-size", type=int, default=100)
    args = parser.parse_args()
    g = _goldens_script()
    sys.path.append(str(ROOT / "src"))
    from avsync.faces.detectors import DlibHogDetector

    sys.modules["detectors"] = g.stand_in_detectors(DlibHogDetector(upsample=1))
    synthetic = g.load_synthetic_weights()
    limits = {"min_track": args.min_track, "min_face_size": args.min_face_size}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "syncnet_v2.model"
        torch.save(synthetic.synthetic_state_dict(synthetic.read_layout(g.LAYOUT)), weights)
        g.patch_environment("published", None, None)
        for i, clip in enumerate(args.clips):
            start = time.perf_counter()
            try:
                result = g.run_clip(args.authors_repo.resolve(), clip.resolve(), limits, weights, Path(tmp) / f"c{i}")
                tracks = [{k: t[k] for k in ("first_frame", "end_frame", "offset", "lse_c", "lse_d")}
                          for t in result["tracks"]]
                error = None
            except Exception as err:  # noqa: BLE001 - the reference failing on a clip is a result too
                tracks, error = [], f"{type(err).__name__}: {err}"
            print(json.dumps({"clip": str(clip), "seconds": time.perf_counter() - start, "tracks": tracks,
                              "error": error}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

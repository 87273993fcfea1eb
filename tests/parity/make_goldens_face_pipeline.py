"""Make goldens of syncnet_python's face tracking and cropping by running its own functions.

    /work/venvs/ref/bin/python tests/parity/make_goldens_face_pipeline.py --authors-repo /work/ref/syncnet_python

``run_pipeline.py`` is a script (it parses arguments and runs ffmpeg at import), so its
functions ``bb_intersection_over_union``, ``track_shot`` and ``crop_video`` are taken out of the
file with ``ast`` and run in a namespace where file access is replaced: ``crop_video`` reads
the fixture frames (decoded with PyAV, handed over as the BGR images ``cv2.imread`` would give)
and its ``cv2.VideoWriter`` records the crops instead of encoding them; its ffmpeg calls are not
run. Writes tests/goldens/face_pipeline/:
  tracking.json  seeded synthetic detections (several faces, gaps, jumps, overlapping duplicates)
                 for three parameter sets, and the tracks track_shot returns for each
  crops.npz      crop_video on 30 real fixture frames (the track: the fixture's own face boxes):
                 the smoothed centres and sizes, SHA-256 of every 224 px crop, and two crops
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
import types
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[2]
CLIP_FULL = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
CLIP_BOXES = "lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.txt"
CROP_FRAMES = 30
KEPT_CROPS = (17,)
PARAM_SETS = [dict(min_track=10, num_failed_det=5, min_face_size=20),
              dict(min_track=3, num_failed_det=2, min_face_size=10),
              dict(min_track=20, num_failed_det=25, min_face_size=40)]


def authors_functions(repo: Path, names: tuple[str, ...], namespace: dict) -> dict:
    tree = ast.parse((repo / "run_pipeline.py").read_text())
    body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    exec(compile(ast.Module(body=body, type_ignores=[]), "run_pipeline.py", "exec"), namespace)
    return namespace


def synthetic_detections(seed: int, n_frames: int = 80) -> list[list[dict]]:
    """Faces walking, vanishing for a while, jumping, and sometimes detected twice."""
    rng = np.random.default_rng(seed)
    faces = [dict(x=40.0, y=30.0, s=50.0), dict(x=160.0, y=40.0, s=35.0), dict(x=100.0, y=120.0, s=22.0)]
    frames = []
    for t in range(n_frames):
        dets = []
        for k, f in enumerate(faces):
            f["x"] += rng.normal(0, 1.5)
            f["y"] += rng.normal(0, 1.0)
            f["s"] = max(8.0, f["s"] + rng.normal(0, 0.5))
            if rng.random() < 0.03:
                f["x"] += rng.choice([-60.0, 60.0])  # a jump: IoU with the last box drops to 0
            if rng.random() < 0.12 + 0.1 * k:
                continue  # missed in this frame
            box = [f["x"], f["y"], f["x"] + f["s"], f["y"] + f["s"] * 1.1]
            dets.append(box)
            if rng.random() < 0.08:  # a second, overlapping detection of the same face
                dets.append([v + rng.normal(0, 2.0) for v in box])
        order = rng.permutation(len(dets))
        frames.append([{"frame": t, "bbox": [float(v) for v in dets[i]], "conf": 0.99} for i in order])
    return frames


def decode(path: Path, n: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors-repo", required=True, type=Path, help="syncnet_python checkout")
    parser.add_argument("--fixtures", type=Path, default=REPO.parent / "shared" / "fixtures" / "real")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "goldens" / "face_pipeline")
    args = parser.parse_args()
    import cv2
    from scipy import signal
    from scipy.interpolate import interp1d

    # --- tracking ---
    ns = authors_functions(args.authors_repo, ("bb_intersection_over_union", "track_shot"),
                           {"np": np, "interp1d": interp1d})
    cases = []
    for seed, params in enumerate(PARAM_SETS):
        dets = synthetic_detections(seed)
        given = json.loads(json.dumps(dets))  # track_shot empties its input lists
        tracks = ns["track_shot"](types.SimpleNamespace(**params), dets)
        cases.append({"params": params, "detections": given,
                      "tracks": [{"frame": t["frame"].tolist(), "bbox": t["bbox"].tolist()} for t in tracks]})
        print(f"tracking case {seed}: {len(tracks)} tracks, lengths {[len(t['frame']) for t in tracks]}")

    # --- cropping ---
    frames_rgb = decode(args.fixtures / CLIP_FULL, CROP_FRAMES)
    rows = (args.fixtures / CLIP_BOXES).read_text().splitlines()[5:5 + CROP_FRAMES]
    h, w = frames_rgb[0].shape[:2]
    boxes = np.array([[float(v) for v in r.split()[1:]] for r in rows]) * [w, h, w, h]
    boxes[:, 2:] += boxes[:, :2]
    written = []

    class Writer:
        def __init__(self, *a, **k):
            pass

        def write(self, image):
            written.append(image.copy())

        def release(self):
            pass

    fake_cv2 = types.SimpleNamespace(VideoWriter=Writer, VideoWriter_fourcc=lambda *a: 0, resize=cv2.resize,
                                     imread=lambda name: frames_rgb[int(Path(name).stem)][:, :, ::-1].copy())
    fake_glob = types.SimpleNamespace(glob=lambda pattern: [f"{i:06d}.jpg" for i in range(CROP_FRAMES)])
    fake_os = types.SimpleNamespace(path=__import__("os").path, remove=lambda p: None)
    ns = authors_functions(args.authors_repo, ("crop_video",),
                           {"np": np, "cv2": fake_cv2, "glob": fake_glob, "os": fake_os, "signal": signal,
                            "subprocess": types.SimpleNamespace(call=lambda *a, **k: 0),
                            "wavfile": types.SimpleNamespace(read=lambda p: (16000, np.zeros(1)))})
    opt = types.SimpleNamespace(frames_dir="", reference="", frame_rate=25, crop_scale=0.4, tmp_dir="",
                                avi_dir="")
    track = {"frame": np.arange(CROP_FRAMES), "bbox": boxes}
    result = ns["crop_video"](opt, track, "crop")
    crops_rgb = [c[:, :, ::-1] for c in written]  # back to RGB
    proc = result["proc_track"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tracking.json").write_text(json.dumps({"cases": cases}) + "\n")
    np.savez_compressed(
        args.out / "crops.npz", boxes=boxes, x=np.asarray(proc["x"]), y=np.asarray(proc["y"]),
        s=np.asarray(proc["s"]), sha256=np.array([hashlib.sha256(np.ascontiguousarray(c).tobytes()).hexdigest()
                                                   for c in crops_rgb]),
        kept_index=np.array(KEPT_CROPS), kept=np.stack([crops_rgb[i] for i in KEPT_CROPS]),
        frame_sha256=np.array([hashlib.sha256(f.tobytes()).hexdigest() for f in frames_rgb]))
    (args.out / "made_with.json").write_text(json.dumps(
        {"numpy": np.__version__, "opencv": cv2.__version__, "scipy": __import__("scipy").__version__,
         "av": av.__version__, "clip": CLIP_FULL, "boxes": CLIP_BOXES}, indent=1) + "\n")
    print(f"{len(crops_rgb)} crops; wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())

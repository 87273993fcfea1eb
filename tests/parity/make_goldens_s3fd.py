"""Make the S3FD parity goldens by running the authors' S3FD (syncnet_python/detectors/s3fd).

    /work/venvs/ref/bin/python tests/parity/make_goldens_s3fd.py --authors-repo /work/ref/syncnet_python

Needs numpy, torch, torchvision, opencv and PyAV (the authors' modules import torchvision and
cv2). Writes tests/goldens/s3fd/:
  layout.json   the official state dict layout (key -> shape) of the authors' network
  frame.json    which fixture frame was used (clip, index, sha256 of its RGB bytes as PyAV decodes it)
  golden.npz    per scale: the authors' head outputs (box offsets, softmax scores) — all anchors at
                scale 0.25, every 16th anchor at scale 1 to keep the file small — and the boxes
                their detect_faces returns at a lowered threshold (recorded beside them).
The weights are tests/parity/s3fd_random_weights.py's deterministic random state dict.
"""
from __future__ import annotations

import argparse
import warnings
import hashlib
import json
import sys
from pathlib import Path

import av
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from s3fd_random_weights import random_state_dict  # noqa: E402

CLIP = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
FRAME_INDEX = 100
SCALES = (0.25, 1.0)
FULL_ANCHORS_SCALE = 0.25
ANCHOR_STRIDE = 16  # anchors kept at the other scales
BOXES_WANTED = 40  # the lowered threshold lets about this many boxes through


def decode_frame(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise SystemExit(f"{path} has fewer than {index + 1} frames")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors-repo", required=True, type=Path, help="syncnet_python checkout")
    parser.add_argument("--fixtures", type=Path, default=REPO.parent / "shared" / "fixtures" / "real")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "goldens" / "s3fd")
    args = parser.parse_args()

    if not hasattr(np, "int"):  # box_utils.nms_ casts with np.int, removed in numpy 1.24
        np.int = int
    sys.path.insert(0, str(args.authors_repo.resolve()))
    import detectors.s3fd as authors  # noqa: E402
    from detectors.s3fd.nets import S3FDNet  # noqa: E402

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="An output with one or more elements was resized")
    net = S3FDNet(device="cpu")
    layout = {k: list(v.shape) for k, v in net.state_dict().items()}
    net.load_state_dict(random_state_dict(layout), strict=True)
    net.eval()
    detector = authors.S3FD.__new__(authors.S3FD)  # the authors' class without its hard-coded weight path
    detector.device, detector.net = "cpu", net

    image = decode_frame(args.fixtures / CLIP, FRAME_INDEX)
    captured = {}
    detect_forward = net.detect.forward

    def capture(loc, conf, priors):
        captured.update(loc=loc[0].numpy().copy(), conf=conf[0].numpy().copy(), priors=priors.numpy().copy())
        return detect_forward(loc, conf, priors)

    net.detect.forward = capture
    arrays = {}
    thresholds = {}
    for scale in SCALES:
        tag = f"s{scale:g}"
        detector.detect_faces(image, conf_th=1.0, scales=[scale])  # fills `captured`; no box passes 1.0
        stride = 1 if scale == FULL_ANCHORS_SCALE else ANCHOR_STRIDE
        for name in ("loc", "conf", "priors"):
            arrays[f"{tag}_{name}"] = captured[name][::stride].astype(np.float32)
        arrays[f"{tag}_num_anchors"] = np.array(len(captured["loc"]))
        # a threshold halfway between the BOXES_WANTED-th and the next best face score after NMS
        with torch.no_grad():
            out = net.detect.forward(torch.from_numpy(captured["loc"])[None],
                                     torch.from_numpy(captured["conf"])[None], torch.from_numpy(captured["priors"]))
        scores = out[0, 1, :, 0].numpy()
        th = round(float(scores[BOXES_WANTED - 1] + scores[BOXES_WANTED]) / 2, 6)
        thresholds[tag] = th
        arrays[f"{tag}_boxes"] = detector.detect_faces(image, conf_th=th, scales=[scale])
        print(f"scale {scale}: {arrays[f'{tag}_num_anchors']} anchors, threshold {th}, "
              f"{len(arrays[f'{tag}_boxes'])} boxes after the final NMS")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "layout.json").write_text(json.dumps(layout, indent=0) + "\n")
    frame_info = {"clip": CLIP, "frame_index": FRAME_INDEX, "shape": list(image.shape),
                  "sha256": hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest(),
                  "scales": list(SCALES), "full_anchors_scale": FULL_ANCHORS_SCALE,
                  "anchor_stride": ANCHOR_STRIDE, "thresholds": thresholds,
                  "made_with": {"torch": torch.__version__, "numpy": np.__version__,
                                "opencv": __import__("cv2").__version__, "av": av.__version__}}
    (args.out / "frame.json").write_text(json.dumps(frame_info, indent=1) + "\n")
    np.savez_compressed(args.out / "golden.npz", **arrays)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

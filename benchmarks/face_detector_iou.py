"""IoU of face detectors' boxes against the reference box on the real full-frame LRS3 fixture.

    python benchmarks/face_detector_iou.py [--fixtures ../shared/fixtures/real] [--frames N]

The reference box of frame t is where the face-crop fixture's frame t sits in the full frame
(avsync.faces.reference.locate_crop; both clips are the same LRS3 segment). Per detector: the
share of frames with at least one box, the IoU of its best box (highest score) with the reference
(mean, min over all frames, 0 where it found nothing), and the frames with extra boxes.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from avsync.faces.detectors import DlibHogDetector, HaarFaceDetector
from avsync.faces.reference import box_iou, locate_crop
from avsync.media.decode import probe, read_frames

CLIP = "lrs3/{}/pretrain/C8zY0oAdQrs/00018.mp4"
FULL, CROP = "h264_uncropped_25fps_256side_16000hz_aac", "h264_orig_strict_crop_25fps_224side_16000hz_aac"


def reference_boxes(full, crop):
    boxes, nccs, side = [], [], None
    for f, c in zip(full, crop):
        sides = range(16, min(f.shape[:2]) + 1) if side is None else range(max(8, side - 8), side + 9)
        found = locate_crop(f, c, sides)
        side = int(found.box[2] - found.box[0])
        boxes.append(found.box)
        nccs.append(found.ncc)
    return np.array(boxes), np.array(nccs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parents[2] / "shared/fixtures/real")
    parser.add_argument("--frames", type=int, default=0, help="first N frames only (0: all)")
    args = parser.parse_args()
    full_path, crop_path = args.fixtures / CLIP.format(FULL), args.fixtures / CLIP.format(CROP)
    info = probe(full_path)
    n = info.num_frames if args.frames == 0 else args.frames
    full = read_frames(full_path, 0, n / info.video_fps, info.video_fps)
    crop = read_frames(crop_path, 0, n / info.video_fps, info.video_fps)
    ref, ncc = reference_boxes(full, crop)
    side = ref[:, 2] - ref[:, 0]
    print(f"{n} frames {full.shape[2]}x{full.shape[1]}; reference boxes: NCC min {ncc.min():.3f} mean {ncc.mean():.3f},"
          f" side {side.min():.0f}-{side.max():.0f} px")
    detectors = {
        "opencv-haar-frontalface-default": HaarFaceDetector(),
        "opencv-haar-frontalface-alt2": HaarFaceDetector("haarcascade_frontalface_alt2.xml"),
        "dlib-hog-upsample1": DlibHogDetector(1),
        "dlib-hog-upsample2": DlibHogDetector(2),
    }
    print("| detector | frames with a box | IoU mean | IoU min | IoU mean where found | frames with >1 box | ms/frame |")
    print("|---|---|---|---|---|---|---|")
    for name, det in detectors.items():
        ious, found, extra = [], 0, 0
        t0 = time.perf_counter()
        for f, r in zip(full, ref):
            boxes = det(f)
            found += len(boxes) > 0
            extra += len(boxes) > 1
            ious.append(box_iou(boxes[0, :4], r) if len(boxes) else 0.0)
        ms = (time.perf_counter() - t0) / n * 1e3
        ious = np.array(ious)
        hit = ious[ious > 0] if (ious > 0).any() else np.zeros(1)
        print(f"| {name} | {found}/{n} | {ious.mean():.3f} | {ious.min():.3f} | {hit.mean():.3f} | {extra} | {ms:.1f} |")


if __name__ == "__main__":
    main()

"""IoU of face detectors' boxes against the reference box on the real full-frame LRS3 fixture.

    python benchmarks/face_detector_iou.py [--fixtures ../shared/fixtures/real] [--frames N]

The reference box of frame t is where the face-crop fixture's frame t sits in the full frame
(avsync.faces.reference.locate_crop; both clips are the same LRS3 segment). Per detector: the
share of frames with at least one box, the IoU of its best box (highest score) with the reference
(mean, min over all frames, 0 where it found nothing), and the frames with extra boxes. Then,
per detector, syncnet_python's tracking (faces here are 32-66 px, so min_face_size 20 instead of
100) and crops: the number of tracks, the frames the first covers, and how close its 224 px crops
are to the face-crop fixture (NCC of the part of our crop that shows the fixture's box, resized to
224, against the fixture frame).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from avsync.faces.detectors import DlibHogDetector, HaarFaceDetector
from avsync.faces.crops import crop_track, smoothed_boxes
from avsync.faces.reference import box_iou, locate_crop
from avsync.faces.tracks import TrackParams, scene_cuts, tracks_from_detections
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


def _ncc(a, b) -> float:
    a, b = a.astype(np.float64) - a.mean(), b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def crop_closeness(full, crop, ref, track, crop_scale=0.4) -> np.ndarray:
    """Per track frame: NCC of the reference box's part of our crop with the fixture's crop frame."""
    import cv2

    crops = crop_track(full, track, crop_scale)
    xs, ys, ss = smoothed_boxes(track)
    out = []
    for i, t in enumerate(track.frames):
        bs = ss[i]
        pad = int(bs * (1 + 2 * crop_scale))
        y0, x0 = int(ys[i] + pad - bs) - pad, int(xs[i] + pad - bs * (1 + crop_scale)) - pad
        k = crops.shape[1] / (int(ys[i] + pad + bs * (1 + 2 * crop_scale)) - int(ys[i] + pad - bs))
        r = (ref[t] - [x0, y0, x0, y0]) * k
        part = crops[i][max(0, int(r[1])):max(1, int(r[3])), max(0, int(r[0])):max(1, int(r[2]))]
        out.append(_ncc(cv2.resize(part, crop.shape[1:3][::-1]), crop[t]))
    return np.array(out)


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
    shots = scene_cuts(full)
    track_rows = []
    for name, det in detectors.items():
        ious, found, extra, dets = [], 0, 0, []
        t0 = time.perf_counter()
        for f, r in zip(full, ref):
            boxes = det(f)
            dets.append(boxes)
            found += len(boxes) > 0
            extra += len(boxes) > 1
            ious.append(box_iou(boxes[0, :4], r) if len(boxes) else 0.0)
        ms = (time.perf_counter() - t0) / n * 1e3
        ious = np.array(ious)
        hit = ious[ious > 0] if (ious > 0).any() else np.zeros(1)
        print(f"| {name} | {found}/{n} | {ious.mean():.3f} | {ious.min():.3f} | {hit.mean():.3f} | {extra} | {ms:.1f} |")
        tracks = tracks_from_detections(dets, shots, TrackParams(min_face_size=20))
        if tracks:
            close = crop_closeness(full, crop, ref, tracks[0])
            track_rows.append(f"| {name} | {len(tracks)} | {tracks[0].frames[0]}-{tracks[0].frames[-1]} | "
                              f"{close.mean():.3f} | {close.min():.3f} |")
        else:
            track_rows.append(f"| {name} | 0 | - | - | - |")
    print(f"\nshots: {shots}")
    print("| detector | tracks | frames of track 1 | crop NCC mean | crop NCC min |")
    print("|---|---|---|---|---|")
    print("\n".join(track_rows))


if __name__ == "__main__":
    main()

"""Face detectors behind one interface: ``detector(frame_rgb) -> (K, 5)`` rows (x1, y1, x2, y2, score)
in the frame's pixels, best first.

* :class:`DlibHogDetector` — the default. dlib's HOG + linear SVM frontal face detector; its
  trained model is compiled into the ``dlib-bin`` wheel, so it works with no download. On the real
  full-frame LRS3 fixture (faces 32-66 px in a 454x256 frame) it found the face in 393/393 frames,
  IoU with the reference box mean 0.675, min 0.469 (benchmarks/face_detector_iou.py; README,
  "Face tracks"). Its score is the SVM margin.
* :class:`HaarFaceDetector` — OpenCV's frontal-face Haar cascade (model inside the
  ``opencv-python-headless`` 4.x wheel, ``cv2.data.haarcascades``): 349/393 frames, IoU mean 0.667
  (0 counted for a miss), 0.751 where found. Its score is the number of merged raw detections.
* :class:`avsync.faces.s3fd.S3FD` — syncnet_python's detector, for LSE parity; needs the official
  ``sfd_face.pth`` (weights registry entry ``s3fd``).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["FaceDetector", "HaarFaceDetector", "DlibHogDetector", "default_detector"]


class FaceDetector(Protocol):
    def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
        """(K, 5) float64 rows (x1, y1, x2, y2, score), best first; (0, 5) when no face."""
        ...


def _rows(boxes_xywh, scores) -> np.ndarray:
    if len(boxes_xywh) == 0:
        return np.empty((0, 5))
    b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    rows = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:], np.asarray(scores, np.float64).reshape(-1, 1)], 1)
    return rows[np.argsort(-rows[:, 4], kind="stable")]


class HaarFaceDetector:
    """OpenCV's Haar cascade (``haarcascade_frontalface_default.xml`` from the wheel) on the grey frame.

    ``min_size`` is the smallest face side searched in pixels; ``scale_factor`` and
    ``min_neighbors`` are OpenCV's usual 1.1 and 5.
    """

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 24):
        import cv2

        root = getattr(getattr(cv2, "data", None), "haarcascades", None)
        if root is None or not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError(f"OpenCV {cv2.__version__} ships no Haar cascades; avsync needs "
                               "opencv-python-headless 4.x (pip install 'opencv-python-headless<5')")
        self.classifier = cv2.CascadeClassifier(root + cascade)
        if self.classifier.empty():
            raise RuntimeError(f"could not load the Haar cascade {root + cascade}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
        import cv2

        grey = cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2GRAY)
        boxes, neighbours = self.classifier.detectMultiScale2(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size))
        return _rows(boxes, neighbours)


class DlibHogDetector:
    """dlib's frontal HOG detector; ``upsample`` doubles the frame that many times first (its
    smallest face is about 80 px at 0, 40 px at 1)."""

    def __init__(self, upsample: int = 1):
        try:
            import dlib
        except ImportError as err:
            raise RuntimeError("the default face detector needs dlib: pip install dlib-bin") from err
        self.detector, self.upsample = dlib.get_frontal_face_detector(), upsample


    def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
        rects, scores, _ = self.detector.run(np.ascontiguousarray(frame_rgb), self.upsample, 0.0)
        return _rows([[r.left(), r.top(), r.width(), r.height()] for r in rects], scores)


def default_detector() -> FaceDetector:
    """The detector used when none is given: dlib's HOG detector, upsampling once (model inside the wheel)."""
    return DlibHogDetector(upsample=1)


FACE_DETECTORS = ("dlib", "s3fd")


def face_detector_named(name: str) -> FaceDetector:
    """``dlib`` (HOG, model inside the dlib-bin wheel: the default) or ``s3fd`` (syncnet_python's
    own, official ``sfd_face.pth`` fetched by name through :mod:`avsync.weights`). An unknown name is
    a :class:`~avsync.detect.loading.CheckpointError`: the commands print it as one line."""
    if name == "dlib":
        return default_detector()
    if name == "s3fd":
        from avsync.faces.s3fd import S3FD

        return S3FD.from_registry()
    from avsync.detect.loading import CheckpointError

    raise CheckpointError(f"unknown face detector {name!r}; choose from {', '.join(FACE_DETECTORS)}")

"""S3FD face detector (Zhang et al. 2017), as syncnet_python runs it before computing LSE-C/LSE-D.

The network is SSD on a VGG-16 trunk with six detection layers (strides 4 … 128, one square
anchor per cell of side 16 … 512 px), L2 normalisation of conv3_3 / conv4_3 / conv5_3 and the
"max-out background" head on the first layer (three background logits, their maximum kept).
Module names follow the official ``sfd_face.pth`` state dict, so that file loads strictly:
``vgg.<i>`` (convolutions at the indices of the authors' layer list, ReLUs and pools counted),
``L2Norm3_3/4_3/5_3.weight``, ``extras.<i>``, ``loc.<i>``, ``conf.<i>``.

Decoding is the one syncnet_python uses: SSD box decoding with variances (0.1, 0.2), softmax
scores, per-image greedy NMS (IoU 0.3 over the 5000 best boxes with score > 0.05, 750 kept); the
detector then keeps boxes above ``conf_th`` from every scale, and a last greedy NMS at IoU 0.1
merges scales. ``run_pipeline.py`` calls it with ``conf_th=0.9`` on the RGB frame resized by
``facedet_scale=0.25`` (bilinear, OpenCV), mean (123, 117, 104) subtracted from R, G, B.

Weights: :class:`S3FD` takes a path to ``sfd_face.pth`` or a state dict (loaded with
``weights_only=True``, strictly). No weights ship with avsync; the weights registry
(``avsync.weights``, entry ``s3fd``) downloads and checks the official file by name, and
:meth:`S3FD.from_registry` hands its path here — the one seam between the two packages.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["S3FDNet", "S3FD", "prior_boxes", "decode_boxes", "greedy_nms", "select_detections", "merge_nms",
           "preprocess", "FACEDET_SCALE", "CONF_TH"]

# syncnet_python's run_pipeline.py: detection on the frame scaled by 0.25, score threshold 0.9
FACEDET_SCALE = 0.25
CONF_TH = 0.9

# input normalisation of the official weights: mean of R, G, B subtracted (no division)
_RGB_MEAN = np.array([123.0, 117.0, 104.0], dtype=np.float32)
# the VGG-16 trunk: channels of 3x3 convolutions, "M" a 2x2 max pool, "C" the same with ceil mode
_VGG_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512, "M")
# indices into the trunk's layer list after which conv3_3, conv4_3 and conv5_3 (with ReLU) end
_SOURCE_ENDS = (16, 23, 30)
_STEPS = (4, 8, 16, 32, 64, 128)
_ANCHORS = (16, 32, 64, 128, 256, 512)
_VARIANCES = (0.1, 0.2)


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learnt per-channel scale (ParseNet), as SSD uses it."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))
        self.eps = 1e-10

    def forward(self, x: Tensor) -> Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return self.weight[None, :, None, None] * (x / norm)


def _vgg_layers() -> nn.ModuleList:
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG_PLAN:
        if item in ("M", "C"):
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=item == "C"))
        else:
            layers += [nn.Conv2d(channels, item, 3, 1, padding=1), nn.ReLU(inplace=True)]
            channels = item
    # fc6 (dilated 3x3) and fc7 (1x1) as convolutions
    layers += [nn.Conv2d(512, 1024, 3, 1, padding=6, dilation=6), nn.ReLU(inplace=True),
               nn.Conv2d(1024, 1024, 1, 1), nn.ReLU(inplace=True)]
    return nn.ModuleList(layers)


class S3FDNet(nn.Module):
    """The S3FD network. ``forward`` returns the raw head outputs before any decoding:
    ``loc`` (N, P, 4) box offsets and ``logits`` (N, P, 2) background/face logits, with the
    P anchors ordered layer by layer, row-major within a layer (the order of :func:`prior_boxes`)."""

    def __init__(self):
        super().__init__()
        self.vgg = _vgg_layers()
        self.L2Norm3_3 = L2Norm(256, 10)
        self.L2Norm4_3 = L2Norm(512, 8)
        self.L2Norm5_3 = L2Norm(512, 5)
        self.extras = nn.ModuleList([nn.Conv2d(1024, 256, 1, 1), nn.Conv2d(256, 512, 3, 2, padding=1),
                                     nn.Conv2d(512, 128, 1, 1), nn.Conv2d(128, 256, 3, 2, padding=1)])
        source_channels = (256, 512, 512, 1024, 512, 256)
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, 1, padding=1) for c in source_channels])
        # the first layer predicts 3 background logits (max-out) + 1 face logit
        self.conf = nn.ModuleList([nn.Conv2d(c, 4 if i == 0 else 2, 3, 1, padding=1)
                                   for i, c in enumerate(source_channels)])

    def sources(self, x: Tensor) -> list[Tensor]:
        """The six feature maps the heads read (conv3_3, conv4_3, conv5_3 normalised; fc7; two extras)."""
        norms = (self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3)
        out = []
        start = 0
        for end, norm in zip(_SOURCE_ENDS, norms):
            for layer in self.vgg[start:end]:
                x = layer(x)
            out.append(norm(x))
            start = end
        for layer in self.vgg[start:]:
            x = layer(x)
        out.append(x)
        for k, layer in enumerate(self.extras):
            x = F.relu(layer(x))
            if k % 2 == 1:
                out.append(x)
        return out

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        locs, logits = [], []
        for i, src in enumerate(self.sources(x)):
            conf = self.conf[i](src)
            if i == 0:
                conf = torch.cat([conf[:, :3].max(dim=1, keepdim=True).values, conf[:, 3:]], dim=1)
            locs.append(self.loc[i](src).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4))
            logits.append(conf.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 2))
        return torch.cat(locs, 1), torch.cat(logits, 1)

    @staticmethod
    def feature_sizes(height: int, width: int) -> list[tuple[int, int]]:
        """(rows, cols) of the six detection layers for an input of ``height`` x ``width``."""
        # pools: /2, /2 (conv3_3), /2 ceil (conv4_3), /2 (conv5_3), /2 (fc7); extras: stride-2 3x3 convs
        h3, w3 = height // 2 // 2, width // 2 // 2
        h4, w4 = -(-h3 // 2), -(-w3 // 2)
        h5, w5 = h4 // 2, w4 // 2
        h7, w7 = h5 // 2, w5 // 2
        he1, we1 = (h7 - 1) // 2 + 1, (w7 - 1) // 2 + 1
        he2, we2 = (he1 - 1) // 2 + 1, (we1 - 1) // 2 + 1
        return [(h3, w3), (h4, w4), (h5, w5), (h7, w7), (he1, we1), (he2, we2)]


def prior_boxes(height: int, width: int, feature_sizes: Sequence[tuple[int, int]]) -> Tensor:
    """Anchors (P, 4) as (cx, cy, w, h) relative to the image: one square anchor per cell, of side
    16·2^k px on layer k (stride 4·2^k). Computed in float64, returned as float32."""
    rows = []
    for k, (fh, fw) in enumerate(feature_sizes):
        cells_x, cells_y = width / _STEPS[k], height / _STEPS[k]
        i, j = np.meshgrid(np.arange(fh, dtype=np.float64), np.arange(fw, dtype=np.float64), indexing="ij")
        cx = (j.reshape(-1) + 0.5) / cells_x
        cy = (i.reshape(-1) + 0.5) / cells_y
        side = np.stack([np.full_like(cx, _ANCHORS[k] / width), np.full_like(cx, _ANCHORS[k] / height)], 1)
        rows.append(np.concatenate([np.stack([cx, cy], 1), side], 1))
    return torch.from_numpy(np.concatenate(rows, 0)).float()


def decode_boxes(loc: Tensor, priors: Tensor, variances: Sequence[float] = _VARIANCES) -> Tensor:
    """SSD decoding of offsets (P, 4) against anchors (P, 4) into corner boxes (x1, y1, x2, y2),
    relative to the image size."""
    centre = priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * variances[1])
    top_left = centre - size / 2
    return torch.cat([top_left, size + top_left], 1)


def greedy_nms(boxes: Tensor, scores: Tensor, overlap: float, top_k: int) -> Tensor:
    """Indices of the boxes kept by greedy NMS among the ``top_k`` best-scoring ones, best first:
    a box is dropped when its IoU with a kept, better box exceeds ``overlap``."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1) * (y2 - y1)
    order = scores.sort(0).indices[-top_k:].flip(0)  # descending, ties as an ascending sort leaves them
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = (torch.minimum(x2[rest], x2[i]) - torch.maximum(x1[rest], x1[i])).clamp(min=0.0)
        h = (torch.minimum(y2[rest], y2[i]) - torch.maximum(y1[rest], y1[i])).clamp(min=0.0)
        inter = w * h
        iou = inter / ((area[rest] - inter) + area[i])
        order = rest[iou.le(overlap)]
    return torch.tensor(keep, dtype=torch.long)


def select_detections(loc: Tensor, logits: Tensor, priors: Tensor, *, score_min: float = 0.05,
                      nms_overlap: float = 0.3, nms_top_k: int = 5000, keep_top_k: int = 750) -> Tensor:
    """Detections of one image, (K, 5) rows (score, x1, y1, x2, y2) relative to the image, best first:
    decoded boxes whose face probability exceeds ``score_min``, after greedy NMS."""
    boxes = decode_boxes(loc, priors)
    scores = torch.softmax(logits, dim=-1)[:, 1]
    mask = scores.gt(score_min)
    boxes, scores = boxes[mask], scores[mask]
    keep = greedy_nms(boxes, scores, nms_overlap, nms_top_k)[:keep_top_k]
    return torch.cat([scores[keep, None], boxes[keep]], 1)


def merge_nms(dets: np.ndarray, overlap: float) -> np.ndarray:
    """Greedy NMS over (K, 5) float64 rows (x1, y1, x2, y2, score) in pixels (merging the scales);
    returns the kept row indices, best first."""
    x1, y1, x2, y2, scores = dets.T
    area = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        order = rest[inter / (area[i] + area[rest] - inter) <= overlap]
    return np.asarray(keep, dtype=np.int64)


def preprocess(image_rgb: np.ndarray, scale: float) -> Tensor:
    """The network input (1, 3, h, w) float32 of one RGB uint8 frame at ``scale`` (OpenCV bilinear)."""
    import cv2

    scaled = cv2.resize(image_rgb, dsize=(0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    x = scaled.astype(np.float32) - _RGB_MEAN
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def _load_state_dict(weights: str | os.PathLike | Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    if isinstance(weights, Mapping):
        return weights
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"S3FD weights not found: {path} (the official file is sfd_face.pth)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: not a state dict (S3FD expects sfd_face.pth's layout)")
    return state


class S3FD:
    """The detector: ``S3FD(weights).detect(frame_rgb)`` → (K, 5) rows (x1, y1, x2, y2, score) in the
    frame's pixels, best first. ``weights`` is a path to ``sfd_face.pth`` or its state dict
    (loaded strictly: a wrong file fails here, not with nonsense boxes)."""

    def __init__(self, weights: str | os.PathLike | Mapping[str, Tensor], device: str | torch.device = "cpu",
                 conf_th: float = CONF_TH, scales: Sequence[float] = (FACEDET_SCALE,)):
        self.device = torch.device(device)
        self.net = S3FDNet()
        self.net.load_state_dict(_load_state_dict(weights), strict=True)
        self.net.to(self.device).eval()
        self.conf_th = conf_th
        self.scales = tuple(scales)

    @classmethod
    def from_registry(cls, cache_dir=None, **kwargs) -> "S3FD":
        """The detector with the official weights: ``avsync.weights.fetch("s3fd")`` downloads and
        checks ``sfd_face.pth`` on first use (the weights registry; needs network access once)."""
        from avsync.weights import fetch

        return cls(fetch("s3fd", cache_dir=cache_dir), **kwargs)

    @torch.no_grad()
    def raw(self, image_rgb: np.ndarray, scale: float) -> tuple[Tensor, Tensor, Tensor]:
        """(loc, logits, priors) of one frame at one scale, on the CPU (for tests and inspection)."""
        x = preprocess(image_rgb, scale).to(self.device)
        loc, logits = self.net(x)
        priors = prior_boxes(x.shape[2], x.shape[3], S3FDNet.feature_sizes(x.shape[2], x.shape[3]))
        return loc[0].float().cpu(), logits[0].float().cpu(), priors

    def detect(self, image_rgb: np.ndarray, conf_th: float | None = None,
               scales: Sequence[float] | None = None) -> np.ndarray:
        conf_th = self.conf_th if conf_th is None else conf_th
        height, width = image_rgb.shape[:2]
        size = torch.tensor([width, height, width, height], dtype=torch.float32)
        rows = []
        for scale in self.scales if scales is None else scales:
            loc, logits, priors = self.raw(image_rgb, scale)
            dets = select_detections(loc, logits, priors)
            dets = dets[dets[:, 0] > conf_th]
            for det in dets:
                rows.append([*(det[1:] * size).numpy().astype(np.float64), float(det[0])])
        if not rows:
            return np.empty((0, 5))
        bboxes = np.asarray(rows, dtype=np.float64)
        return bboxes[merge_nms(bboxes, 0.1)]

    __call__ = detect

"""VocaLiST's clip-level test procedure, as the authors' ``test_lrs2.py`` runs it.

The authors test on face crops (Wav2Lip's LRS2 preparation) and score a whole clip at once:

* frames: each face crop resized to 96x96 with ``cv2.resize`` (bilinear, fixed point: reproduced
  by :func:`avsync.media.opencv_resize.resize_linear_like_opencv`), the lower half kept (48x96),
  BGR as OpenCV reads it, /255;
* audio: the mel-spectrogram of the **whole** clip (:class:`avsync.papers.vocalist.inputs.VocaLiSTMel`
  on the int16 samples of a 16-bit wav); window ``v`` uses mel columns
  ``int(80 · v / 25) .. +16`` (truncated, so windows start up to 2 columns = 25 ms early);
* ``N = min(frames, floor(samples / 640)) − 5`` windows of 5 frames;
* each visual window is scored against the audio windows ``v − 15 .. v + 15``, the sequence padded
  with **all-zero mel windows** at both ends; scores whose audio window lies outside the clip are
  set to −1000 — for the first 15 windows only at the start, otherwise for the last 15 windows
  at the end (the authors' ``if``/``elif``);
* the offset of window ``v`` is ``15 − argmax`` of its 31 scores.

Parity with the authors' code is locked by ``tests/integration/test_parity_vocalist.py``.
"""
from __future__ import annotations

import torch

from avsync.media.opencv_resize import resize_linear_like_opencv
from avsync.papers.vocalist.inputs import VocaLiSTMel

__all__ = ["vocalist_clip_frames", "vocalist_clip_mel", "vocalist_window_count", "vocalist_clip_logits",
           "MASKED_LOGIT"]

FPS, MEL_PER_SECOND, MEL_STEP, WINDOW = 25.0, 80.0, 16, 5
SAMPLES_PER_FRAME = 640
FACE_SIDE = 96
MASKED_LOGIT = -1000.0


def vocalist_clip_frames(faces: torch.Tensor) -> torch.Tensor:
    """uint8 RGB face crops (T, H, W, 3) -> float (T, 3, 48, 96): BGR, ``cv2.resize`` to 96x96, lower half, /255."""
    if faces.dtype != torch.uint8 or faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"face crops must be uint8 (T, H, W, 3), got {faces.dtype} {tuple(faces.shape)}")
    square = resize_linear_like_opencv(faces.flip(-1), FACE_SIDE, FACE_SIDE)
    mouth = square[:, FACE_SIDE // 2:].permute(0, 3, 1, 2)
    return (mouth.double() / 255.0).float()


def vocalist_clip_mel(wav: torch.Tensor, sample_rate: int = 16000) -> torch.Tensor:
    """Waveform (S,) in [-1, 1] -> normalised mel (1, 80, frames) of the whole clip, from its samples
    rounded to int16 as the authors read them from a 16-bit wav."""
    if wav.ndim != 1:
        raise ValueError(f"waveform must be (samples,), got {tuple(wav.shape)}")
    int16 = torch.round(wav.double() * 32768.0).clamp(-32768, 32767) / 32768.0
    return VocaLiSTMel(sample_rate=sample_rate)(int16.float()[None])[0]


def vocalist_window_count(num_frames: int, num_samples: int) -> int:
    return min(num_frames, num_samples // SAMPLES_PER_FRAME) - WINDOW


def _mel_start(v: int) -> int:
    return int(MEL_PER_SECOND * (v / FPS))  # the authors' float arithmetic and truncation


@torch.no_grad()
def vocalist_clip_logits(net, mouth: torch.Tensor, mel: torch.Tensor, num_windows: int, vshift: int = 15,
                         rows: range | None = None, batch_size: int = 31) -> torch.Tensor:
    """Sync logits (len(rows), 2·vshift+1) of a clip's windows against shifted audio windows.

    ``net`` a :class:`avsync.papers.vocalist.network.VocaLiST` (eval mode), ``mouth`` (T, 3, 48, 96) from
    :func:`vocalist_clip_frames`, ``mel`` (1, 80, M) from :func:`vocalist_clip_mel`,
    ``num_windows`` from :func:`vocalist_window_count`. ``rows`` picks some windows (default all);
    each visual and each audio window is encoded once (on the network's device), the pairs are
    fused in batches; the logits come back on the CPU.
    """
    n, width = num_windows, 2 * vshift + 1
    rows = range(n) if rows is None else rows
    if n < 1 or mel.shape[-1] < _mel_start(n - 1) + MEL_STEP:
        raise ValueError(f"{n} windows need {_mel_start(max(n, 1) - 1) + MEL_STEP} mel columns, got {mel.shape[-1]}")
    was_training, device = net.training, next(net.parameters()).device
    net.eval()
    try:
        vis = net.encode_visual(torch.stack([mouth[v:v + WINDOW] for v in rows]).to(device))
        mels = torch.stack([mel[:, :, _mel_start(v):_mel_start(v) + MEL_STEP] for v in range(n)]).to(device)
        aud = net.encode_audio(torch.cat([torch.zeros_like(mels[:1]), mels]))      # index 0: the zero padding
        out = torch.empty(len(rows), width)
        for r, i in enumerate(rows):
            # padded position i + j is audio window i + j − vshift, or the zero window outside the clip
            idx = torch.tensor([k + 1 if 0 <= k < n else 0 for k in range(i - vshift, i - vshift + width)])
            scores = torch.cat([net.fuse(vis[r:r + 1].expand(len(chunk), -1, -1), aud[chunk])
                                for chunk in idx.split(batch_size)])
            if i < vshift:
                scores[: vshift - i] = MASKED_LOGIT
            elif n - vshift <= i < n:
                scores[vshift + n - i:] = MASKED_LOGIT
            out[r] = scores.cpu()
    finally:
        net.train(was_training)
    return out

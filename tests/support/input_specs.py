"""The input specs tests share: the paper-size default, the tiny 32-pixel one most toy tests use,
and the 224-pixel face crop of the SyncNet / VocaLiST parity tests. Vary one with
``dataclasses.replace`` (``tiny_spec(**changes)`` does it for the tiny one)."""
from __future__ import annotations

from dataclasses import replace

from avsync.inputs import InputSpec

# SparseSync's input, InputSpec's defaults: 25 fps, 5 s, 224-pixel crop of a 256 short side, 16 kHz, 21 classes
PAPER_SPEC = InputSpec()
# one second of 32x32 frames, 3 offset classes: cheap to decode and to run a toy model on
TINY_SPEC = InputSpec(fps=25.0, duration_sec=1.0, frame_size=32, resize_short_side=32, sample_rate=16000,
                      offset_classes=3)
# the authors' face-crop models read the whole 224x224 face track (no resize before the crop)
FACE_224_SPEC = InputSpec(frame_size=224, resize_short_side=None, crop="face")


def tiny_spec(**changes) -> InputSpec:
    """``TINY_SPEC`` with ``changes`` applied."""
    return replace(TINY_SPEC, **changes)

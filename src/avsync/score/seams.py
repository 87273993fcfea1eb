"""Where ``avsync score`` and ``avsync.load`` meet parts that other branches provide.

TODO-merge: every stand-in of this round lives in this file and nowhere else. At merge, each
function below becomes a thin call of the real implementation:

* :func:`official_module` -> ``avsync.weights.load_official(name)`` (official weights by name);
* :func:`unsynchronisable_reason` -> ``avsync.media.checks.unsynchronisable_reason(...)``;
* :func:`lse_scorer` -> the LSE-C / LSE-D protocol of ``avsync.protocols.lse`` with the face
  tracks of ``avsync.faces``.

The stand-ins are honest about what they are: named weights and LSE raise a one-line error saying
they are not in this install; the unsynchronisable check is a minimal version (silence, a still
picture) that the real one replaces.
"""
from __future__ import annotations

import numpy as np

from avsync.detect.loading import CheckpointError

__all__ = ["official_module", "unsynchronisable_reason", "lse_scorer", "SILENT_PEAK", "STILL_MEAN_DIFF"]

SILENT_PEAK = 1e-4      # peak |audio - mean| below which a clip is silent (as avsync.media's reject_silent)
STILL_MEAN_DIFF = 0.5   # grey levels: a frame step whose mean |difference| is below this shows no change
STILL_MOVING_FRACTION = 0.25  # still when fewer than this fraction of the frame steps change (codec noise
# of a still noise picture: 6-9 % of the steps above 0.5; the calmest real fixture clip: 94 %)


def official_module(name: str, device: str = "cpu"):
    """The LightningModule of the official weights called ``name`` (e.g. ``synchformer-audioset``).

    TODO-merge: check what ``avsync.weights.load_official`` returns; a LightningModule or a Lightning
    checkpoint dict is taken as is, anything else needs adapting here."""
    try:
        from avsync.weights import load_official  # another branch of this round
    except ImportError:
        raise CheckpointError(f"named weights ({name!r}) need avsync.weights, which is not in this install; "
                              "give a checkpoint (--ckpt) or an official weight file (--weights)") from None
    import lightning as L

    from avsync.detect.loading import module_from_checkpoint

    loaded = load_official(name)
    if isinstance(loaded, L.LightningModule):
        return loaded.to(device).eval()
    if isinstance(loaded, dict) and "state_dict" in loaded:
        return module_from_checkpoint(loaded, device, source=name)
    raise CheckpointError(f"avsync.weights.load_official({name!r}) gave a {type(loaded).__name__}; "
                          "avsync.score.seams.official_module does not know how to run it")


def unsynchronisable_reason(frames: np.ndarray, wav: np.ndarray, fps: float, sample_rate: int) -> str | None:
    """``silent_audio``, ``still_video`` or None for a decoded clip (uint8 frames (T, H, W, 3), mono wav).

    TODO-merge: stand-in for avsync.media.checks.unsynchronisable_reason."""
    wav = np.asarray(wav, dtype=np.float64)
    if len(wav) == 0 or np.abs(wav - wav.mean()).max() < SILENT_PEAK:
        return "silent_audio"
    frames = np.asarray(frames)
    if len(frames) > 1:
        diffs = np.abs(np.diff(frames.astype(np.int16), axis=0)).reshape(len(frames) - 1, -1).mean(1)
        if (diffs > STILL_MEAN_DIFF).mean() < STILL_MOVING_FRACTION:
            return "still_video"
    return None


def lse_scorer(model: str | None, weights: str | None, device: str):
    """The LSE-C / LSE-D scorer (syncnet_python's protocol). TODO-merge: avsync.protocols.lse."""
    raise CheckpointError("--metrics lse needs avsync.protocols.lse and avsync.faces, which are not in this "
                          "install")

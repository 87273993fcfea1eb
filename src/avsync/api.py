"""The Python API: ``avsync.load(...)`` -> a model with ``.predict(path)``, and ``avsync.score(...)``.

    import avsync
    model = avsync.load("run/final.ckpt")         # a checkpoint, an official file, or a name
    result = model.predict("clip.mp4")
    print(result.verdict, result.offset_sec, result.confidence)
    rows = avsync.score(["videos/"], metrics="offset", ckpt="run/final.ckpt", out="results.csv")

``predict`` decodes and decides exactly as ``avsync detect`` (same crops, same decision); ``score``
is the runner of ``avsync score`` (same rows, same CSV, resumable).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Prediction", "SyncModel", "load", "score"]


@dataclass
class Prediction:
    """The offset of one file. ``offset_sec`` > 0: the audio leads (it is heard before the picture that
    makes it); ``verdict`` says it in words. When the file cannot be synchronised, the offset fields are
    None and ``reason`` is the code (``too_short``, ``silent_audio``, ``still_video``, ``no_audio``,
    ``no_face`` ...) with ``error`` the message. Face-crop models (SyncNet, VocaLiST, DiVAS face) answer
    per face track: ``tracks`` lists them, the offset is the ``active_track``'s (the face whose lips
    sync best)."""

    path: str
    offset_sec: float | None = None
    offset_frames: int | None = None
    verdict: str | None = None
    confidence: float | None = None
    confidence_kind: str | None = None
    alternatives: list[dict] = field(default_factory=list)
    reason: str | None = None
    error: str | None = None
    active_track: int | None = None  # face-crop models: the face track the answer is from
    tracks: list[dict] = field(default_factory=list)  # face-crop models: every face track's answer

    @property
    def ok(self) -> bool:
        return self.reason is None

    def as_dict(self) -> dict:
        return asdict(self)


class SyncModel:
    """A loaded offset model; :meth:`predict` runs it on a video file."""

    def __init__(self, module, max_crops: int | None = 8, faces=None):
        from avsync.faces.model_input import FaceOptions
        from avsync.score.metrics import OffsetMetric

        self.module = module
        if isinstance(faces, bool):  # faces=False: the centre crop even for face-crop models
            faces = FaceOptions(enabled=faces)
        self._metric = OffsetMetric(module, max_crops=max_crops, faces=faces)

    @property
    def fps(self) -> float:
        return self._metric.detector.spec.fps

    def predict(self, path: str | Path) -> Prediction:
        """The offset of ``path``; a file that cannot be scored gives a Prediction with ``reason``."""
        from avsync.score.reasons import failure

        path = str(path)
        try:
            row = self._metric.compute(path, self._metric.decode(path))
        except Exception as err:  # noqa: BLE001 - every failure of a file is a result with a reason
            code, message = failure(err)
            return Prediction(path, reason=code, error=message)
        tracks = row.pop("offset_tracks", [])
        return Prediction(path, **row, tracks=tracks)


def load(name_or_path: str | Path, *, model: str | None = None, device: str = "auto",
         max_crops: int | None = 8, faces=None) -> SyncModel:
    """A model from a checkpoint of this suite (``avsync fit``/``avsync convert``), an official weight
    file (``model=`` says which: ``synchformer``, ``sparsesync``, ``syncnet``, ``vocalist``), or the
    name of official weights. ``device="auto"`` takes the GPU when there is one. ``faces``: face
    tracks for face-crop models (an :class:`avsync.faces.model_input.FaceOptions`; ``False`` keeps
    the centre crop; default on, syncnet_python's limits). Raises CheckpointError (a ValueError)
    when the file or name gives no model."""
    from avsync.detect.loading import CheckpointError
    from avsync.score.metrics import ModelChoice, load_choice
    from avsync.score.runner import resolve_device

    device = resolve_device(device)
    text = str(name_or_path)
    if Path(text).exists():
        choice = ModelChoice(weights=f"{model}:{text}") if model else ModelChoice(ckpt=text)
    elif "/" in text or Path(text).suffix in (".ckpt", ".pt", ".pth"):  # meant as a file
        raise CheckpointError(f"{text}: no such file")
    else:
        choice = ModelChoice(model=text)
    return SyncModel(load_choice(choice, device), max_crops=max_crops, faces=faces)


def score(paths, metrics="offset", *, ckpt=None, weights=None, model=None, out=None, json_out=None,
          workers: int = 0, device: str = "auto", progress: bool = False, **options) -> list[dict]:
    """``avsync score`` from Python: rows (dicts) for every input, failures included. ``ckpt``,
    ``weights`` and ``model`` are one value for every metric or a dict {metric: value}; ``out`` makes
    the run resumable (a CSV). ``workers=0`` decodes in this process (notebook-friendly); more decode
    ahead in forked processes. Other options as :func:`avsync.score.runner.run_score`."""
    from avsync.score.metrics import ModelChoice
    from avsync.score.runner import run_score

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]

    def pick(value, name):
        return value.get(name) if isinstance(value, dict) else value

    choices = {n: ModelChoice(ckpt=pick(ckpt, n), weights=pick(weights, n), model=pick(model, n)) for n in names}
    return run_score([str(p) for p in paths], names, choices=choices, out=out, json_out=json_out, workers=workers,
                     device=device, progress=progress, **options)

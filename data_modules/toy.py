"""The embedded default data set: synthetic talking heads (``dense``) or sparse events (``sparse``)
written as real H.264/AAC mp4 files by :mod:`avsync.toy.generate` and read like any dataset."""
from __future__ import annotations

import json
from pathlib import Path

from avsync.offsets import key_for
from avsync.toy.generate import default_cache_dir, generate_toy_set, read_index, set_name
from avsync.toy.render import frame_size

from .base import AVSyncDataModule, ClipRecord

__all__ = ["ToyAVDataModule", "SPARSE_EVENT_CLASSES", "sparse_event_class"]

#: the sparse variant's "dataset classes": how many sound events the clip holds (sparser = harder),
#: standing in for VGGSound-Sparse's sound classes in the per-class plots
SPARSE_EVENT_CLASSES = ("0-1 events", "2 events", "3 events", "4 events", "5+ events")


def sparse_event_class(meta_path: Path) -> int | None:
    """Index in :data:`SPARSE_EVENT_CLASSES` of a sparse clip, from its side file's event times."""
    try:
        events = len(json.loads(Path(meta_path).read_text()).get("event_times", []))
    except (OSError, ValueError):
        return None
    return min(max(events - 1, 0), len(SPARSE_EVENT_CLASSES) - 1)


class ToyAVDataModule(AVSyncDataModule):
    """Toy set of ``num_train`` / ``num_valid`` / ``num_test`` clips of ``clip_duration_sec``.

    ``root`` is the cache folder of toy sets (default ``$AVSYNC_CACHE_DIR/toy`` or
    ``~/.cache/avsync/toy``); the set itself lives in a sub-folder named after its variant,
    frame rate, size and seed. ``prepare_data`` writes it once (later calls return at once);
    ``source_fps`` / ``source_size`` are the rate and size of the files, independent of what the
    model consumes (its InputSpec). Every other argument is :class:`AVSyncDataModule`'s.
    """

    def __init__(
        self,
        variant: str = "dense",
        root: str | None = None,
        num_train: int = 256,
        num_valid: int = 64,
        num_test: int = 64,
        generator_seed: int = 0,
        source_fps: float = 25.0,
        source_size: int | None = None,
        clip_duration_sec: float = 10.0,
        generator_workers: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(root=root, **kwargs)
        self.variant = variant
        self.num_clips = {"train": int(num_train), "valid": int(num_valid), "test": int(num_test)}
        self.generator_seed = int(generator_seed)
        self.source_fps = float(source_fps)
        self.source_size = source_size
        self.clip_duration_sec = float(clip_duration_sec)
        self.generator_workers = int(generator_workers)

    @property
    def cache_root(self) -> Path:
        return Path(self.root) if self.root else default_cache_dir() / "toy"

    @property
    def set_dir(self) -> Path:
        size = frame_size(self.variant, self.source_size)
        return self.cache_root / set_name(self.variant, self.source_fps, size, self.generator_seed,
                                          self.clip_duration_sec)

    @property
    def classes(self) -> list[str]:
        """Dataset classes for the per-class accuracy: the sparse set's event counts (none for the others)."""
        return list(SPARSE_EVENT_CLASSES) if self.variant == "sparse" else []

    def prepare_data(self) -> None:
        generate_toy_set(
            self.cache_root, self.variant, dict(self.num_clips), seed=self.generator_seed,
            duration_sec=self.clip_duration_sec, fps=self.source_fps, size=self.source_size,
            workers=self.generator_workers, progress=True,
        )

    def list_records(self, split: str) -> list[ClipRecord]:
        set_dir = self.set_dir
        if not (set_dir / "index.csv").exists():
            raise RuntimeError(f"toy set {set_dir} is not written yet: call prepare_data() first")
        rows = [r for r in read_index(set_dir) if r["split"] == split][: self.num_clips.get(split, 0)]
        return [
            ClipRecord(
                key=key_for(r["path"], root=set_dir), path=Path(r["path"]),
                duration_sec=r["duration_sec"], split=split, extra=self._extra(r),
            )
            for r in rows
        ]

    def _extra(self, row: dict) -> dict:
        extra = {"variant": row["variant"]}
        if row["variant"] == "sparse":
            extra["class_index"] = sparse_event_class(Path(row["path"]).with_suffix(".json"))
        return extra

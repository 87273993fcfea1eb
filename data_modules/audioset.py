"""AudioSet (Synchformer's pre-training set, SparseSync's baseline data): 10 s YouTube clips.

Layout: clips named ``<ytid>_<start_ms>_<end_ms>.mp4`` anywhere under ``root`` (flat, or in
sub-folders such as ``unbalanced_train_segments/``; found by one recursive listing). Clip keys
are the file stems, as for VGGSound.

Splits come from the official segment lists when they are given or found in ``root``
(``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``, ``eval_segments.csv``:
``# comment`` lines, then ``YTID, start_seconds, end_seconds, "positive_labels"``):

* ``test``: the eval segments;
* ``valid``: a seeded hold-out of ``valid_fraction`` of the *videos* of the train segments
  (ids sorted, shuffled with ``random.Random(split_seed)``);
* ``train``: the other train segments.

Without lists every clip on disk is split by video id 8:1:1 (:func:`~.listing.seeded_split`).
Listed segments that are not on disk (AudioSet copies always lack part of YouTube) are counted in
``missing`` and logged once. ``extra["labels"]`` holds a clip's label ids when a list gives them.
"""
from __future__ import annotations

import csv
import os
import random
from pathlib import Path

from .base import AVSyncDataModule, ClipRecord
from .listing import SPLITS, seeded_split

__all__ = ["AudioSetDataModule", "read_segments_csv", "AUDIOSET_LISTS"]

AUDIOSET_LISTS = {
    "train": ("balanced_train_segments.csv", "unbalanced_train_segments.csv"),
    "test": ("eval_segments.csv",),
}


def read_segments_csv(path: str | os.PathLike) -> dict[str, str]:
    """``{clip id: positive labels}`` of an AudioSet segment list, in file order."""
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for i, fields in enumerate(csv.reader(f, skipinitialspace=True)):
            if not fields or fields[0].lstrip().startswith("#"):
                continue
            if len(fields) < 3:
                raise ValueError(f"{path}:{i + 1}: expected YTID, start_seconds, end_seconds, labels")
            ytid, start, end = (x.strip() for x in fields[:3])
            try:
                start_ms, end_ms = round(float(start) * 1000), round(float(end) * 1000)
            except ValueError:
                raise ValueError(f"{path}:{i + 1}: start/end {start!r}, {end!r} are not numbers") from None
            out[f"{ytid}_{start_ms}_{end_ms}"] = fields[3].strip() if len(fields) > 3 else ""
    return out


class AudioSetDataModule(AVSyncDataModule):
    """AudioSet clips; see the module docstring.

    Args:
        root: folder of the clips (searched recursively).
        segment_csvs: ``{"train": [...], "test": [...]}`` segment lists; default: the official
            file names, looked up in ``root``. An empty mapping splits the clips on disk instead.
        valid_fraction: share of the train videos held out for validation.
        split_seed: seed of the hold-out / of the split by video id.
        **kwargs: :class:`AVSyncDataModule`'s.
    """

    def __init__(
        self,
        root: str | None = None,
        segment_csvs: dict[str, list[str]] | None = None,
        valid_fraction: float = 0.01,
        split_seed: int = 1337,
        **kwargs,
    ) -> None:
        super().__init__(root=root, **kwargs)
        if not 0 <= valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
        self.segment_csvs = segment_csvs
        self.valid_fraction = float(valid_fraction)
        self.split_seed = int(split_seed)
        self._on_disk: dict[str, str] | None = None
        self._lists: dict[str, dict[str, str]] | None = None

    @property
    def data_dir(self) -> Path:
        if not self.root:
            raise ValueError("AudioSetDataModule needs root= (the folder of <ytid>_<start_ms>_<end_ms>.mp4 clips)")
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"AudioSet clip folder {root} does not exist")
        return root

    def on_disk(self) -> dict[str, str]:
        """``{clip id: path relative to root}`` of every ``.mp4`` under root (listed once)."""
        if self._on_disk is None:
            found: dict[str, str] = {}
            for folder, _, files in os.walk(self.data_dir):
                rel_dir = os.path.relpath(folder, self.data_dir)
                for name in files:
                    if name.endswith(".mp4") and not name.startswith("."):
                        found.setdefault(name[:-4], name if rel_dir == "." else f"{rel_dir}/{name}")
            self._on_disk = dict(sorted(found.items()))
        return self._on_disk

    def lists(self) -> dict[str, dict[str, str]]:
        """``{"train": {clip: labels}, "test": {...}}`` from the segment lists ({} without any)."""
        if self._lists is None:
            if self.segment_csvs is not None:
                files = {k: [Path(p) for p in v] for k, v in self.segment_csvs.items()}
            else:
                files = {k: [self.data_dir / n for n in names if (self.data_dir / n).is_file()]
                         for k, names in AUDIOSET_LISTS.items()}
            self._lists = {}
            for split, paths in files.items():
                if split not in ("train", "test"):
                    raise ValueError(f"segment_csvs: split {split!r} is not 'train' or 'test'")
                if paths:
                    self._lists[split] = {c: l for p in paths for c, l in read_segments_csv(p).items()}
        return self._lists

    def split_clip_ids(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use {SPLITS}")
        lists = self.lists()
        if not lists:  # no segment lists: split the clips on disk by video id
            by_video: dict[str, list[str]] = {}
            for clip in self.on_disk():
                by_video.setdefault(clip[:11], []).append(clip)
            ids = seeded_split(by_video, self.split_seed, {"train": 8.0, "valid": 1.0, "test": 1.0})[split]
            return [c for v in sorted(ids) for c in by_video[v]]
        if split == "test":
            return list(lists.get("test", {}))
        train = list(lists.get("train", {}))
        videos = sorted({c[:11] for c in train})
        random.Random(self.split_seed).shuffle(videos)
        held = set(videos[: int(len(videos) * self.valid_fraction)])
        return [c for c in train if (c[:11] in held) == (split == "valid")]

    def list_records(self, split: str) -> list[ClipRecord]:
        ids, disk = self.split_clip_ids(split), self.on_disk()
        labels = {**self.lists().get("train", {}), **self.lists().get("test", {})}
        present = [disk[c] for c in ids if c in disk]
        missing = [c for c in ids if c not in disk]
        source = "the AudioSet segment lists" if self.lists() else "the split of the clips on disk"

        def describe(rel: str) -> dict:
            clip = Path(rel).stem
            return {"extra": {"ytid": clip[:11], **({"labels": labels[clip]} if clip in labels else {})}}

        return self.records_under(split, self.data_dir, present, missing, source, describe)

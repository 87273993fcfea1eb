"""Acappella (Montesinos et al. 2021): ~46 h of solo singing, VocaLiST's singing-voice set.

Layout: one folder per split, performances grouped by language group, face-cropped clips::

    <root>/<split folder>/[<language group>/]<performance>.mp4    (any depth below the split folder)

``split_dirs`` maps the splits to those folders; the default follows the dataset's own names:
``train`` -> ``train``, ``valid`` -> ``val_seen``, ``test`` -> ``test_unseen`` (VocaLiST tests on
the "unseen-unheard" performances: 83 of them). ``split_files`` gives a split as a list of clip
paths relative to ``root`` instead (absent ones are counted in ``missing`` and logged once).
Clip keys are those relative paths without the extension; ``extra["language"]`` is the first
folder below the split folder, when there is one.

Acappella clips are face crops: ``InputSpec(crop="mouth")`` takes their lower half (48x96 from a
96 px crop). VocaLiST counts a prediction correct within ±5 frames here (see the metric).
"""
from __future__ import annotations

import os
from pathlib import Path

from .base import AVSyncDataModule, ClipRecord
from .listing import SPLITS, check_split_files, read_split_file

__all__ = ["AcappellaDataModule", "ACAPPELLA_SPLIT_DIRS"]

ACAPPELLA_SPLIT_DIRS = {"train": "train", "valid": "val_seen", "test": "test_unseen"}


class AcappellaDataModule(AVSyncDataModule):
    """Acappella performances; see the module docstring.

    Args:
        root: the dataset folder (holding the split folders).
        split_dirs: ``{split: folder under root}`` (default :data:`ACAPPELLA_SPLIT_DIRS`).
        split_files: ``{split: file}`` of clip paths relative to root, overriding a folder.
        max_source_sec: None: the whole performance is usable (they are minutes long).
        **kwargs: :class:`AVSyncDataModule`'s.
    """

    def __init__(
        self,
        root: str | None = None,
        split_dirs: dict[str, str] | None = None,
        split_files: dict[str, str] | None = None,
        max_source_sec: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(root=root, max_source_sec=max_source_sec, **kwargs)
        self.split_dirs = {**ACAPPELLA_SPLIT_DIRS, **(split_dirs or {})}
        self.split_files = check_split_files(split_files)

    @property
    def data_dir(self) -> Path:
        if not self.root:
            raise ValueError("AcappellaDataModule needs root= (the folder holding "
                             + "/, ".join(sorted(set(self.split_dirs.values()))) + "/)")
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"Acappella folder {root} does not exist")
        return root

    def list_records(self, split: str) -> list[ClipRecord]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use {SPLITS}")
        root = self.data_dir
        if split in self.split_files:
            rels = [k + ".mp4" for k in read_split_file(self.split_files[split])]
            present = [r for r in rels if (root / r).is_file()]
            missing = [r[:-4] for r in rels if not (root / r).is_file()]
            source = self.split_files[split]
        else:
            folder = root / self.split_dirs[split]
            present, missing, source = sorted(self._clips_under(folder)), [], str(folder)
        split_dir = self.split_dirs.get(split, "")

        def describe(rel: str) -> dict:
            parts = Path(rel).parts
            inner = parts[1:] if parts and parts[0] == split_dir else parts
            return {"extra": {"language": inner[0]} if len(inner) > 1 else {}}

        return self.records_under(split, root, present, missing, source, describe)

    def _clips_under(self, folder: Path) -> list[str]:
        if not folder.is_dir():
            return []
        out = []
        for where, _, files in os.walk(folder):
            rel_dir = os.path.relpath(where, self.data_dir)
            out += [f"{rel_dir}/{f}" for f in files if f.endswith(".mp4") and not f.startswith(".")]
        return out

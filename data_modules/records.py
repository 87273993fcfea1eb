"""One source clip of a split (:class:`ClipRecord`), and the skip lists that leave clips out."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from avsync.offsets import key_for

__all__ = ["ClipRecord", "class_index_of", "read_skip_list", "is_skipped"]


@dataclass
class ClipRecord:
    """One source clip of a split.

    ``key`` is the clip id of the fixed-offset files (:func:`avsync.offsets.key_for`, e.g.
    ``pretrain/C8zY0oAdQrs/00018`` or ``3qesirWAGt4_20000_30000``). ``duration_sec`` is the
    usable length of the clip; ``None`` makes the data module probe the file in ``setup``.
    """

    key: str
    path: Path
    duration_sec: float | None
    split: str
    label: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.key = key_for(self.key)


def class_index_of(record: ClipRecord) -> int:
    """``record.extra["class_index"]`` (set by data modules with classes), −1 for a clip without one."""
    index = record.extra.get("class_index")
    return -1 if index is None else int(index)



def read_skip_list(path: str | os.PathLike) -> set[str]:
    """Clip keys of a skip list: one clip per line (id, relative or absolute path); ``#`` comments.

    This is the format of the authors' filter lists (``filtered_examples_*``): pass them as
    ``skip_list`` (one file or several) to leave out the clips they filtered."""
    keys = set()
    for line in Path(path).read_text().splitlines():
        fields = line.split("#", 1)[0].replace(",", " ").split()
        if fields:
            keys.add(key_for(fields[0]))
    return keys


def is_skipped(record: ClipRecord, skip: set[str]) -> bool:
    if not skip:
        return False
    if record.key in skip or key_for(record.path) in skip:
        return True
    return any(s.endswith("/" + record.key) for s in skip)

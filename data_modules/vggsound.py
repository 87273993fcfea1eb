"""VGGSound and VGGSound-Sparse (SparseSync / Synchformer).

Layout: one folder of 10 s clips named ``<ytid>_<start_ms>_<end_ms>.mp4`` (SparseSync's
preprocessing: ``h264_video_25fps_256side_16000hz_aac/``, H.264 25 fps, short side 256, AAC
16 kHz). ``root`` is that folder or a folder that contains it. Clip keys are the file stems
(``3qesirWAGt4_20000_30000``), the keys of the official fixed-offset files.

Labels and splits come from the official ``vggsound.csv`` (no header; columns ``ytid,
start_sec, label, split`` with split ``train``/``test``; a clip is
``<ytid>_<start*1000>_<(start+10)*1000>``). By default it is looked up as ``vggsound.csv`` in
``root``, in the clip folder, or beside it; ``meta_csv`` names it explicitly.

Splits:

* ``test``: the csv's ``test`` rows; ``train``: its ``train`` rows minus ``valid``.
* ``valid``: a seeded held-out part of train, drawn as Synchformer's ``dataset/vggsound.py``
  (``make_split_files``) does: for every class, the sorted train video ids of that class are
  shuffled with a fresh ``random.Random(split_seed)`` and the first *k* are held out, *k* = the
  number of test video ids of that class (so valid has test's class distribution). Computed
  from the csv alone (not from what is on disk), with seed 1337 it reproduces the official
  split for the same csv.
* ``split_files[split]`` (one clip id per line, e.g. the official ``vggsound_test.txt``)
  overrides a split; the other splits then leave out the videos it names.

Clips of a split that are not on disk (VGGSound always misses part of YouTube) are counted in
``missing[split]`` and logged once. Durations are probed once and cached
(:class:`~avsync.data_modules.listing.ProbeCache`); ``probe_durations=False`` takes the nominal
length from the file name instead (bad clips are then met, reported and replaced at load time).

VGGSound-Sparse keeps the 12 classes flagged ``is_sparse == y`` in ``picked_sparse_classes.csv``
(shipped in ``data/``); ``clean=True`` restricts the test split to the *Clean* subset of
``vggsound_sparse_clean.csv`` (rows with ``vid_is_missing == 0`` and ``is_sync == 1``) and, unless
``fixed_offsets_csv["test"]`` is given, evaluates it at the annotated fixed offsets of
``vggsound_sparse_clean_fixed_offsets.csv`` (only its ``is_sync == 1`` rows, as the official
``VGGSoundSparsePickedCleanTestFixedOffsets``). The three CSVs come from the public Synchformer
repository (MIT licence).
"""
from __future__ import annotations

import csv
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from avsync.offsets import CropPlan, FixedOffsets, get_grid, key_for

from .base import AVSyncDataModule, ClipRecord
from .listing import SPLITS, check_split_files, read_split_file

__all__ = [
    "VGGSoundDataModule",
    "VGGSoundSparseDataModule",
    "VGGSoundSyncDataModule",
    "read_class_list",
    "VGGSoundRow",
    "clip_id",
    "read_vggsound_csv",
    "read_sparse_classes",
    "read_sparse_clean",
    "valid_holdout",
    "PACKAGE_DATA",
]

log = logging.getLogger(__name__)

VGGSOUND_VIDEO_DIR = "h264_video_25fps_256side_16000hz_aac"
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
SPARSE_CLASSES_CSV = PACKAGE_DATA / "picked_sparse_classes.csv"
SPARSE_CLEAN_CSV = PACKAGE_DATA / "vggsound_sparse_clean.csv"
SPARSE_CLEAN_FIXED_OFFSETS_CSV = PACKAGE_DATA / "vggsound_sparse_clean_fixed_offsets.csv"
SYNC_CLASSES_CSV = PACKAGE_DATA / "vggsound_sync_classes.csv"
CLIP_SEC = 10
_CLIP_NAME = re.compile(r"^(?P<ytid>.{11})_(?P<start>\d+)_(?P<end>\d+)$")


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------
def clip_id(ytid: str, start_sec: float | str) -> str:
    """``<ytid>_<start_ms>_<end_ms>`` of a 10 s VGGSound clip starting at ``start_sec``."""
    start_ms = int(round(float(start_sec) * 1000))
    return f"{ytid}_{start_ms}_{start_ms + CLIP_SEC * 1000}"


@dataclass(frozen=True)
class VGGSoundRow:
    ytid: str
    start_sec: float
    label: str
    split: str

    @property
    def clip_id(self) -> str:
        return clip_id(self.ytid, self.start_sec)


def read_vggsound_csv(path: str | Path) -> list[VGGSoundRow]:
    """Rows of ``vggsound.csv`` (``ytid,start_sec,label,split``; labels may be quoted and hold
    commas). A header line, if any, is skipped."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for i, fields in enumerate(csv.reader(f, quotechar='"', skipinitialspace=True)):
            if not fields or not "".join(fields).strip():
                continue
            if len(fields) < 4:
                raise ValueError(f"{path}:{i + 1}: expected ytid,start_sec,label,split, got {fields}")
            ytid, start, label, split = (x.strip() for x in fields[:4])
            try:
                start_sec = float(start)
            except ValueError:
                if i == 0:
                    continue  # a header
                raise ValueError(f"{path}:{i + 1}: start_sec {start!r} is not a number") from None
            rows.append(VGGSoundRow(ytid, start_sec, label, split))
    return rows


def valid_holdout(rows: Sequence[VGGSoundRow], seed: int) -> set[str]:
    """Video ids of the validation split held out of train (Synchformer's protocol).

    Per class (sorted by name), the sorted train video ids of the class are shuffled with
    ``random.Random(seed)`` (a fresh generator per class) and the first *k* are taken, *k* =
    the number of test video ids of that class. A video's class is that of its last row.
    """
    train = {r.ytid for r in rows if r.split == "train"}
    test = {r.ytid for r in rows if r.split == "test"}
    video_label = {r.ytid: r.label for r in rows}
    test_counts = Counter(video_label[v] for v in test)
    by_class: dict[str, list[str]] = {}
    for vid in sorted(train):
        by_class.setdefault(video_label[vid], []).append(vid)
    held: set[str] = set()
    for label in sorted({r.label for r in rows}):
        vids = by_class.get(label, [])
        random.Random(int(seed)).shuffle(vids)
        held.update(vids[: test_counts.get(label, 0)])
    return held


def read_sparse_classes(path: str | Path = SPARSE_CLASSES_CSV) -> list[str]:
    """Sorted classes flagged ``is_sparse == y`` in ``picked_sparse_classes.csv`` (tab-separated
    ``class, is_sparse``)."""
    classes = set()
    with open(path, newline="", encoding="utf-8") as f:
        for fields in csv.reader(f, delimiter="\t", quotechar='"'):
            if len(fields) >= 2 and fields[1].strip().lower() == "y":
                classes.add(fields[0].strip())
    if not classes:
        raise ValueError(f"{path}: no class has is_sparse == y")
    return sorted(classes)


def read_sparse_clean(path: str | Path = SPARSE_CLEAN_CSV) -> set[str]:
    """Clip ids of VGGSound-Sparse *Clean*: rows of ``vggsound_sparse_clean.csv`` with
    ``vid_is_missing == 0`` and ``is_sync == 1``."""
    out = set()
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["vid_is_missing"].strip() == "0" and row["is_sync"].strip() == "1":
                out.add(clip_id(row["video_id"].strip(), row["start_sec"]))
    return out


def read_class_list(path: str | Path = SYNC_CLASSES_CSV) -> list[str]:
    """Class names of a one-column csv with a ``class`` header (labels with commas quoted)."""
    with open(path, newline="", encoding="utf-8") as f:
        classes = [row["class"].strip() for row in csv.DictReader(f) if row.get("class", "").strip()]
    if not classes:
        raise ValueError(f"{path}: no classes (expected a 'class' column)")
    if len(set(classes)) != len(classes):
        raise ValueError(f"{path}: a class is listed twice")
    return classes


def _nominal_duration(key: str) -> float | None:
    m = _CLIP_NAME.match(key)
    return (int(m["end"]) - int(m["start"])) / 1000.0 if m else None


# --------------------------------------------------------------------------------------------
# VGGSound
# --------------------------------------------------------------------------------------------
class VGGSoundDataModule(AVSyncDataModule):
    """VGGSound clips with their class labels; see the module docstring.

    Args:
        root: the clip folder (``h264_video_25fps_256side_16000hz_aac/``) or a folder holding it.
        meta_csv: the official ``vggsound.csv``; default: looked up in/around ``root``.
        split_files: ``{split: file}`` of clip ids (one per line) overriding the csv's splits.
        split_seed: seed of the validation hold-out (1337, as in the official code).
        probe_durations: probe (and cache) every clip's duration; False: nominal 10 s from the name.
        **kwargs: :class:`AVSyncDataModule`'s (batch size, workers, fixed_offsets_csv, ...).

    ``classes`` is the sorted class list, ``records[i].extra["class_index"]`` a record's index
    in it; ``missing[split]`` counts the split's clips absent on disk.
    """

    def __init__(
        self,
        root: str | None = None,
        meta_csv: str | None = None,
        split_files: dict[str, str] | None = None,
        split_seed: int = 1337,
        probe_durations: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(root=root, **kwargs)
        self.meta_csv = meta_csv
        self.split_files = check_split_files(split_files)
        self.split_seed = int(split_seed)
        self.probe_durations = bool(probe_durations)
        self._rows: list[VGGSoundRow] | None = None
        self._on_disk: set[str] | None = None
        self._held: set[str] | None = None
        self._unknown: dict[str, int] = {}
        self._warned_unknown: set[str] = set()

    # -- layout -----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The clip folder: ``<root>/h264_video_25fps_256side_16000hz_aac`` if present, else root."""
        if not self.root:
            raise ValueError("VGGSoundDataModule needs root= (the folder of <ytid>_<start_ms>_<end_ms>.mp4 "
                             f"clips, or the folder holding {VGGSOUND_VIDEO_DIR}/)")
        root = Path(self.root).expanduser()
        if (root / VGGSOUND_VIDEO_DIR).is_dir():
            return root / VGGSOUND_VIDEO_DIR
        if not root.is_dir():
            raise FileNotFoundError(f"VGGSound clip folder {root} does not exist")
        return root

    @property
    def meta_path(self) -> Path:
        if self.meta_csv:
            return Path(self.meta_csv).expanduser()
        root = Path(self.root).expanduser() if self.root else None
        candidates = [root / "vggsound.csv", self.data_dir / "vggsound.csv", self.data_dir.parent / "vggsound.csv"]
        for path in candidates:
            if path.is_file():
                return path
        raise FileNotFoundError("vggsound.csv not found (looked in " + ", ".join(map(str, dict.fromkeys(candidates)))
                                + "); pass meta_csv=")

    def rows(self) -> list[VGGSoundRow]:
        """The csv rows (read once)."""
        if self._rows is None:
            self._rows = read_vggsound_csv(self.meta_path)
        return self._rows

    def on_disk(self) -> set[str]:
        """Clip ids of the ``.mp4`` files in the clip folder (listed once)."""
        if self._on_disk is None:
            self._on_disk = {p.name[:-4] for p in self.data_dir.iterdir() if p.name.endswith(".mp4")}
        return self._on_disk

    @property
    def classes(self) -> list[str]:
        """Sorted class names of this data set (every label of the csv)."""
        return sorted({r.label for r in self.rows()})

    def keep_row(self, row: VGGSoundRow) -> bool:
        """Whether a csv row belongs to this data set at all (every row here; subclasses filter)."""
        return True

    # -- splits -----------------------------------------------------------------------------
    def split_clip_ids(self, split: str) -> list[str]:
        """Clip ids of ``split`` before the on-disk check, in csv (or split-file) order."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use {SPLITS}")
        if split in self.split_files:
            return read_split_file(self.split_files[split])
        rows = self.rows()
        named = {key_for(k)[:11] for f in self.split_files.values() for k in read_split_file(f)}
        if split == "test":
            wanted = [r for r in rows if r.split == "test"]
        else:
            if self._held is None:
                self._held = valid_holdout(rows, self.split_seed)
            held = self._held
            in_valid = (lambda r: r.ytid in held) if split == "valid" else (lambda r: r.ytid not in held)
            wanted = [r for r in rows if r.split == "train" and in_valid(r)]
        return list(dict.fromkeys(r.clip_id for r in wanted if r.ytid not in named))

    def list_records(self, split: str) -> list[ClipRecord]:
        by_clip = {r.clip_id: r for r in self.rows()}
        index = {c: i for i, c in enumerate(self.classes)}
        ids = self.split_clip_ids(split)
        unknown = [c for c in ids if c not in by_clip]
        self._unknown[split] = len(unknown)
        if unknown and split not in self._warned_unknown:
            self._warned_unknown.add(split)
            log.warning("%s: %d clip(s) of %s are not in %s (no label; skipped), e.g. %s", split,
                        len(unknown), self.split_files.get(split), self.meta_path, ", ".join(unknown[:3]))
        ids = [c for c in ids if c in by_clip and self.keep_row(by_clip[c])]
        present = self.on_disk()
        missing = [c for c in ids if c not in present]
        rels = [c + ".mp4" for c in ids if c in present]
        durations = None if self.probe_durations else {r: _nominal_duration(r[:-4]) for r in rels}

        def describe(rel: str) -> dict:
            row = by_clip[rel[:-4]]
            return {"label": row.label, "extra": {"ytid": row.ytid, "class_index": index.get(row.label)}}

        return self.records_under(split, self.data_dir, rels, missing,
                                  self.split_files.get(split, self.meta_path.name), describe, durations)

    def filter_records(self, split: str, records: Iterable[ClipRecord]) -> list[ClipRecord]:
        records = super().filter_records(split, records)
        if self._unknown.get(split):
            self.dropped[split]["not_in_meta"] = self._unknown[split]
        return records

    def prepare_data(self) -> None:
        """Probe (and cache) the durations of the splits the running stage needs."""
        if self.probe_durations:
            super().prepare_data()

    # -- fixed offsets ----------------------------------------------------------------------
    def fixed_offsets(self, split: str, records: Sequence[ClipRecord]) -> FixedOffsets:
        """As the base, but a CSV with an ``is_sync`` column (the sparse-clean annotations) only
        contributes its ``is_sync == 1`` rows: the others mark offsets at which the annotators
        found the clip not synchronisable."""
        csv_path = self.fixed_offsets_csv.get(split)
        if not csv_path or not _has_column(csv_path, "is_sync"):
            return super().fixed_offsets(split, records)
        grid = get_grid(self.spec.offset_classes) if self.spec.offset_classes else None
        table: dict[str, list[CropPlan]] = {}
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            column = "path" if "path" in (reader.fieldnames or []) else "video_id"
            for row in reader:
                if row["is_sync"].strip() != "1":
                    continue
                offset = float(row["offset_sec"])
                table.setdefault(key_for(row[column]), []).append(CropPlan(
                    video_start_sec=float(row["vstart_sec"]), offset_sec=offset,
                    duration_sec=self.spec.duration_sec,
                    label=None if grid is None else grid.class_of(offset)))
        durations = {r.key: r.duration_sec for r in records}
        plans = {k: table[k] for k in durations if k in table}
        absent = len(table) - len(plans)
        if absent:
            log.warning("%s: %d of the %d clips of %s are not in this split's records",
                        split, absent, len(table), csv_path)
        return FixedOffsets(plans, seed=self.seed, sampler=self.sampler, durations=durations)


def _has_column(path: str | Path, name: str) -> bool:
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    return name in (h.strip() for h in header)


# --------------------------------------------------------------------------------------------
# VGGSound-Sparse
# --------------------------------------------------------------------------------------------
class VGGSoundSparseDataModule(VGGSoundDataModule):
    """VGGSound-Sparse: the 12 ``is_sparse == y`` classes of ``picked_sparse_classes.csv``.

    Splits are those of :class:`VGGSoundDataModule` (the validation hold-out drawn over all
    classes, as the official code does) restricted to the sparse classes; ``classes`` and
    ``extra["class_index"]`` index the 12 sparse classes.

    Args:
        clean: test on VGGSound-Sparse *Clean* (clips with a synchronisable event, see the module
            docstring); by default at the annotated offsets of the shipped
            ``vggsound_sparse_clean_fixed_offsets.csv`` (pass ``fixed_offsets_csv={"test": ""}``
            for seeded offsets instead).
        sparse_classes_csv / clean_csv: other class list / Clean list (default: the shipped ones).
        **kwargs: :class:`VGGSoundDataModule`'s.
    """

    def __init__(
        self,
        clean: bool = False,
        sparse_classes_csv: str | None = None,
        clean_csv: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.clean = bool(clean)
        self.sparse_classes_csv = sparse_classes_csv
        self.clean_csv = clean_csv
        self._sparse = read_sparse_classes(sparse_classes_csv or SPARSE_CLASSES_CSV)
        self._clean_ids = read_sparse_clean(clean_csv or SPARSE_CLEAN_CSV) if self.clean else None
        if self.clean and "test" not in self.fixed_offsets_csv:
            self.fixed_offsets_csv["test"] = str(SPARSE_CLEAN_FIXED_OFFSETS_CSV)

    @property
    def classes(self) -> list[str]:
        return list(self._sparse)

    def keep_row(self, row: VGGSoundRow) -> bool:
        return row.label in self._sparse

    def split_clip_ids(self, split: str) -> list[str]:
        ids = super().split_clip_ids(split)
        if split == "test" and self._clean_ids is not None:
            ids = [c for c in ids if c in self._clean_ids]
        return ids


# --------------------------------------------------------------------------------------------
# VGGSound-Sync
# --------------------------------------------------------------------------------------------
class VGGSoundSyncDataModule(VGGSoundDataModule):
    """VGGSound-Sync (AVST, BMVC 2021): the 160 VGGSound classes listed at the end of the AVST
    paper (shipped as ``data/vggsound_sync_classes.csv``, every name checked against the
    VGGSound class list), with VGGSound's splits restricted to them (the paper's 95k train /
    5k test). AVST evaluates at 5 fps: that is its InputSpec's frame rate, not a data setting.

    Args:
        classes_csv: another class list (one ``class`` column); default: the shipped one.
        **kwargs: :class:`VGGSoundDataModule`'s.
    """

    def __init__(self, classes_csv: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.classes_csv = classes_csv
        self._sync_classes = sorted(read_class_list(classes_csv or SYNC_CLASSES_CSV))
        self._sync_set = set(self._sync_classes)

    @property
    def classes(self) -> list[str]:
        return list(self._sync_classes)

    def keep_row(self, row: VGGSoundRow) -> bool:
        return row.label in self._sync_set

"""LRS3 as preprocessed by SparseSync / Synchformer, and LRS3-multfps (DiVAS).

Layout (``root`` is the folder that holds one or both variants)::

    <root>/h264_uncropped_25fps_256side_16000hz_aac/      variant="full_frame" ("no face crop")
    <root>/h264_orig_strict_crop_25fps_224side_16000hz_aac/  variant="face_crop"
    <root>/h264_orig_strict_crop_origfps_aac/              variant="multfps" (DiVAS: original rates)
        {pretrain,trainval,test}/<ytid>/<utt>.mp4            (+ the LRS3 <utt>.txt beside each clip)

``variant_dir`` names another folder for the chosen variant (e.g. your own ``avsync prepare
--keep-rates`` output).

``root`` may also be the variant folder itself. Clip keys are ``<subset>/<ytid>/<utt>``, the keys
of the official fixed-offset files (``pretrain/C8zY0oAdQrs/00018``; see
:func:`avsync.offsets.key_for`).

Splits (SparseSync / Synchformer protocol: the ``pretrain`` videos split 8:1:1 into
train/valid/test *by video id*, only clips longer than 9 s):

* ``split_files[split]``: a text file with one clip per line, ``pretrain/<ytid>/<utt>`` (the
  official ``lrs3_test.txt``; an extension, a trailing tag after whitespace and ``#`` comments are
  ignored, a bare ``<ytid>/<utt>`` is read as ``pretrain/<ytid>/<utt>``). The file *defines* the
  split: its clips are taken as listed (no 9 s filter; the official lists are already filtered).
  Listed clips that are not on disk are counted (``missing``), logged once, and skipped — a
  local copy may hold only part of the dataset.
* every split without a file is drawn from the video ids present on disk under ``subsets``
  (default ``pretrain``), minus every video id named in any split file (so no video is in two
  splits): ids sorted, shuffled with ``random.Random(split_seed)``, then cut in the order test,
  valid, train with ``int(n * share)`` ids each and the rest for the last one
  (:func:`seeded_split`). With no split files and the defaults (seed 1337, 8:1:1) this is exactly
  the official ``make_split_files`` of Synchformer's ``dataset/lrs.py`` (``hold_out_size =
  int(0.1 * n)``; test first, valid next, train the rest), applied to the ids present on disk.
  Clips of these splits shorter than ``min_duration_sec`` (9 s) are dropped (``dropped[split]
  ["shorter_than_min_duration"]``). The official split was made after the authors' bad-clip
  lists, which are not distributed: to use their exact splits pass their ``lrs3_{train,valid,
  test}.txt`` as ``split_files``.

``subset_splits`` takes splits from LRS3's own subsets instead (e.g. ``{"train": ["pretrain",
"trainval"], "test": ["test"]}``); those splits get no 9 s filter either.

Face crops: with ``InputSpec(crop="face")`` (or ``"mouth"``, VocaLiST's lower half) a
full-frame clip is cropped around the per-frame boxes of its LRS3 ``.txt`` (see
:mod:`.face_boxes`). The boxes are read from the face-crop folder's ``.txt`` when it is there
(the full-frame folder's own ``.txt`` holds whole-frame boxes), else from the clip's. Face-crop
clips already show the face; they are only centre-cropped.

multfps (DiVAS): clips at their original frame rates (23.976 ... 60 fps). The rate of every clip
is probed with its duration; clips above 30 fps are left out of every split, or with
``high_fps_test=True`` they *are* the test split (59.94/60 fps, kept apart as in DiVAS) while
train and valid are drawn from the others.

Durations come from :class:`ProbeCache`: every clip is probed once (header only) and the result
kept in ``$AVSYNC_CACHE_DIR/probe/<folder>-<hash of its path>.json`` (default
``~/.cache/avsync/probe/``), keyed by the clip's path relative to the dataset folder and checked
against its size and mtime, so a 58k-clip dataset is probed once, not at every run.
``prepare_data`` fills the cache for the splits of the running stage (once per node, before the
DDP ranks set up).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .base import AVSyncDataModule, ClipRecord
from .listing import (  # re-exported: the other dataset modules used to import them from here
    SPLITS,
    ProbeCache,
    check_split_files,
    default_probe_cache_dir,
    read_split_file,
    seeded_split,
)

__all__ = [
    "LRS3DataModule",
    "LRS3_VARIANTS",
    "ProbeCache",
    "default_probe_cache_dir",
    "read_split_file",
    "seeded_split",
]

log = logging.getLogger(__name__)

LRS3_VARIANTS = {
    "full_frame": "h264_uncropped_25fps_256side_16000hz_aac",
    "face_crop": "h264_orig_strict_crop_25fps_224side_16000hz_aac",
    "multfps": "h264_orig_strict_crop_origfps_aac",
}
LRS3_SUBSETS = ("pretrain", "trainval", "test")
MAX_NORMAL_FPS = 30.5  # DiVAS: up to 30 fps in train/valid/test; 59.94 and 60 fps apart


# --------------------------------------------------------------------------------------------
# LRS3
# --------------------------------------------------------------------------------------------
class LRS3DataModule(AVSyncDataModule):
    """LRS3 (SparseSync/Synchformer preprocessing: H.264 25 fps, AAC 16 kHz); see the module doc.

    Args:
        root: folder holding the variant folders (or one of those folders).
        variant: ``"full_frame"`` (no face crop, SparseSync's "LRS3 no crop", Synchformer's
            "full scene"), ``"face_crop"`` or ``"multfps"`` (DiVAS, original frame rates).
        variant_dir: the variant's folder name, if it is not the default one.
        split_files: ``{split: file}`` with one ``<subset>/<ytid>/<utt>`` per line, e.g.
            ``{"test": ".../lrs3_test.txt"}``; splits without one are drawn by video id.
        subset_splits: ``{split: [LRS3 subsets]}``: splits made of whole subsets.
        split_seed: seed of the video-id shuffle (1337, as in the official code).
        split_ratios: train:valid:test shares of the drawn split (8:1:1).
        subsets: LRS3 subsets whose videos are split (``pretrain`` in the papers).
        min_duration_sec: drawn splits keep clips strictly longer than this (9 s); None keeps all.
        high_fps_test: multfps only: the test split is the clips above 30 fps (else they are
            left out everywhere).
        stratify_rates: multfps only: the drawn split is made per frame rate (videos grouped by the
            rate of their first clip, rounded: 23.976 → 24, 29.97 → 30), so every split holds the
            rates in the pool's proportions (DiVAS: splits "to keep a balance of frame rates").
        **kwargs: :class:`AVSyncDataModule`'s (batch size, workers, fixed_offsets_csv, probe
            cache, ...).

    After ``setup``: ``missing[split]`` = clips listed in a split file but absent on disk,
    ``dropped[split]`` = clips removed by the filters (with ``missing`` included).
    """

    def __init__(
        self,
        root: str | None = None,
        variant: str = "full_frame",
        variant_dir: str | None = None,
        split_files: dict[str, str] | None = None,
        subset_splits: dict[str, list[str]] | None = None,
        split_seed: int = 1337,
        split_ratios: tuple[float, float, float] = (8.0, 1.0, 1.0),
        subsets: tuple[str, ...] = ("pretrain",),
        min_duration_sec: float | None = 9.0,
        high_fps_test: bool = False,
        stratify_rates: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(root=root, **kwargs)
        if variant not in LRS3_VARIANTS:
            raise ValueError(f"unknown LRS3 variant {variant!r}; expected one of {sorted(LRS3_VARIANTS)}")
        subset_splits = {k: list(v) for k, v in (subset_splits or {}).items()}
        named = list(subsets) + [s for v in subset_splits.values() for s in v]
        bad = [s for s in named if s not in LRS3_SUBSETS]
        if bad:
            raise ValueError(f"unknown LRS3 subset(s) {bad}; expected some of {LRS3_SUBSETS}")
        if set(subset_splits) - set(SPLITS):
            raise ValueError(f"subset_splits has unknown split(s) {sorted(set(subset_splits) - set(SPLITS))}")
        if len(split_ratios) != 3 or min(split_ratios) < 0 or sum(split_ratios) <= 0:
            raise ValueError(f"split_ratios must be three non-negative train:valid:test shares, got {split_ratios}")
        if high_fps_test and variant != "multfps":
            raise ValueError("high_fps_test needs variant='multfps' (the other variants are all 25 fps)")
        self.variant = variant
        self.variant_dir = variant_dir
        self.split_files = check_split_files(split_files)
        self.subset_splits = subset_splits
        self.split_seed = int(split_seed)
        self.split_ratios = dict(zip(("train", "valid", "test"), map(float, split_ratios)))
        self.subsets = tuple(subsets)
        self.min_duration_sec = min_duration_sec
        self.high_fps_test = bool(high_fps_test)
        if stratify_rates and variant != "multfps":
            raise ValueError("stratify_rates needs variant='multfps' (the other variants are all 25 fps)")
        self.stratify_rates = bool(stratify_rates)
        self._listing: dict[tuple[str, ...], dict[str, list[str]]] = {}

    # -- layout -----------------------------------------------------------------------------
    @property
    def folder_name(self) -> str:
        return self.variant_dir or LRS3_VARIANTS[self.variant]

    @property
    def data_dir(self) -> Path:
        """The folder of the chosen variant (``<root>/<variant folder>``, or ``root`` itself)."""
        name = self.folder_name
        if not self.root:
            raise ValueError(f"LRS3DataModule needs root= (the folder that holds {name}/); "
                             "e.g. --data.root /data/lrs3")
        root = Path(self.root).expanduser()
        if (root / name).is_dir():
            return root / name
        if root.name == name and root.is_dir():
            return root
        present = [v for v, d in LRS3_VARIANTS.items() if (root / d).is_dir()]
        hint = f"; present: variant={present}" if present else ""
        other = [v for v, d in LRS3_VARIANTS.items() if root.name == d]
        if other:
            hint = f"; {root} is the variant={other[0]!r} folder (give its parent as root)"
        raise FileNotFoundError(f"LRS3 variant {self.variant!r} not found: no {name}/ under {root}{hint}")

    def listing(self, subsets: Sequence[str] | None = None) -> dict[str, list[str]]:
        """``{ytid: [relative clip paths]}`` of the videos on disk under ``subsets`` (default: the
        module's ``subsets``; listed once).

        A video id present in several subsets is one video: its clips of all of them go together.
        """
        subsets = tuple(subsets or self.subsets)
        if subsets not in self._listing:
            listing: dict[str, list[str]] = {}
            for subset in subsets:
                folder = self.data_dir / subset
                if not folder.is_dir():
                    continue
                with os.scandir(folder) as videos:
                    for vid in videos:
                        if not vid.is_dir():
                            continue
                        with os.scandir(vid.path) as files:
                            clips = [f"{subset}/{vid.name}/{c.name}" for c in files if c.name.endswith(".mp4")]
                        if clips:
                            listing.setdefault(vid.name, []).extend(clips)
            if not listing:
                log.warning("no clips found under %s (subsets %s)", self.data_dir, list(subsets))
            self._listing[subsets] = {v: sorted(c) for v, c in sorted(listing.items())}
        return self._listing[subsets]

    # -- splits -----------------------------------------------------------------------------
    def split_clip_paths(self, split: str) -> tuple[list[str], list[str]]:
        """(relative clip paths of ``split``, keys listed in its split file that are not on disk)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use {SPLITS}")
        if split in self.split_files:
            keys = read_split_file(self.split_files[split], default_subset="pretrain")
            rels = [k + ".mp4" for k in keys]
            present = [r for r in rels if (self.data_dir / r).is_file()]
            have = set(present)
            return present, [r[:-4] for r in rels if r not in have]
        if split in self.subset_splits:
            videos = self.listing(self.subset_splits[split])
            return [c for v in videos for c in videos[v]], []
        listed = {k.split("/")[-2] for f in self.split_files.values()
                  for k in read_split_file(f, "pretrain") if "/" in k}
        videos = self.listing()
        pool = [v for v in videos if v not in listed]
        drawn = [s for s in SPLITS if s not in self.split_files and s not in self.subset_splits
                 and not (s == "test" and self.high_fps_test)]
        ids = self._drawn_ids(pool, videos, drawn)[split]
        return [c for v in sorted(ids) for c in videos[v]], []

    def _drawn_ids(self, pool: list[str], videos: dict[str, list[str]], drawn: list[str]) -> dict[str, list[str]]:
        """The seeded by-video split of ``pool``; with ``stratify_rates`` one per rate group, joined."""
        if not self.stratify_rates:
            return seeded_split(pool, self.split_seed, self.split_ratios, drawn)
        rates = self.probe_cache(self.data_dir).frame_rates([videos[v][0] for v in pool])
        groups: dict[str, list[str]] = {}
        for v in pool:
            rate = rates.get(videos[v][0])
            groups.setdefault("unknown" if rate is None else f"{round(rate)}", []).append(v)
        out: dict[str, list[str]] = {s: [] for s in drawn}
        for key in sorted(groups):
            for name, ids in seeded_split(groups[key], self.split_seed, self.split_ratios, drawn).items():
                out[name].extend(ids)
        return out

    def list_records(self, split: str) -> list[ClipRecord]:
        if self.high_fps_test and split == "test" and split not in self.split_files:
            rels, missing = [c for cs in self.listing().values() for c in cs], []
        else:
            rels, missing = self.split_clip_paths(split)
        if self.variant == "multfps":
            rels = self._by_frame_rate(split, rels)
        source = self.split_files.get(split, "the drawn split")
        return self.records_under(split, self.data_dir, rels, missing, source, self._describe)

    def _by_frame_rate(self, split: str, rels: list[str]) -> list[str]:
        """multfps: the > 30 fps clips form the test split (``high_fps_test``) or are left out."""
        rates = self.probe_cache(self.data_dir).frame_rates(rels)
        high = self.high_fps_test and split == "test"
        return [r for r in rels if r not in rates or rates[r] is None or (rates[r] > MAX_NORMAL_FPS) == high]

    def _describe(self, rel: str) -> dict:
        subset, ytid, _ = rel.split("/", 2)
        extra = {"subset": subset, "ytid": ytid}
        if self.variant == "full_frame":
            boxed = self.data_dir.parent / LRS3_VARIANTS["face_crop"] / (rel[:-4] + ".txt")
            own = self.data_dir / (rel[:-4] + ".txt")
            if boxed.is_file() or own.is_file():
                extra["face_boxes"] = str(boxed if boxed.is_file() else own)
        if self.variant == "multfps":
            extra["fps"] = self.probe_cache(self.data_dir).frame_rates([rel]).get(rel)
        return {"extra": extra}

    def filter_records(self, split: str, records: Iterable[ClipRecord]) -> list[ClipRecord]:
        records = super().filter_records(split, records)
        drawn = split not in self.split_files and split not in self.subset_splits
        if drawn and self.min_duration_sec is not None:
            floor = float(self.min_duration_sec)
            records = self._drop(split, records, lambda r: r.duration_sec <= floor,
                                 "shorter_than_min_duration")
            n = self.dropped[split]["shorter_than_min_duration"]
            if n:
                log.info("%s: dropped %d clip(s) not longer than %g s", split, n, floor)
        return records

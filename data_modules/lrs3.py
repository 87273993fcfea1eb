"""LRS3 as preprocessed by SparseSync / Synchformer, and the helpers the real-dataset modules share.

Layout (``root`` is the folder that holds one or both variants)::

    <root>/h264_uncropped_25fps_256side_16000hz_aac/      variant="full_frame" ("no face crop")
    <root>/h264_orig_strict_crop_25fps_224side_16000hz_aac/  variant="face_crop"
        {pretrain,trainval,test}/<ytid>/<utt>.mp4            (+ the LRS3 <utt>.txt beside each clip)

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

Durations come from :class:`ProbeCache`: every clip is probed once (header only) and the result
kept in ``$AVSYNC_CACHE_DIR/probe/<folder>-<hash of its path>.json`` (default
``~/.cache/avsync/probe/``), keyed by the clip's path relative to the dataset folder and checked
against its size and mtime, so a 58k-clip dataset is probed once, not at every run.
``prepare_data`` fills the cache for the splits of the running stage (once per node, before the
DDP ranks set up).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from avsync.media import MediaError, probe
from avsync.offsets import key_for

from .base import _STAGE_SPLITS, SPLITS, AVSyncDataModule, ClipRecord

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
}
LRS3_SUBSETS = ("pretrain", "trainval", "test")
_CUT_ORDER = ("test", "valid", "train")  # official order: test ids first, then valid, train the rest


# --------------------------------------------------------------------------------------------
# Shared helpers (also used by the VGGSound modules)
# --------------------------------------------------------------------------------------------
def default_probe_cache_dir() -> Path:
    """``$AVSYNC_CACHE_DIR/probe`` or ``~/.cache/avsync/probe``."""
    return Path(os.environ.get("AVSYNC_CACHE_DIR", "~/.cache/avsync")).expanduser() / "probe"


class ProbeCache:
    """Clip durations under one dataset folder, probed once and kept in a small JSON file.

    The file is ``<cache_dir>/<folder name>-<16 hex of sha1(resolved folder path)>.json``:
    ``{"version": 1, "root": ..., "clips": {relative path: [size, mtime_ns, duration or null]}}``.
    An entry is reused while the file keeps its size and mtime; ``null`` marks a clip that could
    not be probed (it is not probed again until it changes; the data module reports it as bad
    media). Writes are atomic (temporary file + rename) and merge with what is on disk, so
    concurrent processes lose no work. An unwritable cache folder only costs a warning.
    """

    VERSION = 1
    SAVE_EVERY = 2000  # clips probed between two writes of the cache file

    def __init__(self, root: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                 workers: int = 4) -> None:
        self.root = Path(root).expanduser().resolve()
        folder = Path(cache_dir).expanduser() if cache_dir else default_probe_cache_dir()
        digest = hashlib.sha1(str(self.root).encode("utf-8")).hexdigest()[:16]
        self.path = folder / f"{self.root.name or 'root'}-{digest}.json"
        self.workers = max(1, int(workers))
        self._entries: dict[str, list] | None = None
        self._warned_write = False

    def durations(self, rel_paths: Iterable[str]) -> dict[str, float | None]:
        """Duration (s) of each clip that exists, None where probing failed; absent files are
        left out of the result (the caller counts them as missing)."""
        entries = self._load()
        out: dict[str, float | None] = {}
        todo: list[tuple[str, list[int]]] = []
        for rel in rel_paths:
            try:
                st = os.stat(self.root / rel)
            except OSError:
                continue
            sig = [int(st.st_size), int(st.st_mtime_ns)]
            hit = entries.get(rel)
            if hit is not None and list(hit[:2]) == sig:
                out[rel] = hit[2]
            else:
                todo.append((rel, sig))
        if todo:
            log.info("probing %d clip(s) under %s (once; cached in %s)", len(todo), self.root, self.path)
            with ThreadPoolExecutor(min(self.workers, len(todo))) as pool:
                for start in range(0, len(todo), self.SAVE_EVERY):  # saved as it goes: resumable
                    chunk = todo[start : start + self.SAVE_EVERY]
                    found = pool.map(self._probe_one, (rel for rel, _ in chunk))
                    fresh = {rel: sig + [dur] for (rel, sig), dur in zip(chunk, found)}
                    entries.update(fresh)
                    out.update({rel: e[2] for rel, e in fresh.items()})
                    self._save(fresh)
                    if len(todo) > self.SAVE_EVERY:
                        log.info("probed %d / %d clips", min(start + self.SAVE_EVERY, len(todo)), len(todo))
        return out

    def _probe_one(self, rel: str) -> float | None:
        try:
            return float(probe(self.root / rel).duration_sec)
        except MediaError:
            return None

    def _read_file(self) -> dict[str, list]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != self.VERSION or data.get("root") != str(self.root):
            return {}
        clips = data.get("clips")
        return clips if isinstance(clips, dict) else {}

    def _load(self) -> dict[str, list]:
        if self._entries is None:
            self._entries = self._read_file()
        return self._entries

    def _save(self, fresh: Mapping[str, list]) -> None:
        merged = {**self._read_file(), **self._entries, **fresh}
        payload = {"version": self.VERSION, "root": str(self.root), "clips": merged}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(payload, f, separators=(",", ":"))
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as err:
            if not self._warned_write:
                log.warning("cannot write the probe cache %s (%s); durations will be probed again "
                            "next time", self.path, err)
                self._warned_write = True


def read_split_file(path: str | os.PathLike, default_subset: str | None = None) -> list[str]:
    """Clip keys listed in a split file, in order, duplicates removed.

    One clip per line; the first whitespace-separated token is the clip (an id or a relative
    path, extension optional), anything after it (e.g. LRS2's ``NF`` tag) and ``#`` comments
    are ignored. With ``default_subset`` a two-part id ``<ytid>/<utt>`` gets that prefix.
    """
    keys: dict[str, None] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        key = key_for(tokens[0])
        if default_subset and key.count("/") == 1:
            key = f"{default_subset}/{key}"
        keys[key] = None
    return list(keys)


def seeded_split(ids: Iterable[str], seed: int, ratios: Mapping[str, float],
                 splits: Sequence[str] = SPLITS) -> dict[str, list[str]]:
    """Deterministic split of ``ids`` among ``splits`` in the proportions ``ratios``.

    The ids are sorted, shuffled with ``random.Random(seed)``, and cut in the order test, valid,
    train: each split but the last gets ``int(n * ratios[s] / sum of the ratios of splits)`` ids,
    the last one the rest. With all three splits and 8:1:1 this is Synchformer's LRS3
    ``make_split_files`` (``hold_out_size = int(len(all_vids) * 0.1)``).
    """
    pool = sorted(set(ids))
    random.Random(int(seed)).shuffle(pool)
    order = [s for s in _CUT_ORDER if s in splits] + [s for s in splits if s not in _CUT_ORDER]
    total = float(sum(ratios[s] for s in order))
    out, start = {}, 0
    for i, split in enumerate(order):
        n = len(pool) - start if i == len(order) - 1 else int(len(pool) * (ratios[split] / total))
        out[split] = pool[start : start + n]
        start += n
    return out


def _check_split_files(split_files: Mapping[str, str] | None) -> dict[str, str]:
    files = {k: str(v) for k, v in (split_files or {}).items() if v}
    unknown = set(files) - set(SPLITS)
    if unknown:
        raise ValueError(f"split_files has unknown split(s) {sorted(unknown)}; use {SPLITS}")
    return files


def _stage_of(trainer) -> str | None:
    """``fit`` / ``validate`` / ``test`` / ``predict`` of the running trainer, None without one."""
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    return getattr(fn, "value", None)


class _MissingLog:
    """Counts listed-but-absent clips per split and warns once per split and source."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._warned: set[tuple[str, str]] = set()

    def note(self, split: str, source: str, missing: Sequence[str], listed: int, where: Path) -> None:
        self.counts[split] = len(missing)
        if missing and (split, source) not in self._warned:
            self._warned.add((split, source))
            log.warning("%s: %d of the %d clip(s) listed in %s are not under %s (skipped), e.g. %s",
                        split, len(missing), listed, source, where, ", ".join(missing[:3]))


# --------------------------------------------------------------------------------------------
# LRS3
# --------------------------------------------------------------------------------------------
class LRS3DataModule(AVSyncDataModule):
    """LRS3 (SparseSync/Synchformer preprocessing: H.264 25 fps, AAC 16 kHz); see the module doc.

    Args:
        root: folder holding ``h264_uncropped_25fps_256side_16000hz_aac/`` and/or
            ``h264_orig_strict_crop_25fps_224side_16000hz_aac/`` (or one of those folders).
        variant: ``"full_frame"`` (no face crop, SparseSync's "LRS3 no crop", Synchformer's
            "full scene") or ``"face_crop"``.
        split_files: ``{split: file}`` with one ``<subset>/<ytid>/<utt>`` per line, e.g.
            ``{"test": ".../lrs3_test.txt"}``; splits without one are drawn by video id.
        split_seed: seed of the video-id shuffle (1337, as in the official code).
        split_ratios: train:valid:test shares of the drawn split (8:1:1).
        subsets: LRS3 subsets whose videos are split (``pretrain`` in the papers).
        min_duration_sec: drawn splits keep clips strictly longer than this (9 s); None keeps all.
        probe_cache_dir: folder of the duration cache (default ``~/.cache/avsync/probe``).
        probe_workers: threads probing uncached clips.
        **kwargs: :class:`AVSyncDataModule`'s (batch size, workers, fixed_offsets_csv, ...).

    After ``setup``: ``missing[split]`` = clips listed in a split file but absent on disk,
    ``dropped[split]`` = clips removed by the filters (with ``missing`` included).
    """

    def __init__(
        self,
        root: str | None = None,
        variant: str = "full_frame",
        split_files: dict[str, str] | None = None,
        split_seed: int = 1337,
        split_ratios: tuple[float, float, float] = (8.0, 1.0, 1.0),
        subsets: tuple[str, ...] = ("pretrain",),
        min_duration_sec: float | None = 9.0,
        probe_cache_dir: str | None = None,
        probe_workers: int = 4,
        **kwargs,
    ) -> None:
        super().__init__(root=root, **kwargs)
        if variant not in LRS3_VARIANTS:
            raise ValueError(f"unknown LRS3 variant {variant!r}; expected one of {sorted(LRS3_VARIANTS)}")
        bad = [s for s in subsets if s not in LRS3_SUBSETS]
        if bad:
            raise ValueError(f"unknown LRS3 subset(s) {bad}; expected some of {LRS3_SUBSETS}")
        if len(split_ratios) != 3 or min(split_ratios) < 0 or sum(split_ratios) <= 0:
            raise ValueError(f"split_ratios must be three non-negative train:valid:test shares, got {split_ratios}")
        self.variant = variant
        self.split_files = _check_split_files(split_files)
        self.split_seed = int(split_seed)
        self.split_ratios = dict(zip(("train", "valid", "test"), map(float, split_ratios)))
        self.subsets = tuple(subsets)
        self.min_duration_sec = min_duration_sec
        self.probe_cache_dir = probe_cache_dir
        self.probe_workers = int(probe_workers)
        self._missing = _MissingLog()
        self._listing: dict[str, list[str]] | None = None
        self._cache: ProbeCache | None = None

    @property
    def missing(self) -> dict[str, int]:
        return self._missing.counts

    # -- layout -----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The folder of the chosen variant (``<root>/<variant folder>``, or ``root`` itself)."""
        if not self.root:
            raise ValueError("LRS3DataModule needs root= (the folder that holds "
                             f"{LRS3_VARIANTS[self.variant]}/); e.g. --data.root /data/lrs3")
        root, name = Path(self.root).expanduser(), LRS3_VARIANTS[self.variant]
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

    @property
    def probe_cache(self) -> ProbeCache:
        if self._cache is None:
            self._cache = ProbeCache(self.data_dir, self.probe_cache_dir, self.probe_workers)
        return self._cache

    def listing(self) -> dict[str, list[str]]:
        """``{ytid: [relative clip paths]}`` of the videos on disk under ``subsets`` (listed once).

        A video id present in several subsets is one video: its clips of all of them go together.
        """
        if self._listing is None:
            listing: dict[str, list[str]] = {}
            for subset in self.subsets:
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
                log.warning("no clips found under %s (subsets %s)", self.data_dir, list(self.subsets))
            self._listing = {v: sorted(c) for v, c in sorted(listing.items())}
        return self._listing

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
        listed = {k.split("/")[-2] for f in self.split_files.values()
                  for k in read_split_file(f, "pretrain") if "/" in k}
        videos = self.listing()
        pool = [v for v in videos if v not in listed]
        drawn = [s for s in SPLITS if s not in self.split_files]
        ids = seeded_split(pool, self.split_seed, self.split_ratios, drawn)[split]
        return [c for v in sorted(ids) for c in videos[v]], []

    def list_records(self, split: str) -> list[ClipRecord]:
        rels, missing = self.split_clip_paths(split)
        source = self.split_files.get(split, "the drawn split")
        self._missing.note(split, source, missing, len(rels) + len(missing), self.data_dir)
        durations = self.probe_cache.durations(rels)
        records = []
        for rel in rels:
            if rel not in durations:  # vanished between listing and probing
                continue
            subset, ytid, _ = rel.split("/", 2)
            records.append(ClipRecord(key=rel, path=self.data_dir / rel, duration_sec=durations[rel],
                                      split=split, extra={"subset": subset, "ytid": ytid}))
        return records

    def filter_records(self, split: str, records: Iterable[ClipRecord]) -> list[ClipRecord]:
        records = super().filter_records(split, records)
        if split not in self.split_files and self.min_duration_sec is not None:
            floor = float(self.min_duration_sec)
            records = self._drop(split, records, lambda r: r.duration_sec <= floor,
                                 "shorter_than_min_duration")
            n = self.dropped[split]["shorter_than_min_duration"]
            if n:
                log.info("%s: dropped %d clip(s) not longer than %g s", split, n, floor)
        self.dropped[split]["missing"] = self.missing.get(split, 0)
        return records

    def prepare_data(self) -> None:
        """Probe (and cache) the durations of the splits the running stage needs."""
        for split in _STAGE_SPLITS.get(_stage_of(self.trainer), SPLITS):
            self.list_records(split)

"""Finding the clips of a split on disk: split files, seeded splits, the duration cache, and the
count of listed clips that a partial copy lacks.

Every real-dataset module lists its clips through these (via :class:`~.base.AVSyncDataModule`'s
``clip_records``), so a dataset module only says *which* relative paths make a split.
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

__all__ = [
    "SPLITS",
    "ProbeCache",
    "MissingLog",
    "default_probe_cache_dir",
    "read_split_file",
    "seeded_split",
    "check_split_files",
    "stage_of",
]

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
_CUT_ORDER = ("test", "valid", "train")  # official order: test ids first, then valid, train the rest


# --------------------------------------------------------------------------------------------
def default_probe_cache_dir() -> Path:
    """``$AVSYNC_CACHE_DIR/probe`` or ``~/.cache/avsync/probe``."""
    return Path(os.environ.get("AVSYNC_CACHE_DIR", "~/.cache/avsync")).expanduser() / "probe"


class ProbeCache:
    """Clip durations under one dataset folder, probed once and kept in a small JSON file.

    The file is ``<cache_dir>/<folder name>-<16 hex of sha1(resolved folder path)>.json``:
    ``{"version": 3, "root": ..., "clips": {relative path: [size, mtime_ns, duration, fps]}}``.
    An entry is reused while the file keeps its size and mtime; ``null`` marks a clip that could
    not be probed (it is not probed again until it changes; the data module reports it as bad
    media). Writes are atomic (temporary file + rename) and merge with what is on disk, so
    concurrent processes lose no work. An unwritable cache folder only costs a warning.
    """

    VERSION = 3  # 3: durations on the presentation timeline (from the earlier stream's start)
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
        return {rel: e[0] for rel, e in self.probe_many(rel_paths).items()}

    def frame_rates(self, rel_paths: Iterable[str]) -> dict[str, float | None]:
        """Average video frame rate of each clip that exists (None: unreadable or no video)."""
        return {rel: e[1] for rel, e in self.probe_many(rel_paths).items()}

    def probe_many(self, rel_paths: Iterable[str]) -> dict[str, tuple[float | None, float | None]]:
        """``(duration, fps)`` of each clip that exists, probed once and cached."""
        entries = self._load()
        out: dict[str, tuple] = {}
        todo: list[tuple[str, list[int]]] = []
        for rel in rel_paths:
            try:
                st = os.stat(self.root / rel)
            except OSError:
                continue
            sig = [int(st.st_size), int(st.st_mtime_ns)]
            hit = entries.get(rel)
            if hit is not None and list(hit[:2]) == sig:
                out[rel] = (hit[2], hit[3])
            else:
                todo.append((rel, sig))
        if todo:
            log.info("probing %d clip(s) under %s (once; cached in %s)", len(todo), self.root, self.path)
            with ThreadPoolExecutor(min(self.workers, len(todo))) as pool:
                for start in range(0, len(todo), self.SAVE_EVERY):  # saved as it goes: resumable
                    chunk = todo[start : start + self.SAVE_EVERY]
                    found = pool.map(self._probe_one, (rel for rel, _ in chunk))
                    fresh = {rel: sig + list(info) for (rel, sig), info in zip(chunk, found)}
                    entries.update(fresh)
                    out.update({rel: (e[2], e[3]) for rel, e in fresh.items()})
                    self._save(fresh)
                    if len(todo) > self.SAVE_EVERY:
                        log.info("probed %d / %d clips", min(start + self.SAVE_EVERY, len(todo)), len(todo))
        return out

    def _probe_one(self, rel: str) -> tuple[float | None, float | None]:
        try:
            info = probe(self.root / rel)
        except MediaError:
            return None, None
        return float(info.duration_sec), (float(info.video_fps) if info.has_video else None)

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


def check_split_files(split_files: Mapping[str, str] | None) -> dict[str, str]:
    files = {k: str(v) for k, v in (split_files or {}).items() if v}
    unknown = set(files) - set(SPLITS)
    if unknown:
        raise ValueError(f"split_files has unknown split(s) {sorted(unknown)}; use {SPLITS}")
    return files


def stage_of(trainer) -> str | None:
    """``fit`` / ``validate`` / ``test`` / ``predict`` of the running trainer, None without one."""
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    return getattr(fn, "value", None)


class MissingLog:
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

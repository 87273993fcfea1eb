"""One cache of frozen-extractor features, shared by every stage that trains on top of frozen extractors.

A frozen extractor's output for a window of a clip never changes, so it is computed once per clip
and read back: SparseSync's toy sync stages (:mod:`avsync.data_modules.feature_bank`) and
Synchformer's stage II / synchronizability (:mod:`avsync.data_modules.synchformer_features`,
``avsync cache-features``) all store the same thing, :class:`ClipFeatures`: per clip, the features
of windows of each stream whose nominal starts lie on a grid ``i * step_sec``; a training or
evaluation example is then a gather of windows by start (:meth:`ClipFeatures.windows`). Which
extractor and which windows are the papers' business (small adapters); this module owns the rest:

* **Store** (:class:`FeatureStore`): a folder with one ``<split>/<sha1(key)>.pt`` per clip (loads with
  ``weights_only=True``) and ``index.json`` (format version, the adapter's ``kind``, the extractor
  fingerprint, the settings the windows depend on, and per split each clip's file with its SHA-256
  and size, plus the clips left out with their reason). Every file is written to a temporary name
  and renamed into place, the index last, so a killed run leaves no index (the folder is rebuilt)
  and never a half-written file under a final name. A file whose bytes do not match its recorded
  SHA-256 is never unpickled: :meth:`FeatureStore.verify` finds it and :meth:`FeatureStore.repair`
  recomputes it. ``FeatureStore(None)`` keeps the entries in memory (no cache on disk).
* **Key** (:func:`cache_key`): a digest of the format version, the extractor weights
  (:func:`weights_fingerprint`), the settings and the clips (key, path, size, mtime); a stage with
  other weights, settings or clips gets another folder, stages that share them share one.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["FORMAT_VERSION", "INDEX", "ClipFeatures", "CorruptCacheEntry", "FeatureStore", "cache_key",
           "weights_fingerprint"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 1: the bank's single .pt and the Synchformer folder of before (regenerated, not read)
INDEX = "index.json"


class CorruptCacheEntry(RuntimeError):
    """A cache file that is missing, truncated or not what was written (never unpickled)."""


@dataclass
class ClipFeatures:
    """Extractor outputs of one clip: window i of a stream has the nominal start ``i * step_sec``
    (``*_starts`` hold the actual starts in seconds, e.g. with a fixed audio jitter)."""

    key: str
    usable_sec: float
    step_sec: float
    video_starts: torch.Tensor
    video: torch.Tensor
    audio_starts: torch.Tensor
    audio: torch.Tensor

    @classmethod
    def on_grid(cls, key: str, usable_sec: float, step_sec: float, video: torch.Tensor,
                audio: torch.Tensor) -> "ClipFeatures":
        """Windows of both streams exactly at ``i * step_sec``."""
        starts = lambda n: torch.arange(n, dtype=torch.float64) * step_sec  # noqa: E731
        return cls(key, usable_sec, step_sec, starts(len(video)), video, starts(len(audio)), audio)

    def index_of(self, start_sec) -> np.ndarray:
        """Index of the cached window nearest to each nominal start (seconds)."""
        return np.rint(np.asarray(start_sec, dtype=np.float64) / self.step_sec).astype(int)

    def windows(self, video_start_sec: float, audio_start_sec: float, count: int = 1,
                spacing_sec: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` video windows from ``video_start_sec`` and audio windows from ``audio_start_sec``,
        ``spacing_sec`` apart: (count, ...) each."""
        starts = np.arange(count) * spacing_sec
        iv, ia = self.index_of(video_start_sec + starts), self.index_of(audio_start_sec + starts)
        nv, na = self.video.shape[0], self.audio.shape[0]
        if iv[0] < 0 or ia[0] < 0 or iv[-1] >= nv or ia[-1] >= na:
            raise ValueError(f"{self.key}: plan (video {video_start_sec:.3f} s, audio {audio_start_sec:.3f} s, "
                             f"{count} windows) reaches outside the cached clip ({nv} video / {na} audio windows)")
        return self.video[torch.from_numpy(iv)], self.audio[torch.from_numpy(ia)]

    def as_dict(self) -> dict:
        return {"key": self.key, "usable_sec": float(self.usable_sec), "step_sec": float(self.step_sec),
                "video_starts": self.video_starts, "video": self.video,
                "audio_starts": self.audio_starts, "audio": self.audio}


def weights_fingerprint(module: nn.Module, prefixes: tuple[str, ...]) -> str:
    """SHA-1 of the state-dict entries under ``prefixes`` (names, dtypes, shapes, bytes): the features
    are only valid for the weights that computed them."""
    digest, found = hashlib.sha1(), False
    for name, tensor in sorted(module.state_dict().items()):
        if name.startswith(prefixes):
            found = True
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    if not found:
        raise ValueError(f"{type(module).__name__} has no weights under {prefixes}")
    return digest.hexdigest()


def cache_key(fingerprint: str, settings: dict, records: dict[str, Iterable]) -> str:
    """The folder key of a cache: format, extractor weights, settings and clips (per split: key, path,
    size and mtime, so a re-encoded file is another clip)."""
    clips = {}
    for split, recs in sorted(records.items()):
        rows = []
        for r in recs:
            stat = Path(r.path).stat() if Path(r.path).exists() else None
            rows.append(f"{r.key}|{r.path}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}")
        clips[split] = rows
    what = [FORMAT_VERSION, fingerprint, settings, clips]
    return hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class FeatureStore:
    """The clips' :class:`ClipFeatures` per split, in ``folder`` (module docstring) or in memory."""

    def __init__(self, folder: str | Path | None, kind: str, fingerprint: str, settings: dict):
        self.folder = Path(folder) if folder is not None else None
        self.kind, self.fingerprint, self.settings = kind, fingerprint, dict(settings)
        self.entries: dict[str, dict[str, dict]] = {}   # split -> key -> {"file", "sha256", "bytes"}
        self.skipped: dict[str, dict[str, str]] = {}    # split -> key -> reason
        self._memory: dict[tuple[str, str], ClipFeatures] = {}

    # -- reading ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path) -> "FeatureStore | None":
        """The store in ``folder``, or None when it has no readable index of this format (then the
        cache is (re)built: e.g. a run killed before the index was written, or an old format)."""
        path = Path(folder) / INDEX
        try:
            index = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            log.warning("feature cache %s: unreadable index (%s); it will be rebuilt", path, err)
            return None
        if not isinstance(index, dict) or index.get("format") != FORMAT_VERSION:
            log.warning("feature cache %s: format %s, not %d; it will be rebuilt", path,
                        index.get("format") if isinstance(index, dict) else "?", FORMAT_VERSION)
            return None
        store = cls(folder, index["kind"], index["fingerprint"], index["settings"])
        store.entries, store.skipped = index["splits"], index.get("skipped", {})
        return store

    def keys(self, split: str) -> list[str]:
        return list(self.entries.get(split, {}))

    def get(self, split: str, key: str) -> ClipFeatures:
        """The entry of clip ``key``; :class:`CorruptCacheEntry` if its file is not the one written."""
        if self.folder is None:
            return self._memory[(split, key)]
        return ClipFeatures(**torch.load(io.BytesIO(self._read(split, key)), map_location="cpu", weights_only=True))

    def _read(self, split: str, key: str) -> bytes:
        meta = self.entries[split][key]
        path = self.folder / meta["file"]
        try:
            data = path.read_bytes()
        except OSError as err:
            raise CorruptCacheEntry(f"{path}: cannot read ({err})") from err
        if len(data) != meta["bytes"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise CorruptCacheEntry(f"{path}: {len(data)} bytes whose SHA-256 is not the recorded one "
                                    "(truncated or overwritten); rebuild the cache")
        return data

    def verify(self) -> list[tuple[str, str]]:
        """(split, key) of every entry whose file is missing or differs from what was written."""
        bad = []
        if self.folder is None:
            return bad
        for split, files in self.entries.items():
            for key in files:
                try:
                    self._read(split, key)
                except CorruptCacheEntry as err:
                    log.warning("feature cache: %s", err)
                    bad.append((split, key))
        return bad

    # -- writing ---------------------------------------------------------------------------------
    def put(self, split: str, clip: ClipFeatures) -> None:
        """Store ``clip`` (on disk: written atomically; the index names it after :meth:`commit`)."""
        meta = {}
        if self.folder is None:
            self._memory[(split, clip.key)] = clip
        else:
            buf = io.BytesIO()
            torch.save(clip.as_dict(), buf)
            data = buf.getvalue()
            name = f"{split}/{hashlib.sha1(clip.key.encode()).hexdigest()[:20]}.pt"
            _write_atomic(self.folder / name, data)
            meta = {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        self.entries.setdefault(split, {})[clip.key] = meta
        self.skipped.get(split, {}).pop(clip.key, None)

    def fill(self, split: str, records: Iterable, compute: Callable, errors: tuple = (),
             on_skip: Callable | None = None, progress: bool = False, desc: str = "features") -> None:
        """``compute(record) -> ClipFeatures`` for every record; a record raising one of ``errors`` is
        listed in the index's ``skipped`` with its reason (and passed to ``on_skip(record, reason)``)."""
        records = list(records)
        for record in tqdm(records, desc=desc, unit="clip", disable=not progress):
            try:
                clip = compute(record)
            except errors as err:
                reason = err.reason if hasattr(err, "reason") else str(err)
                self.skipped.setdefault(split, {})[record.key] = reason
                if on_skip is not None:
                    on_skip(record, reason)
                continue
            self.put(split, clip)

    def repair(self, records: dict[str, Iterable], compute: Callable) -> list[tuple[str, str]]:
        """Recompute the entries :meth:`verify` finds broken (``records``: split -> records) and
        rewrite the index; returns them."""
        bad = self.verify()
        if bad:
            by_key = {(split, r.key): r for split, recs in records.items() for r in recs}
            missing = [b for b in bad if b not in by_key]
            if missing:
                raise CorruptCacheEntry(f"{self.folder}: broken entries {missing[:3]} are not clips of the data "
                                        "module; rebuild the cache")
            for split, key in bad:
                self.put(split, compute(by_key[(split, key)]))
            self.commit()
            log.warning("feature cache %s: rebuilt %d broken file(s)", self.folder, len(bad))
        return bad

    def commit(self) -> None:
        """Write the index (atomically, after the files it names)."""
        if self.folder is None:
            return
        index = {"format": FORMAT_VERSION, "kind": self.kind, "fingerprint": self.fingerprint,
                 "settings": self.settings, "splits": self.entries, "skipped": self.skipped}
        _write_atomic(self.folder / INDEX, json.dumps(index, indent=1, sort_keys=True, default=str).encode())

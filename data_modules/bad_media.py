"""The bad-media report: every clip the data layer skipped, with the reason, in one TSV file."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BadMediaEntry", "BadMediaReport", "REPORT_NAME"]

log = logging.getLogger(__name__)

REPORT_NAME = "bad_media.tsv"


@dataclass(frozen=True)
class BadMediaEntry:
    key: str
    path: str
    reason: str
    stage: str
    count: int = 1


def _clean_field(text: object, limit: int = 1000) -> str:
    return " ".join(str(text).split())[:limit]


class BadMediaReport:
    """Bad clips met while loading: one TSV line ``key, path, stage, reason`` per event.

    With ``path`` set, every event is appended to that file with a single ``O_APPEND`` write,
    so DataLoader workers (forked or spawned) and DDP ranks can all report into one file and the
    main process reads it back. Without a path, events stay in this process's memory: that
    only sees the events of ``num_workers=0`` loading (the data module therefore always gives a
    path). One warning is logged per bad file, not per occurrence (per process, and skipped when
    the file already names the clip).
    """

    HEADER = "# key\tpath\tstage\treason\n"

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._events: list[BadMediaEntry] = []
        self._warned: set[str] = set()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                self._append(self.HEADER)

    def record(self, key: str, path: str | os.PathLike, reason: object, stage: str = "") -> None:
        entry = BadMediaEntry(_clean_field(key), _clean_field(path), _clean_field(reason), _clean_field(stage))
        first = entry.key not in self._warned and not (self.path is not None and self._file_has(entry.key))
        if self.path is None:
            self._events.append(entry)
        else:
            self._append("\t".join((entry.key, entry.path, entry.stage, entry.reason)) + "\n")
        if first:
            log.warning("bad media skipped (%s): %s: %s", entry.stage or "-", entry.path, entry.reason)
        self._warned.add(entry.key)

    def events(self) -> list[BadMediaEntry]:
        """Every event, in order (a clip met twice appears twice)."""
        if self.path is None:
            return list(self._events)
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t", 3)
            if len(parts) == 4:
                key, path, stage, reason = parts
                out.append(BadMediaEntry(key, path, reason, stage))
        return out

    def read(self) -> list[BadMediaEntry]:
        """One entry per bad clip (its first event), with ``count`` = number of events."""
        first: dict[str, BadMediaEntry] = {}
        counts: dict[str, int] = {}
        for e in self.events():
            first.setdefault(e.key, e)
            counts[e.key] = counts.get(e.key, 0) + 1
        return [BadMediaEntry(e.key, e.path, e.reason, e.stage, counts[k]) for k, e in first.items()]

    def __len__(self) -> int:
        return len(self.read())

    def summary(self) -> str:
        entries = self.read()
        if not entries:
            return "no bad media"
        where = f" (report: {self.path})" if self.path is not None else ""
        lines = [f"{len(entries)} bad media file(s), {sum(e.count for e in entries)} event(s){where}:"]
        lines += [f"  [{e.stage or '-'}] {e.path}: {e.reason} (x{e.count})" for e in entries]
        return "\n".join(lines)

    def _append(self, text: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    def _file_has(self, key: str) -> bool:
        return any(e.key == key for e in self.events())

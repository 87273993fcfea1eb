"""The rows of ``avsync score``: a CSV appended one row at a time, its summary, its JSON copy.

Resumable and kill-safe: each row is written and flushed as soon as its file is scored; a rerun
reads the CSV, drops a half-written last line (a run killed mid-write) and skips every path that
already has a row (with ``retry_failed``, only those that succeeded). When a path has several rows
(a failed one retried), the last one counts.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np

__all__ = ["BASE_COLUMNS", "columns_for", "ResultsFile", "summarise", "summary_path", "typed", "format_summary"]

BASE_COLUMNS = ("path", "status", "reason", "error", "metrics")


def columns_for(metrics) -> list[str]:
    """Header of a CSV for these metric objects: the file's columns, then each metric's values and
    its own reason / error (a file can fail one metric and not another, e.g. too short for DeSync)."""
    cols = list(BASE_COLUMNS)
    for metric in metrics:
        cols += [*metric.columns, f"{metric.name}_reason", f"{metric.name}_error"]
    return cols


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def typed(row: dict) -> dict:
    """A CSV row with numbers as numbers, JSON cells parsed and empty cells as None."""
    out = {}
    for key, value in row.items():
        if value in ("", None):
            out[key] = None
        elif key == "speaking":
            out[key] = value == "True"
        elif key in ("path", "status", "reason", "error", "metrics", "verdict", "confidence_kind") or key.endswith(
                ("_reason", "_error")):
            out[key] = value
        elif value[:1] in "[{":
            out[key] = json.loads(value)
        else:
            try:
                out[key] = int(value) if key.endswith(("_frames", "_track")) else float(value)
            except ValueError:
                out[key] = value
    return out


class ResultsFile:
    """The CSV of one run; ``rows`` holds what is in it (the last row of each path)."""

    def __init__(self, path: str | Path | None, columns: list[str]):
        """``path`` None keeps the rows in memory only (``avsync.score()`` without ``out``)."""
        self.path, self.columns = (Path(path) if path is not None else None), list(columns)
        self.rows: dict[str, dict] = {}
        if self.path is None:
            return
        if self.path.exists() and self.path.stat().st_size:
            self._read_existing()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="") as f:
                csv.writer(f, lineterminator="\n").writerow(self.columns)

    def _read_existing(self) -> None:
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):  # killed while writing the last row: drop the partial line
            data = data[: data.rfind(b"\n") + 1]
            with open(self.path, "r+b") as f:
                f.truncate(len(data))
        text = data.decode()
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames != self.columns:
            raise ValueError(f"{self.path} has other columns ({','.join(reader.fieldnames or [])}) than this run "
                             f"writes: it was made with other --metrics; give another --out")
        for row in reader:
            self.rows[self._key(row)] = row

    @staticmethod
    def _key(row: dict) -> tuple[str, str]:
        """A file's row, or one of its face tracks' rows (``--per-track``)."""
        return row["path"], row.get("face_track") or ""

    def done(self, retry_failed: bool = False) -> set[str]:
        return {p for (p, _), r in self.rows.items() if not retry_failed or r["status"] == "ok"}

    def append_file(self, rows: list[dict]) -> None:
        """The rows of one file (one, or one per face track); its rows of an earlier run no longer count."""
        for key in [k for k in self.rows if k[0] == rows[0]["path"]]:
            del self.rows[key]
        for row in rows:
            self.append(row)

    def append(self, row: dict) -> None:
        cells = {c: _cell(row.get(c)) for c in self.columns}
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow([cells[c] for c in self.columns])
        if self.path is not None:
            with open(self.path, "a", newline="") as f:  # one write per row, flushed before the next file
                f.write(buffer.getvalue())
                f.flush()
                os.fsync(f.fileno())
        self.rows[self._key(cells)] = cells

    def typed_rows(self) -> list[dict]:
        return [typed(r) for r in self.rows.values()]


def summary_path(out: str | Path) -> Path:
    """``results.csv`` -> ``results.summary.json``."""
    out = Path(out)
    return out.with_name(out.stem + ".summary.json")


def _stats(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "mean": None, "median": None, "std": None, "min": None, "max": None}
    x = np.asarray(values, dtype=np.float64)
    return {"count": int(len(x)), "mean": float(x.mean()), "median": float(np.median(x)), "std": float(x.std()),
            "min": float(x.min()), "max": float(x.max())}


def summarise(rows: list[dict], metrics) -> dict:
    """Per metric: how many files it scored and failed (by reason), and mean / median / std
    (population, ddof 0) / min / max of each value over the files it scored."""
    paths = {r["path"]: r["status"] for r in rows}  # per-track rows: one file, several rows
    out = {"files": len(paths), "files_ok": sum(s == "ok" for s in paths.values()), "rows": len(rows),
           "metrics": {}}
    for metric in metrics:
        scored = [r for r in rows if not r.get(f"{metric.name}_reason") and r.get(metric.columns[0]) is not None]
        failed = [r for r in rows if r.get(f"{metric.name}_reason")]
        entry = {"scored": len(scored), "failed": len(failed),
                 "failures": dict(Counter(r[f"{metric.name}_reason"] for r in failed))}
        for value in metric.values:
            if value == "abs_offset_sec":
                entry[value] = _stats([abs(r["offset_sec"]) for r in scored])
            else:
                entry[value] = _stats([r[value] for r in scored if r.get(value) is not None])
        out["metrics"][metric.name] = entry
    return out


def format_summary(summary: dict) -> str:
    lines = [f"{summary['files']} files, {summary['files_ok']} scored by every metric"]
    for name, entry in summary["metrics"].items():
        failures = ", ".join(f"{k} {v}" for k, v in sorted(entry["failures"].items())) or "none"
        lines.append(f"{name}: {entry['scored']} scored, {entry['failed']} failed ({failures})")
        for key, stats in entry.items():
            if isinstance(stats, dict) and "mean" in stats and stats["count"]:
                lines.append(f"  {key}: mean {stats['mean']:.4f}  median {stats['median']:.4f}  "
                             f"std {stats['std']:.4f}  n {stats['count']}")
    return "\n".join(lines)

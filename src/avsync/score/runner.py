"""One run of ``avsync score`` (the command and ``avsync.score()`` both call :func:`run_score`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Iterable

from avsync.score.decode_pool import decode_ahead
from avsync.score.metrics import METRICS, ModelChoice, build_metric
from avsync.score.reasons import failure
from avsync.score.results import ResultsFile, columns_for, format_summary, summarise, summary_path
from avsync.score.scan import scan_inputs

__all__ = ["resolve_device", "run_score"]


def resolve_device(device: str = "auto") -> str:
    """``auto``: the GPU when there is one, else the CPU."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _decode_all(metrics, path: str) -> dict:
    """Each metric's decoding of one file (runs in a worker); failures become (code, message) here, so
    nothing that does not pickle crosses back."""
    out = {}
    for metric in metrics:
        try:
            out[metric.name] = ("ok", metric.decode(path))
        except Exception as err:  # noqa: BLE001 - every failure of a file is a row
            out[metric.name] = ("failed", *failure(err))
    return out


def _rows(path: str, metrics, outcome: tuple) -> list[dict]:
    """The file's row, or one row per face track when a metric gives them (``--per-track``): each
    track's values over the file's, the other metrics' values repeated."""
    row = _row(path, metrics, outcome)
    tracks = row.pop("_per_track", None)
    if not tracks:
        return [row]
    out = []
    for track in tracks:
        merged = {**row, **track}
        if track.get("offset_reason"):  # this track could not be scored (still, too short)
            merged.update(status="failed" if row["status"] == "ok" and len(metrics) == 1 else "partial",
                          reason=merged.get("reason") or track["offset_reason"],
                          error=merged.get("error") or track["offset_error"])
        out.append(merged)
    return out


def _row(path: str, metrics, outcome: tuple) -> dict:
    """The CSV row of one file from its decoding outcome; the model runs here."""
    if outcome[0] == "ok":
        per_metric = outcome[1]
    else:  # the decoding process crashed, hung, or raised outside a metric
        code, message = outcome[1:] if outcome[0] == "failed" else failure(outcome[1])
        per_metric = {m.name: ("failed", code, message) for m in metrics}
    row, failures = {"path": path, "metrics": ",".join(m.name for m in metrics)}, []
    for metric in metrics:
        result = per_metric[metric.name]
        if result[0] == "ok":
            try:
                row.update(metric.compute(path, result[1]))
                continue
            except Exception as err:  # noqa: BLE001 - a model error on one file is that file's row
                result = ("failed", *failure(err))
        row[f"{metric.name}_reason"], row[f"{metric.name}_error"] = result[1], result[2]
        failures.append(result[1:])
    row["status"] = "ok" if not failures else "failed" if len(failures) == len(metrics) else "partial"
    if failures:
        row["reason"], row["error"] = failures[0]
    return row


def run_score(paths: Iterable[str], metrics: Iterable[str] = ("offset",), *,
              choices: dict[str, ModelChoice] | None = None, out: str | Path | None = None,
              json_out: str | Path | None = None, workers: int = 1, device: str = "auto",
              max_crops: int | None = 8, desync_duration_sec: float | None = None, face_detector: str = "dlib",
              faces=None, asd_threshold: float | None = None, per_track: bool = False, decode_timeout_s: float = 600.0, retry_failed: bool = False, progress: bool = True,
              echo: Callable[[str], None] | None = None) -> list[dict]:
    """Score every input (files, folders, ``@list`` files) with the metrics; one row per file, in
    input order, including the rows a previous run left in ``out``. Writes ``out`` (CSV, appended row
    by row), its ``.summary.json`` and ``json_out`` when given. Raises CheckpointError for a model
    that cannot be loaded, ValueError for an ``out`` written with other metrics. ``faces``
    (:class:`avsync.faces.model_input.FaceOptions`), ``asd_threshold`` and ``per_track``: face tracks
    for face-crop models (:class:`avsync.score.metrics.OffsetMetric`)."""
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric(s) {unknown or names}; choose from {', '.join(METRICS)}")
    device = resolve_device(device)
    choices = choices or {}
    built = [build_metric(n, choices.get(n, ModelChoice()), device, max_crops=max_crops,
                          desync_duration_sec=desync_duration_sec, face_detector=face_detector, faces=faces,
                          asd_threshold=asd_threshold, per_track=per_track)
             for n in dict.fromkeys(names)]
    inputs = scan_inputs(list(paths))
    results = ResultsFile(out, columns_for(built))
    done = results.done(retry_failed)
    todo = [p for p in inputs if p not in done]
    if echo and len(todo) < len(inputs):
        echo(f"{len(inputs) - len(todo)} of {len(inputs)} files already in {out}; scoring {len(todo)}")
    from tqdm import tqdm

    failed = 0
    with tqdm(total=len(todo), unit="file", desc="score", disable=not progress, file=sys.stderr,
              dynamic_ncols=True) as bar:
        for path, outcome in decode_ahead(lambda p: _decode_all(built, p), todo, workers, decode_timeout_s):
            rows = _rows(path, built, outcome)
            results.append_file(rows)
            failed += rows[0]["status"] != "ok"
            bar.set_postfix(failed=failed, refresh=False)
            bar.update()
    order = {p: i for i, p in enumerate(inputs)}
    rows = [r for r in results.typed_rows() if r["path"] in order]
    rows.sort(key=lambda r: (order[r["path"]], r.get("face_track") or 0))
    summary = summarise(rows, built)
    if echo:
        echo(format_summary(summary))
    if out is not None:
        summary_path(out).write_text(json.dumps(summary, indent=2))
    if json_out is not None:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(rows, indent=2))
    return rows

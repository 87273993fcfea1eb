"""The side-by-side benchmark's plumbing (benchmarks/side_by_side.py): its plan, its worker protocol
and its report. No model is built and no time is asserted; the benchmark itself runs on demand."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _script(name: str):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_gives_both_sides_the_same_row_batch_and_threads(capsys):
    sbs = _script("side_by_side")
    assert sbs.main(["--dry-run", "--authors-root", "/x/ref", "--rows", "syncnet_train", "vocalist_infer",
                     "--batch", "4", "--threads", "1", "--variants", "foreach"]) == 0
    out = capsys.readouterr().out
    assert "syncnet_train (batch 4, 1 warm-up + 3 rounds):" in out
    assert "vocalist_infer (batch 1, 1 warm-up + 3 rounds):" in out  # --batch is for training rows only
    sides = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(sides) == 6  # authors, avsync, avsync +foreach per row
    for line in sides:
        assert "--threads 1" in line
    assert all("--authors-root /x/ref" in line for line in sides if "side_by_side_authors.py" in line)
    assert sum("--levers foreach" in line for line in sides) == 2


def test_worker_protocol_answers_one_timed_call_per_line(tmp_path):
    sbs = _script("side_by_side")
    code = (f"import sys; sys.path.insert(0, {str(BENCH)!r}); from side_by_side_protocol import serve; "
            "serve(lambda: ((lambda: [1.5, 2.0]), {'note': 'toy'}), 1)")
    worker = sbs.Worker("toy", [sys.executable, "-c", code], 60.0, tmp_path)
    try:
        assert worker.info["ready"] and worker.info["threads"] == 1 and worker.info["note"] == "toy"
        answer = worker.call()
        assert answer["sec"] >= 0 and answer["out"] == [1.5, 2.0]
    finally:
        worker.close()
    assert worker.proc.returncode == 0


def test_report_has_the_ratio_table_and_plot(tmp_path):
    sbs = _script("side_by_side")
    args = sbs.parser().parse_args(["--authors-root", "/x/ref", "--variants", "foreach"])
    sides = {"authors": {"times": [3.0, 4.0, 5.0], "first_s": 6.0, "out": [2.5]},
             "avsync": {"times": [2.0, 2.0, 2.5], "first_s": 3.0, "out": [2.5]},
             "avsync +foreach": {"times": [1.0, 2.0, 2.0], "first_s": 3.0, "out": [2.5]}}
    results = [{"row": "syncnet_train", "batch": 16, "warmup": 1, "load_start": 2.0, "load_end": 3.0, "sides": sides}]
    out = tmp_path / "sbs.md"
    sbs.plot(results, out.with_suffix(".png"))
    text = "\n".join(sbs.report(results, args, ["--rows", "syncnet_train"], out))
    assert ("| SyncNet training step | 16 | 3 (+1) | 4.00 (3.00) | 2.00 (2.00) | **2.00x** | 1.50x | "
            "foreach: 2.00 (2.00x) |") in text
    assert "loss 2.5 / 2.5" in text and "2.0 → 3.0" in text
    assert out.with_suffix(".png").stat().st_size > 0


def test_a_report_can_be_written_again_from_saved_timings(tmp_path):
    sbs = _script("side_by_side")
    sides = {"authors": {"times": [9.0], "first_s": 9.0, "out": [1.0, 0.5]},
             "avsync": {"times": [3.0], "first_s": 3.0, "out": [1.0, 0.5]}}
    saved = tmp_path / "run.json"
    saved.write_text('[{"row": "syncnet_infer", "batch": 1, "warmup": 0, "measured_at": "2026-12-06 06:00", '
                     '"load_start": 1.0, "load_end": 1.0, "sides": ' + __import__("json").dumps(sides) + "}]")
    out = tmp_path / "again.md"
    assert sbs.main(["--from-json", str(saved), "--out", str(out)]) == 0
    text = out.read_text()
    assert "**3.00x**" in text and "offset 1 / 1, conf 0.5 / 0.5" in text and "measured 2026-12-06 06:00 to 2026-12-06 06:00 UTC" in text

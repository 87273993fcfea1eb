#!/usr/bin/env python
"""avsync against the authors' code, side by side: training steps and per-clip inference.

For each row the driver starts one worker process with the authors' code
(``side_by_side_authors.py``, run by ``--authors-python``, the authors' environment) and one per
avsync variant (``side_by_side_avsync.py``: the default, and one per ``--variants`` lever set),
all with the same torch thread count, batch, input and weights. It then calls them in turn, A B
A B ..., ``--warmup`` untimed rounds (default 1) and ``--repeats`` timed rounds, so a change in the shared machine's
load hits every side alike; the table gives medians and the ratio authors / avsync (> 1: avsync
is faster), the first (warm-up) call, the first outputs of both sides (losses of the first step,
or the clip's offset and confidence) and the load average before and after the row.

    python benchmarks/side_by_side.py --authors-root /work/ref --wheels /tmp/tv012 /tmp/tv0150 \
        --rows syncnet_train vocalist_train --repeats 3 [--variants foreach channels_last,foreach]
    python benchmarks/side_by_side.py --dry-run      # print the plan and the worker commands only

Rows: see ``side_by_side_protocol.ROWS``. The authors' checkouts are read where they are
(``--authors-root`` holds SparseSync, Synchformer, vocalist, syncnet_python); nothing is copied.
Results: ``benchmarks/results/side_by_side.md`` and ``.png`` (``--out``). Never run by the tests.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from side_by_side_protocol import ROWS  # noqa: E402

REPO = HERE.parent
DEFAULT_AUTHORS_PYTHON = "/work/venvs/ref/bin/python"


class Worker:
    """One side of a row in its own process: ``call()`` times one call (the JSON the worker prints)."""

    def __init__(self, name: str, cmd: list[str], timeout_s: float, log_dir: Path):
        self.name, self.cmd, self.timeout_s = name, cmd, timeout_s
        self.log = log_dir / f"{name.replace(' ', '_').replace(',', '+')}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.log, "w"), text=True, env=env)
        self.info = self._answer()

    def _answer(self) -> dict:
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.close()
                raise RuntimeError(f"{self.name}: no answer within {self.timeout_s:.0f} s")
            line = self.proc.stdout.readline()
            if not line:
                tail = self.log.read_text().strip().splitlines()[-1:] or ["(no output)"]
                raise RuntimeError(f"{self.name} exited ({self.proc.wait()}): {tail[0][:200]}")
            if line.startswith("{"):
                return json.loads(line)  # other lines are the authors' prints

    def call(self) -> dict:
        self.proc.stdin.write("call\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def worker_commands(args: argparse.Namespace, row: str, batch: int) -> dict[str, list[str]]:
    """The command line of every side of ``row``: 'authors', 'avsync' and 'avsync +<levers>'."""
    common = ["--row", row, "--batch", str(batch), "--threads", str(args.threads)]
    cmds = {"authors": [args.authors_python, str(HERE / "side_by_side_authors.py"),
                        "--authors-root", str(args.authors_root), *common,
                        *(["--wheels", *map(str, args.wheels)] if args.wheels else [])],
            "avsync": [sys.executable, str(HERE / "side_by_side_avsync.py"), *common]}
    for levers in args.variants:
        cmds[f"avsync +{levers}"] = [sys.executable, str(HERE / "side_by_side_avsync.py"), *common, "--levers", levers]
    return cmds


def measure_row(args: argparse.Namespace, row: str, batch: int, log_dir: Path) -> dict:
    """Start every side, one warm-up call each, then ``--repeats`` rounds in turn."""
    result = {"row": row, "batch": batch, "warmup": args.warmup, "threads": args.threads,
              "measured_at": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "load_start": os.getloadavg()[0],
              "sides": {}}
    workers: list[Worker] = []
    try:
        for name, cmd in worker_commands(args, row, batch).items():
            print(f"[{row}] starting {name}", flush=True)
            workers.append(Worker(name, cmd, args.timeout, log_dir))
            result["sides"][name] = {"build_s": workers[-1].info["build_s"], "times": [],
                                     "note": workers[-1].info.get("note", "")}
        for r in range(args.warmup + args.repeats):
            for w in workers:
                answer, side = w.call(), result["sides"][w.name]
                if "first_s" not in side:
                    side.update(first_s=answer["sec"], out=answer["out"])
                if r >= args.warmup:
                    side["times"].append(answer["sec"])
                label = "warm-up" if r < args.warmup else f"round {r + 1 - args.warmup}"
                print(f"[{row}] {label} {w.name} {answer['sec']:.2f} s -> {answer['out'][:4]}", flush=True)
    except RuntimeError as err:
        result["error"] = str(err)
    finally:
        for w in workers:
            w.close()
    result["load_end"] = os.getloadavg()[0]
    return result


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(authors: float | None, ours: float | None) -> float | None:
    return authors / ours if authors and ours else None


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def numerics(row: str, sides: dict) -> str:
    """Both sides' first outputs: the first step's loss, or the clip's offset and confidence."""
    outs = {name: side.get("out") for name, side in sides.items() if side.get("out")}
    if "authors" not in outs or "avsync" not in outs:
        return "—"
    a, b = outs["authors"], outs["avsync"]
    if ROWS[row].kind == "train":
        return f"loss {a[0]:.4g} / {b[0]:.4g}"
    if ROWS[row].kind == "loader":
        return f"video input mean {a[0]:.6g} / {b[0]:.6g}, audio input mean {a[1]:.6g} / {b[1]:.6g}"
    if ROWS[row].key.endswith("_infer") and ROWS[row].key.split("_")[0] in ("sparsesync", "synchformer"):
        return f"class {a[0]:g} / {b[0]:g}, p {a[1]:.4g} / {b[1]:.4g} (crops differ: see below)"
    if len(a) == 2 and len(b) == 2:
        return f"offset {a[0]:g} / {b[0]:g}, conf {a[1]:.4g} / {b[1]:.4g}"
    diff = max(abs(x - y) for x, y in zip(a, b)) / max(max(abs(x) for x in a), 1e-12)
    return f"logits max rel diff {diff:.1e}"


def variant_names(result: dict) -> list[str]:
    return [name for name in result["sides"] if name.startswith("avsync +")]


def table(results: list[dict]) -> list[str]:
    cols = ["row", "batch", "timed calls (+ warm-up)", "authors s: median (fastest)", "avsync s: median (fastest)", "ratio (medians)",
            "ratio (fastest)", "avsync variants: median s (ratio of medians)", "first call s (authors / avsync)",
            "first outputs (authors / avsync)", "load before → after"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in results:
        sides = r["sides"]
        times = {name: side.get("times", []) for name, side in sides.items()}
        a, b = median(times.get("authors", [])), median(times.get("avsync", []))
        fa, fb = min(times.get("authors") or [0]) or None, min(times.get("avsync") or [0]) or None
        variants = "; ".join(f"{name[8:]}: {fmt(median(times[name]))} ({fmt(ratio(a, median(times[name])), 2, 'x')})"
                             for name in variant_names(r)) or "—"
        first = [sides.get(n, {}).get("first_s") for n in ("authors", "avsync")]
        warm = r.get("warmup", 1)  # runs before --warmup existed took one
        cells = [ROWS[r["row"]].title, str(r["batch"]), f"{len(times.get('authors', []))} (+{warm})", f"{fmt(a)} ({fmt(fa)})", f"{fmt(b)} ({fmt(fb)})",
                 f"**{fmt(ratio(a, b), 2, 'x')}**", fmt(ratio(fa, fb), 2, "x"), variants,
                 f"{fmt(first[0])} / {fmt(first[1])}", numerics(r["row"], sides),
                 f"{r['load_start']:.1f} → {r['load_end']:.1f}"]
        if "error" in r:
            cells[-1] += f"; not complete: {r['error']}"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(results: list[dict], path: Path) -> None:
    """Ratio authors / avsync per row (and per variant), with the 1x and 1.5x lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if median(r["sides"].get("authors", {}).get("times", []))]
    if not rows:
        return
    labels, values, colors = [], [], []
    for r in rows:
        a = median(r["sides"]["authors"]["times"])
        for i, n in enumerate(["avsync", *variant_names(r)]):
            labels.append(f"{ROWS[r['row']].title}" + ("" if n == "avsync" else f" [{n[8:]}]"))
            values.append(ratio(a, median(r["sides"].get(n, {}).get("times", []))) or 0.0)
            colors.append(f"C{i}")
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.35 * len(labels)))
    ax.barh(labels, values, color=colors)
    ax.axvline(1.0, color="k", lw=1)
    ax.axvline(1.5, color="r", lw=1, ls="--")
    ax.set_xlabel("authors' median time / avsync's (> 1: avsync faster; dashed: 1.5x)")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(results: list[dict], args: argparse.Namespace, argv: list[str], path: Path) -> list[str]:
    import platform

    import torch

    command = " ".join(shlex.quote(a) for a in ["python", "benchmarks/side_by_side.py", *argv])
    dates = [r["measured_at"] for r in results if "measured_at" in r]
    lines = [
        "# avsync vs the authors' code, side by side", "",
        f"- machine: {platform.machine()}, `nproc` {os.cpu_count()}, shared with other jobs; torch threads "
        f"{args.threads} on every side; load average (1 min) per row in the table",
        f"- torch {torch.__version__}, Python {platform.python_version()}; authors' side: `{args.authors_python}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC"
        + (f"; rows with a recorded start time were measured {min(dates)} to {max(dates)} UTC" if dates else ""),
        f"- command: `{command}`" + (" (a report of earlier runs' timings; their commands are in "
                                      "benchmarks/results/README.md)" if args.from_json else ""), "",
        "Per row, each side's timed calls after its warm-up call(s), the sides called in turn (A B A B ...). "
        "ratio = authors' time / avsync's (> 1: avsync faster), of the medians and of the fastest calls (the "
        "least disturbed by the other jobs on this machine). Same weights (synthetic, authors' layout), same "
        "inputs, same batch and threads.", "",
        *table(results), "",
        "What each row runs:", "",
        *[f"- {ROWS[r['row']].title}: {ROWS[r['row']].what}" for r in results], "",
        f"![ratios]({path.with_suffix('.png').name})",
    ]
    return lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="rows: " + ", ".join(ROWS))
    p.add_argument("--authors-root", type=Path, help="folder with the authors' checkouts")
    p.add_argument("--authors-python", default=DEFAULT_AUTHORS_PYTHON, help="Python of the authors' environment")
    p.add_argument("--wheels", type=Path, nargs="*", default=[],
                   help="folders with torchvision 0.12.0 / 0.15.0 wheels (their read_video; inference rows)")
    p.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS), metavar="ROW")
    p.add_argument("--batch", type=int, help="batch of every training row (default: the row's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed calls per side first (0: the first call is timed; for calls of minutes)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads of every side")
    p.add_argument("--variants", nargs="*", default=[],
                   help="avsync lever sets to time as well, e.g. foreach channels_last,foreach compile")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker answer")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "side_by_side.md")
    p.add_argument("--json", type=Path, help="also write the raw timings here")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the worker commands, run nothing")
    p.add_argument("--from-json", type=Path, nargs="*", default=[],
                   help="measure nothing: write the report of earlier --json files (concatenated)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        raise SystemExit("--repeats must be >= 1 and --warmup >= 0")
    if args.from_json:
        results = [r for path in args.from_json for r in json.loads(path.read_text())]
        return write(results, args, argv)
    if args.authors_root is None:
        if not args.dry_run:
            raise SystemExit("--authors-root is required (the folder with the authors' checkouts)")
        args.authors_root = Path("AUTHORS_ROOT")
    plan = [(row, args.batch if args.batch and ROWS[row].kind == "train" else ROWS[row].batch) for row in args.rows]
    if args.dry_run:
        for row, batch in plan:
            print(f"{row} (batch {batch}, {args.warmup} warm-up + {args.repeats} rounds):")
            for name, cmd in worker_commands(args, row, batch).items():
                print(f"  {name}: {shlex.join(cmd)}")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="side_by_side_") as tmp:
        for row, batch in plan:
            results.append(measure_row(args, row, batch, Path(tmp)))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return write(results, args, argv)


def write(results: list[dict], args: argparse.Namespace, argv: list[str]) -> int:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(results, args.out.with_suffix(".png"))
    lines = report(results, args, argv, args.out)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

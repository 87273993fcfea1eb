"""Shared plumbing of the benchmark scripts: timing, peak memory, isolation in a fresh process,
the fused-attention switch, channels-last, autocast, and the markdown/PNG report.

Each measurement that reports memory runs in its own Python process (``run_isolated``): on CPU
the peak is the process's resident-set high-water mark (``ru_maxrss``), which is only meaningful
when nothing else ran in that process before. On CUDA it is ``torch.cuda.max_memory_allocated``.
Benchmarks are never asserted in tests; these helpers only measure and write.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


# -- machine and command ----------------------------------------------------------------------
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(title: str, argv: list[str], device: str) -> list[str]:
    """Title plus machine, torch version, date and the exact command: the top of every results file."""
    dev = cpu_name()
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = f"{torch.cuda.get_device_name()} (host: {dev})"
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *argv])
    return [
        f"# {title}", "",
        f"- machine: {dev}, {os.cpu_count()} CPU core(s), torch threads {torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f} at the start",
        f"- torch {torch.__version__}, Python {platform.python_version()}, {platform.system()}",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `{command}`", "",
    ]


def markdown_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def write_report(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {path}")


# -- memory -------------------------------------------------------------------------------------
def rss_mb() -> float:
    """Current resident set size of this process (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """High-water mark of the resident set since this process started (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMemory:
    """Peak memory of what runs inside ``with``: CUDA allocator peak, or on CPU the rise of the RSS
    high-water mark over the RSS on entry (so model weights and inputs made before are excluded)."""

    def __init__(self, device: str):
        self.device = device
        self.delta_mb = self.peak_mb = float("nan")

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated() / 2**20
        else:
            self._base = rss_mb()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self.peak_mb = peak_rss_mb()
        self.delta_mb = max(0.0, self.peak_mb - self._base)


# -- timing ---------------------------------------------------------------------------------------
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_calls(fn: Callable[[], object], device: str, warmup: int, min_calls: int, max_calls: int,
               budget_s: float) -> list[float]:
    """Seconds of each timed call of ``fn``: ``warmup`` untimed calls, then at least ``min_calls``
    and at most ``max_calls`` timed ones, stopping once ``budget_s`` of timed calls have passed."""
    for _ in range(warmup):
        fn()
    sync(device)
    times: list[float] = []
    while len(times) < max_calls and (len(times) < min_calls or sum(times) < budget_s):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def time_quick(fn: Callable[[], object], device: str, max_calls: int, budget_s: float,
               slow_s: float = 10.0) -> tuple[list[float], int]:
    """``--quick`` timing: a first call longer than ``slow_s`` is the measurement itself (one call,
    no warm-up: one-time costs are small next to it); otherwise it was the warm-up and up to
    ``max_calls`` more are timed. Returns (times, warm-up calls)."""
    t0 = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t0
    if first > slow_s:
        return [first], 0
    return time_calls(fn, device, 0, 1, max_calls, budget_s), 1


def time_case(fn: Callable[[], object], args: argparse.Namespace, max_calls: int) -> tuple[list[float], int]:
    """Times ``fn`` as the command line asks: :func:`time_quick` under ``--quick``, else ``--warmup``
    untimed calls then :func:`time_calls` within ``--budget``. Returns (times, warm-up calls)."""
    if args.quick:
        return time_quick(fn, args.device, max_calls, args.budget)
    return time_calls(fn, args.device, args.warmup, 1, max_calls, args.budget), args.warmup


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- the speed-ups under test -------------------------------------------------------------------
def explicit_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                       enable_gqa=False):
    """softmax(q kᵀ · scale + mask) v materialised step by step, as the papers' reference code does;
    a drop-in for ``F.scaled_dot_product_attention`` (same arguments) to measure what fusing saves."""
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    att = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        n_q, n_k = att.shape[-2:]
        attn_mask = torch.ones(n_q, n_k, dtype=torch.bool, device=att.device).tril()
    if attn_mask is not None:
        att = att.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else att + attn_mask
    att = att.softmax(-1)
    if dropout_p:
        att = F.dropout(att, dropout_p)
    return att @ value


@contextlib.contextmanager
def attention_kind(kind: str) -> Iterator[None]:
    """``fused``: the suite's ``F.scaled_dot_product_attention``; ``explicit``: every model's calls
    (they all go through ``torch.nn.functional``) replaced by :func:`explicit_attention`."""
    if kind not in ("fused", "explicit"):
        raise ValueError(f"attention must be 'fused' or 'explicit', got {kind!r}")
    if kind == "fused":
        yield
        return
    original = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = explicit_attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def to_channels_last(module: nn.Module) -> nn.Module:
    """Convolution weights in channels-last order (2D convs ``channels_last``, 3D ``channels_last_3d``);
    convolutions then produce channels-last outputs, so the activations follow."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            fmt = torch.channels_last_3d if isinstance(m, nn.Conv3d) else torch.channels_last
            m.weight.data = m.weight.data.contiguous(memory_format=fmt)
    return module


def autocast(device: str, bf16: bool):
    """bf16 autocast on the device's type, or nothing."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


# -- one measurement per fresh process -----------------------------------------------------------
def run_isolated(script: Path, args: list[str], timeout_s: float) -> dict:
    """Run ``script --worker ...`` in a new interpreter and return the JSON object it prints last;
    a failure (crash, out of memory, time limit) comes back as ``{"error": reason}``."""
    cmd = [sys.executable, str(script), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"over the {timeout_s:.0f} s limit"}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    reason = "killed (out of memory?)" if proc.returncode in (-9, 137) else f"exit {proc.returncode}"
    tail = proc.stderr.strip().splitlines()[-1:] or [""]
    return {"error": f"{reason}: {tail[0][:160]}"}


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:  # None or NaN
        return "—"
    return f"{value:.{digits}f}"


def save_barh(path: Path, labels: list[str], values: list[float], *, xlabel: str, title: str, color: str,
              log: bool = False, figsize: tuple[float, float] = (8, 4.5), dpi: int = 110) -> None:
    """One horizontal bar per measured model (top to bottom in the given order), saved as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not labels:
        return
    fig, ax = plt.subplots(figsize=figsize)
    ax.barh(labels, values, color=color)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


# -- the per-model runner shared by train_step.py and inference.py --------------------------------
def add_case_arguments(p: argparse.ArgumentParser, timeout_s: float) -> None:
    """The options every per-model benchmark takes (which models, device, isolation, output)."""
    p.add_argument("--cases", nargs="*", help="subset of models (default: all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (cuda or cpu)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--toy", action="store_true", help="toy configs (smoke run)")
    p.add_argument("--no-isolate", action="store_true", help="all models in this process (memory is approximate)")
    p.add_argument("--timeout", type=float, default=timeout_s, help="per model, isolated runs")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--worker", help=argparse.SUPPRESS)


def check_device(args: argparse.Namespace) -> None:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for but torch sees no GPU")


def result_path(args: argparse.Namespace, name: str) -> Path:
    """``--out`` or ``results/<name>[_cuda][_bf16][_toy].md`` (its folder created)."""
    suffix = ("_" + args.device.split(":")[0] if args.device != "cpu" else "") + ("_bf16" if args.bf16 else "") \
        + ("_toy" if args.toy else "")
    path = args.out or RESULTS / f"{name}{suffix}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run_cases(script: Path, cases, argv: list[str], args: argparse.Namespace, measure: Callable,
              worker_flags: list[str], skip: Callable[[object], str | None] = lambda case: None) -> list[dict]:
    """Measure each case, in its own process unless ``--no-isolate``; ``skip(case)`` may give a
    reason to record instead of measuring. ``worker_flags`` carry the limits the parent settled."""
    results = []
    for case in cases:
        print(f"-- {case.key}", flush=True)
        reason = skip(case)
        if reason:
            results.append({"case": case.key, "error": reason})
        elif args.no_isolate:
            results.append(measure(case.key, args))
        else:
            worker = [a for a in argv if a != "--quick"] + ["--worker", case.key] + \
                (["--quick"] if args.quick else []) + worker_flags
            results.append({"case": case.key, **run_isolated(script, worker, args.timeout)})
        print(json.dumps(results[-1]), flush=True)
    return results

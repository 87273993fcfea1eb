"""Pair-scoring throughput of VocaLiST and SyncNet: windows/s at batch 64 (VocaLiST issue, point 7).

The unit of work of a lip-sync scorer is one (5-frame visual window, matching audio) pair: the
score search runs 31 of them per visual window. Here a batch of 64 pairs goes through the model's
own ``pair_scores`` (model-side mel/MFCC and frame normalisation included, decoding excluded) in
eval mode under ``torch.inference_mode()``, at the papers' sizes (VocaLiST 48x96 mouth crops,
SyncNet 224 px); windows/s = 64 / seconds per call. Each model runs in its own process.

    python benchmarks/pair_windows.py [--quick] [--cases vocalist syncnet] [--batch 64] [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cases import CASES, select, synthetic_batch, to_device, trainable_parameters  # noqa: E402
from bench_common import (PeakMemory, add_case_arguments, autocast, check_device, fmt, header,  # noqa: E402
                          markdown_table, median, result_path, run_cases, save_barh, time_case,
                          write_report)

PAIR_CASES = ("vocalist", "syncnet")
WINDOW = 5


def measure(key: str, args: argparse.Namespace) -> dict:
    import warnings
    warnings.filterwarnings("ignore")
    case = CASES[key]
    torch.manual_seed(0)
    module = case.make(args.toy).to(args.device).eval()
    batch = to_device(synthetic_batch(module, case, args.batch, frames=WINDOW), args.device)
    frames, wav = batch["video"], batch["audio"]

    @torch.inference_mode()
    def score() -> None:
        with autocast(args.device, args.bf16):
            module.pair_scores(frames, wav)

    with PeakMemory(args.device) as mem:
        times, warmup = time_case(score, args, args.calls)
    sec = median(times)
    return {"case": key, "params": trainable_parameters(module)[0], "batch": args.batch, "sec_per_batch": sec,
            "windows_per_s": args.batch / sec, "frame_hw": list(frames.shape[2:4]), "calls": len(times),
            "warmup": warmup, "peak_mb": mem.peak_mb, "delta_mb": mem.delta_mb}


def plot(results: list[dict], path: Path, title: str) -> None:
    ok = [r for r in results if "error" not in r]
    save_barh(path, [CASES[r["case"]].title for r in ok], [r["windows_per_s"] for r in ok], color="tab:blue",
              xlabel="scored windows / s", title=title, figsize=(7, 2.8), dpi=120)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_case_arguments(p, timeout_s=900)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--quick", action="store_true", help="one warm-up call (none if it is slow), few timed calls")
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--budget", type=float, default=30.0, help="seconds of timed calls per model")
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return
    check_device(args)
    cases = [c for c in select(args.cases or list(PAIR_CASES)) if c.key in PAIR_CASES]
    flags = ["--batch", str(args.batch), "--calls", str(args.calls), "--budget", str(args.budget)]
    flags += ["--quick"] if args.quick else []
    results = run_cases(Path(__file__), cases, argv, args, measure, flags)
    rows = []
    for r in results:
        if "error" in r:
            rows.append([CASES[r["case"]].title, "—", "—", "—", "—", r["error"]])
            continue
        rows.append([CASES[r["case"]].title, fmt(r["params"] / 1e6, 1), f"{r['frame_hw'][0]}x{r['frame_hw'][1]}",
                     fmt(r["sec_per_batch"], 3), fmt(r["windows_per_s"], 1), fmt(r["peak_mb"] / 1024, 2)])
    lines = header(f"Pair-scoring throughput at batch {args.batch} (VocaLiST, SyncNet)", ["benchmarks/pair_windows.py", *argv],
                   args.device)
    lines += ["One call = a batch of (5-frame window, audio) pairs through the model's `pair_scores` "
              "(eval, `torch.inference_mode()`, model-side features included); median of the timed calls.", ""]
    lines += markdown_table(["model", "params (M)", "frames", "s / batch", "windows / s", "peak GiB"], rows)
    path = result_path(args, "pair_windows")
    lines += ["", f"![pair windows]({path.with_suffix('.png').name})"]
    write_report(path, lines)
    plot(results, path.with_suffix(".png"), f"pair scoring at batch {args.batch}, {args.device}")


if __name__ == "__main__":
    main()

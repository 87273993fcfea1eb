"""Inference throughput per model: the CPU edition of DiVAS Table 1 (issue 8, point 3).

DiVAS Table 1 gives, beside accuracy, the frames per second each synchronisation model processes
when it predicts a clip's offset (RTX 3090; preprocessing such as face detection excluded): SyncNet
265, VocaLiST 13, DiVAS 4500. What a model runs per clip differs: the pair scorers search ±15
frames (W = L − 5 − 30 + 1 visual windows x 31 offsets; DiVAS, SyncNet and AVST encode each
distinct window once, VocaLiST's cross-modal transformer runs on all W x 31 pairs), the grid
classifiers (SparseSync, Synchformer) classify a 5 s / 4.8 s clip in one forward pass.

Each model predicts one clip at a time through its ``predict_step`` (model-side transforms —
spectrograms, normalisation — included, decoding excluded), eval mode, ``torch.inference_mode``,
in its own process (peak memory as in ``train_step.py``). Reported: clips/s and video frames/s
(clip frames / seconds per clip, the unit of Table 1).

    python benchmarks/inference.py [--quick] [--cases divas_face syncnet vocalist] [--device cuda --bf16]
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

PAPER_FPS = {"syncnet": 265.0, "vocalist": 13.0, "divas_face": 4500.0}  # DiVAS Table 1, RTX 3090
SEARCH_WINDOW, MAX_SHIFT = 5, 15
TRAINING_ONLY = ("synchformer_stage1",)  # pre-training: nothing to predict


def measure(key: str, args: argparse.Namespace) -> dict:
    import warnings
    warnings.filterwarnings("ignore")
    case = CASES[key]
    torch.manual_seed(0)
    module = case.make(args.toy).to(args.device).eval()
    batch = to_device(synthetic_batch(module, case, 1), args.device)

    @torch.inference_mode()
    def predict() -> None:
        with autocast(args.device, args.bf16):
            module.predict_step(batch, 0)

    with PeakMemory(args.device) as mem:
        times, warmup = time_case(predict, args, args.calls)
    sec = median(times)
    frames = batch["video"].shape[1]
    grid = module.input_spec.offset_classes is not None
    work = "1 forward (grid of 21)" if grid else \
        f"{frames - SEARCH_WINDOW - 2 * MAX_SHIFT + 1} windows x {2 * MAX_SHIFT + 1} offsets"
    return {"case": key, "params": trainable_parameters(module)[0], "sec_per_clip": sec,
            "clips_per_s": 1 / sec, "frames_per_s": frames / sec, "clip_frames": frames,
            "clip_sec": frames / module.input_spec.fps, "frame_hw": list(batch["video"].shape[2:4]),
            "work": work, "calls": len(times), "warmup": warmup, "peak_mb": mem.peak_mb, "delta_mb": mem.delta_mb}


def plot(results: list[dict], path: Path, title: str) -> None:
    ok = [r for r in results if "error" not in r]
    save_barh(path, [r["case"] for r in ok], [r["frames_per_s"] for r in ok], color="tab:green", log=True,
              xlabel="video frames / s while predicting the offset (log scale)", title=title)


def report(results: list[dict], args: argparse.Namespace, argv: list[str]) -> None:
    rows = []
    for r in results:
        case = CASES[r["case"]]
        if "error" in r:
            rows.append([case.title, "—", "—", "—", "—", "—", "—", "—", f"not measured: {r['error']}"])
            continue
        paper = PAPER_FPS.get(r["case"])
        clip = f"{r['clip_frames']} fr ({r['clip_sec']:.2f} s), {r['frame_hw'][0]}x{r['frame_hw'][1]}"
        rows.append([case.title, f"{r['params'] / 1e6:.1f}", clip, r["work"], fmt(r["sec_per_clip"], 3),
                     fmt(r["clips_per_s"], 3), fmt(r["frames_per_s"], 1), fmt(paper, 0) if paper else "—",
                     fmt(r["delta_mb"] / 1024, 2)])
    by_key = {r["case"]: r for r in results if "error" not in r}
    ratios = []
    if "divas_face" in by_key:
        for other, paper_ratio in (("syncnet", 4500 / 265), ("vocalist", 4500 / 13)):
            if other in by_key:
                ours = by_key["divas_face"]["frames_per_s"] / by_key[other]["frames_per_s"]
                ratios.append(f"- DiVAS face / {other}: **{ours:.1f}x** faster here (paper: {paper_ratio:.0f}x)")
    precision = "bf16 autocast" if args.bf16 else "fp32"
    lines = header("Inference throughput (CPU edition of DiVAS Table 1)", argv, args.device)
    lines += [f"One clip per call through the module's `predict_step` (offset prediction incl. model-side "
              f"spectrograms/normalisation; decoding excluded), {precision}, device `{args.device}`, "
              f"{'toy configs' if args.toy else 'the papers’ configs'}; median of the timed clips after "
              f"{warmup_text(args)}. Peak memory: rise over the state after building the model.", ""]
    lines += markdown_table(["model", "params (M)", "clip", "work per clip", "s / clip", "clips / s",
                             "video frames / s", "Table 1 FPS (RTX 3090)", "peak GiB"], rows)
    if ratios:
        lines += ["", "Speed ratios in video frames/s (Table 1: DiVAS ~17x SyncNet, ~350x VocaLiST):", "", *ratios]
    stem = args.out.with_suffix("")
    plot(results, stem.with_suffix(".png"), f"Offset prediction, {args.device} {precision}")
    lines += ["", f"![inference]({stem.with_suffix('.png').name})"]
    write_report(args.out, lines)


def warmup_text(args: argparse.Namespace) -> str:
    if args.quick:
        return "one warm-up clip, except that a first clip over 10 s is itself the (only) timed one"
    return f"{args.warmup} warm-up clip(s)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="cases: " + ", ".join(CASES))
    add_case_arguments(p, timeout_s=600.0)
    p.add_argument("--calls", type=int, default=10, help="most timed clips per model")
    p.add_argument("--budget", type=float, default=30.0, help="stop timing a model after this many seconds")
    p.add_argument("--quick", action="store_true",
                   help="make bench: up to 3 clips; a clip over 10 s is timed once without warm-up; AVST skipped")
    return p


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    check_device(args)
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return
    if args.quick:
        args.calls, args.budget = min(args.calls, 3), min(args.budget, 10.0)
    args.out = result_path(args, "inference")
    cases = select(args.cases) if args.cases else [c for c in CASES.values() if c.key not in TRAINING_ONLY]
    results = run_cases(Path(__file__), cases, argv, args, measure,
                        ["--calls", str(args.calls), "--budget", str(args.budget)],
                        skip=lambda case: "skipped by --quick (minutes per clip on a CPU)"
                        if args.quick and case.slow_search and not args.toy else None)
    report(results, args, [str(Path("benchmarks") / Path(__file__).name), *argv])


if __name__ == "__main__":
    main()

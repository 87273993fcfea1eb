"""Training-step throughput and peak memory per model at the papers' input sizes (issue 8, point 3).

One step = the LightningModule's own ``training_step`` (its loss path), ``backward`` and the
optimiser of its ``configure_optimizers``, on a batch of 2 synthetic clips shaped as the data
modules deliver them. Every model runs in a fresh process so its peak memory is its own: on CPU
the rise of the resident-set high-water mark over the RSS after building the model and batch
(activations, gradients, optimiser state), on CUDA ``torch.cuda.max_memory_allocated``.

    python benchmarks/train_step.py                         # all models, CPU, fp32
    python benchmarks/train_step.py --quick                 # fewer steps (make bench)
    python benchmarks/train_step.py --device cuda --bf16    # on a GPU with bf16 autocast
    python benchmarks/train_step.py --toy --cases sparsesync --steps 1 --no-isolate   # smoke run
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cases import CASES, first_optimizer, select, synthetic_batch, to_device, trainable_parameters  # noqa: E402
from bench_common import (PeakMemory, add_case_arguments, autocast, check_device, fmt, header,  # noqa: E402
                          markdown_table, median, result_path, run_cases, time_case, write_report)


def measure(key: str, args: argparse.Namespace) -> dict:
    """Build one model, time its training steps and record the peak memory (in this process)."""
    warnings.filterwarnings("ignore")  # self.log without a Trainer warns once per call
    case = CASES[key]
    torch.manual_seed(0)
    module = case.make(args.toy).to(args.device)
    module.train()
    batch = to_device(synthetic_batch(module, case, args.batch_size, case.train_frames), args.device)
    opt = first_optimizer(module.configure_optimizers())

    def step() -> None:
        with autocast(args.device, args.bf16):
            loss = module.training_step(batch, 0)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with PeakMemory(args.device) as mem:
        times, warmup = time_case(step, args, args.steps)
    total, trainable = trainable_parameters(module)
    sec = median(times)
    return {"case": key, "params": total, "trainable": trainable, "sec_per_step": sec,
            "samples_per_s": args.batch_size / sec, "steps": len(times), "warmup": warmup,
            "peak_mb": mem.peak_mb, "delta_mb": mem.delta_mb,
            "video_shape": list(batch["video"].shape), "audio_shape": list(batch["audio"].shape)}


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if "error" not in r]
    if not ok:
        return
    names = [CASES[r["case"]].key for r in ok]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    axes[0].barh(names, [r["samples_per_s"] for r in ok], color="tab:blue")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("samples / s (fwd + bwd + optimiser step, log scale)")
    axes[1].barh(names, [r["delta_mb"] / 1024 for r in ok], color="tab:orange")
    axes[1].set_xlabel("peak memory of the step (GiB)")
    for ax in axes:
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(results: list[dict], args: argparse.Namespace, argv: list[str]) -> None:
    mem_name = "CUDA max allocated" if args.device.startswith("cuda") else "RSS rise"
    rows = []
    for r in results:
        case = CASES[r["case"]]
        if "error" in r:
            rows.append([case.title, "—", "—", "—", "—", "—", f"not measured: {r['error']}"])
            continue
        steps = f"{r['steps']}" + ("" if r["warmup"] else " (no warm-up)")
        rows.append([case.title, f"{r['params'] / 1e6:.1f} / {r['trainable'] / 1e6:.1f}",
                     fmt(r["sec_per_step"], 2), fmt(r["samples_per_s"], 3), fmt(r["delta_mb"] / 1024, 2),
                     steps, case.note])
    precision = "bf16 autocast" if args.bf16 else "fp32"
    lines = header("Training-step throughput and peak memory", argv, args.device)
    lines += [f"Batch {args.batch_size}, {precision}, device `{args.device}`, "
              f"{'toy configs' if args.toy else 'the papers’ configs and input sizes'}; median of the timed "
              f"steps after {warmup_text(args)}. Memory: {mem_name} during the steps over the "
              f"state after building the model and batch (activations, gradients, Adam state). Synthetic "
              f"uint8 clips / float waveforms of the delivered shapes; the step is the module's own "
              f"`training_step` + `backward` + its optimiser.", ""]
    lines += markdown_table(["model", "params (M) all / trainable", "s / step", "samples / s",
                             "peak GiB", "timed steps", "note"], rows)
    lines += ["", "Input shapes (video uint8, audio float):", ""]
    lines += [f"- {CASES[r['case']].key}: video {tuple(r['video_shape'])}, audio {tuple(r['audio_shape'])}"
              for r in results if "error" not in r]
    stem = args.out.with_suffix("")
    plot(results, stem.with_suffix(".png"), f"Training step, batch {args.batch_size}, {args.device} {precision}")
    lines += ["", f"![training step]({stem.with_suffix('.png').name})"]
    write_report(args.out, lines)


def warmup_text(args: argparse.Namespace) -> str:
    if args.quick:
        return "one warm-up step, except that a first step over 10 s is itself the (only) timed step"
    return f"{args.warmup} warm-up step(s)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="cases: " + ", ".join(CASES))
    add_case_arguments(p, timeout_s=900.0)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="most timed steps per model")
    p.add_argument("--budget", type=float, default=60.0, help="stop timing a model after this many seconds")
    p.add_argument("--quick", action="store_true",
                   help="make bench: at most 2 timed steps; a step over 10 s is timed once without warm-up")
    return p


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    check_device(args)
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return
    if args.quick:
        args.steps, args.budget = min(args.steps, 2), min(args.budget, 20.0)
    args.out = result_path(args, "train_step")
    results = run_cases(Path(__file__), select(args.cases), argv, args, measure,
                        ["--steps", str(args.steps), "--budget", str(args.budget)])
    report(results, args, [str(Path("benchmarks") / Path(__file__).name), *argv])


if __name__ == "__main__":
    main()

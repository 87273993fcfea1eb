"""Throughput of ``avsync score``: clips per second for each metric, decoding included (run on demand).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/score_throughput.py --metrics offset,desync --size toy
    .venv/bin/python benchmarks/score_throughput.py --size full --device cuda --clips ../shared/fixtures/real

Models are random-init (throughput does not depend on the weights): ``--size toy`` the toy SyncNet
(offset, 32 px score search) and the toy Synchformer (DeSync, 32 px); ``--size full`` the paper-size
Synchformer for both (offset: grid classifier over 4.8 s crops; DeSync: 2 windows of 14 segments).
Clips: ``--clips`` (files, folders, @lists) or N synthetic 10 s H.264/AAC clips written first.
Each metric runs alone through the same runner as the command (``run_score``, no CSV), once to warm
up on the first clip, then timed over all clips: wall time, and the CPU time of this process and its
decoding processes (on a shared machine the wall time mostly measures the neighbours). Prints a markdown table and writes it to
benchmarks/results/score_throughput_<size>_<device>.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def _checkpoint(metric: str, size: str, folder: Path) -> Path:
    torch.manual_seed(0)
    if size == "full" or metric == "desync":
        from avsync.lit.synchformer_stage2 import SynchformerStage2Module

        arch = "synchformer" if size == "full" else "synchformer_toy"
        overrides = {} if size == "full" else {"resize_short_side": 32}
        module = SynchformerStage2Module(arch=arch, input_overrides=overrides)
        class_path = "avsync.lit.synchformer_stage2.SynchformerStage2Module"
    else:
        from avsync.lit.syncnet import SyncNetModule

        module = SyncNetModule(arch="syncnet_toy", input_overrides={"crop": "full", "frame_size": 32,
                                                                     "resize_short_side": 32},
                               clip_frames=40, eval_contexts=[5])
        class_path = "avsync.lit.syncnet.SyncNetModule"
    path = folder / f"{metric}_{size}.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": {**module.hparams, "_class_path": class_path}},
               path)
    return path


def _synthetic_clips(folder: Path, count: int) -> list[str]:
    from avsync.toy.title import write_title

    return [str(write_title(folder / f"clip{i}.mp4", 10.0, lambda t: np.zeros_like(t), seed=i)) for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", default="offset,desync")
    parser.add_argument("--size", choices=("toy", "full"), default="toy")
    parser.add_argument("--clips", nargs="*", help="inputs (default: --synthetic clips of 10 s)")
    parser.add_argument("--synthetic", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from avsync.score.metrics import ModelChoice
    from avsync.score.runner import resolve_device, run_score
    from avsync.score.scan import scan_inputs

    device = resolve_device(args.device)
    lines = [f"`{' '.join(['benchmarks/score_throughput.py', *(argv if argv is not None else sys.argv[1:])])}`",
             "", f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, device {device}, workers {args.workers}, size {args.size}", "",
             "| metric | clips | scored | wall s | clips/s (wall) | CPU s (this + decoders) | clips per CPU s |",
             "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = scan_inputs(args.clips) if args.clips else _synthetic_clips(tmp, args.synthetic)
        for metric in [m.strip() for m in args.metrics.split(",") if m.strip()]:
            choices = {metric: ModelChoice(ckpt=str(_checkpoint(metric, args.size, tmp)))}
            run_score(clips[:1], [metric], choices=choices, device=device, workers=0, progress=False)  # warm-up
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start, cpu0 = time.perf_counter(), os.times()
            rows = run_score(clips, [metric], choices=choices, device=device, workers=args.workers, progress=False)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds, cpu1 = time.perf_counter() - start, os.times()
            cpu = sum(getattr(cpu1, k) - getattr(cpu0, k) for k in ("user", "system", "children_user",
                                                                       "children_system"))
            scored = sum(r["status"] == "ok" for r in rows)
            lines.append(f"| {metric} | {len(clips)} | {scored} | {seconds:.1f} | {len(clips) / seconds:.3f} | "
                         f"{cpu:.1f} | {len(clips) / cpu:.3f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    out = args.out or REPO / "benchmarks" / "results" / f"score_throughput_{args.size}_{device.split(':')[0]}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

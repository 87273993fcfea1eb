#!/usr/bin/env python
"""How much faster can a training step get while it keeps the authors' numerics? A profiler bound.

A training step of the same network at the same precision runs the same dense kernels on both
sides: oneDNN convolutions (forward and backward), MKL GEMMs (``mm``/``addmm``/``bmm``) and the
fused attention kernel. The levers of issue 21 (``torch.compile``, channels-last, fused/foreach
Adam, fewer copies) can only remove or fuse the *other* work (element-wise ops, norms,
activations, the optimiser's update, Python and dispatch overhead) — or, for channels-last,
change the convolutions' memory order, which ``side_by_side.py`` measures directly. So the time
of one step spent in the dense kernels bounds every such lever (Amdahl):

    best possible avsync step  >=  dense-kernel time
    best possible ratio (authors / avsync)  <=  authors' step / avsync's dense-kernel time
                                             =  measured ratio x (avsync step / its dense time)

This script profiles avsync's side of each training row of ``side_by_side.py`` (the same builder,
weights, inputs, batch and thread count) with ``torch.profiler`` over ``--steps`` steps after one
warm-up step, classifies every op's *self* CPU time, and writes the share of the dense kernels,
the bound ``step / dense`` and the ten most expensive ops. Pass ``--ratios`` (the measured
authors / avsync medians of the side-by-side table) to get the ceiling of the ratio itself.

    python benchmarks/kernel_ceiling.py --steps 2 --ratios syncnet_train=0.92 vocalist_train=1.01 \
        synchformer_cached_train=0.94 sparsesync_train=1.02 synchformer_train=1.08

Run on demand; never by the tests.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_common import RESULTS, header, markdown_table, write_report  # noqa: E402
from side_by_side_avsync import BUILDERS  # noqa: E402

#: the training rows of ``side_by_side.py`` and the batch each is timed at there
TRAIN_ROWS = {"syncnet_train": 16, "vocalist_train": 16, "synchformer_cached_train": 16,
              "sparsesync_train": 1, "synchformer_train": 1}
#: op names of the dense kernels both sides share: the ops whose *self* time is the kernel itself
#: (dispatch wrappers such as ``aten::convolution``, ``aten::conv2d`` or ``aten::linear`` only call
#: these and count as overhead)
DENSE = {
    "convolution": re.compile(r"^aten::(mkldnn_convolution\w*|convolution_backward|_?slow_conv\w*|"
                              r"conv_depthwise\w*|_nnpack\w*)$"),
    "GEMM": re.compile(r"^aten::(mm|addmm|bmm|baddbmm|addbmm|_addmm_activation)$"),
    "attention": re.compile(r"^aten::(_scaled_dot_product_\w+|_flash_attention\w*|_efficient_attention\w*)$"),
}


def kind_of(op: str) -> str:
    for kind, pattern in DENSE.items():
        if pattern.search(op):
            return kind
    return "other"


def profile_row(row: str, batch: int, threads: int, steps: int) -> dict:
    torch.set_num_threads(threads)
    args = argparse.Namespace(batch=batch, threads=threads)
    step, _ = BUILDERS[row](args, set())
    step()  # warm-up: allocator, oneDNN primitive caches
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    wall = (time.perf_counter() - t0) / steps
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    self_us: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        self_us[event.key] += event.self_cpu_time_total
    total = sum(self_us.values())
    by_kind: dict[str, float] = defaultdict(float)
    for op, us in self_us.items():
        by_kind[kind_of(op)] += us
    dense = sum(v for k, v in by_kind.items() if k != "other")
    top = sorted(self_us.items(), key=lambda kv: -kv[1])[:10]
    return {"row": row, "batch": batch, "steps": steps, "wall_s": wall,
            "shares": {k: v / total for k, v in by_kind.items()}, "dense_share": dense / total,
            "bound": total / dense if dense else float("inf"),
            "top": [(op, us / total, kind_of(op)) for op, us in top]}


def report(results: list[dict], ratios: dict[str, float]) -> list[str]:
    lines = header("How far can a training step get at the authors' numerics? (profiler bound)",
                   sys.argv, "cpu")
    lines += ["Self CPU time of every op in avsync's training step (the side-by-side row's builder, "
              "weights, inputs and threads), profiled over the given steps after one warm-up step. "
              "Dense kernels = convolutions (forward + backward), GEMMs and fused attention, which "
              "a step at the same precision runs on both sides. 'bound' = step / dense time: the "
              "largest speed-up any lever that keeps those kernels can give (everything else free). "
              "'ratio ceiling' = the measured authors / avsync ratio x bound.", ""]
    rows = []
    for r in results:
        s, ratio = r["shares"], ratios.get(r["row"])
        rows.append([r["row"], r["batch"], f"{r['wall_s']:.2f}",
                     *(f"{100 * s.get(k, 0.0):.0f} %" for k in ("convolution", "GEMM", "attention", "other")),
                     f"{r['bound']:.2f}x", f"{ratio:.2f}x" if ratio else "—",
                     f"**{ratio * r['bound']:.2f}x**" if ratio else "—"])
    lines += markdown_table(["row", "batch", "step s (unprofiled)", "convolution", "GEMM", "attention",
                             "other", "bound", "measured ratio", "ratio ceiling"], rows)
    lines += ["", "Most expensive ops (share of the step's self CPU time, kind):", ""]
    for r in results:
        lines.append(f"- {r['row']}: " + "; ".join(f"`{op}` {100 * share:.1f} % ({kind})"
                                                   for op, share, kind in r["top"]))
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", nargs="+", default=list(TRAIN_ROWS), choices=list(TRAIN_ROWS))
    p.add_argument("--batch", type=int, default=None,
                   help="one batch for every row (default: each row's side-by-side batch, 16 or 1)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--ratios", nargs="*", default=[], metavar="ROW=RATIO",
                   help="measured authors / avsync medians from side_by_side.md")
    p.add_argument("--out", type=Path, default=RESULTS / "kernel_ceiling.md")
    args = p.parse_args()
    ratios = {k: float(v) for k, v in (item.split("=", 1) for item in args.ratios)}
    results = []
    for row in args.rows:
        results.append(profile_row(row, args.batch or TRAIN_ROWS[row], args.threads, args.steps))
        print(f"{row}: dense {100 * results[-1]['dense_share']:.1f} %, bound {results[-1]['bound']:.2f}x",
              flush=True)
    write_report(args.out, report(results, ratios))


if __name__ == "__main__":
    main()

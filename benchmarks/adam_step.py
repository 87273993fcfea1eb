"""One Adam step over a paper-size model's parameters with torch's three kernels (per-parameter loop,
foreach, fused): what the optimiser lever of side_by_side.py buys without the rest of the step.

    python benchmarks/adam_step.py      # seconds per step, min of 2 rounds of 3 steps each, 2 threads
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from avsync.registry import get_converter
from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict

GOLDENS = Path(__file__).resolve().parents[1] / "tests" / "goldens"
KERNELS = {"per-parameter loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def main() -> None:
    torch.set_num_threads(2)
    for name in ("vocalist", "syncnet"):
        net = get_converter(name).load_official(synthetic_state_dict(read_layout(GOLDENS / name / f"{name}_layout.json")))
        params = [p for p in net.parameters() if p.requires_grad]
        for p in params:
            p.grad = torch.randn_like(p)
        best: dict[str, float] = {}
        for _ in range(2):  # the kernels in turn, twice, so a change of load hits all of them
            for kernel, kwargs in KERNELS.items():
                opt = torch.optim.Adam(params, lr=1e-4, **kwargs)
                opt.step()  # the state is allocated in the first step
                t0 = time.perf_counter()
                for _ in range(3):
                    opt.step()
                best[kernel] = min(best.get(kernel, float("inf")), (time.perf_counter() - t0) / 3)
        size = sum(p.numel() for p in params) / 1e6
        print(f"{name}: {len(params)} tensors, {size:.1f} M parameters: "
              + ", ".join(f"{k} {v:.3f} s" for k, v in best.items()))


if __name__ == "__main__":
    main()

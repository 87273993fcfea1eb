"""The optimiser recipe the papers share: Adam with a linear warm-up from lr/100 ('constant_with_warmup')."""
from __future__ import annotations

from typing import Iterable

import torch


# The multi-tensor (foreach) Adam/AdamW kernels: the same update, bitwise, as the per-parameter loop
# torch uses by default on a CPU (tests/test_lit_optim.py), in a few batched kernels instead of
# ~10 small ops per parameter tensor. On this 2-core CPU an Adam step over VocaLiST's 80 M
# parameters went 29.0 -> 16.6 s and over SyncNet's 13.6 M 3.5 -> 1.4 s (machine load ~10, so
# read the ratios). The fused kernel is faster still but rounds differently and Lightning refuses
# gradient clipping with it under mixed precision, which the configs use.
FOREACH = True


def adam_with_warmup(params: Iterable[torch.nn.Parameter], lr: float, warmup_steps: int,
                     betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
                     eps: float = 1e-8) -> dict:
    """Lightning's configure_optimizers answer: lr rises linearly from lr/100 to lr over
    ``warmup_steps`` iterations, then stays constant (stepped every iteration). ``eps``: Adam's
    (SparseSync and Synchformer use 1e-7 when they train in half precision)."""
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr, betas=tuple(betas),
                           weight_decay=weight_decay, eps=eps, foreach=FOREACH)
    warmup = max(1, warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: min(1.0, 0.01 + 0.99 * it / warmup))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

"""The optimiser recipe the papers share: Adam with a linear warm-up from lr/100 ('constant_with_warmup')."""
from __future__ import annotations

from typing import Iterable

import torch


def adam_with_warmup(params: Iterable[torch.nn.Parameter], lr: float, warmup_steps: int,
                     betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
                     eps: float = 1e-8) -> dict:
    """Lightning's configure_optimizers answer: lr rises linearly from lr/100 to lr over
    ``warmup_steps`` iterations, then stays constant (stepped every iteration). ``eps``: Adam's
    (SparseSync and Synchformer use 1e-7 when they train in half precision)."""
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr, betas=tuple(betas),
                           weight_decay=weight_decay, eps=eps)
    warmup = max(1, warmup_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: min(1.0, 0.01 + 0.99 * it / warmup))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

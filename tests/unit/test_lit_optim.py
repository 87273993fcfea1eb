"""The papers' 'constant_with_warmup': linear from lr/100 to lr over the warm-up, then flat."""
import torch

from avsync.training.optim import adam_with_warmup


def test_warmup_rises_from_a_hundredth_then_stays():
    w = torch.nn.Parameter(torch.zeros(3))
    frozen = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
    cfg = adam_with_warmup([w, frozen], lr=1e-3, warmup_steps=10, betas=(0.9, 0.99))
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    assert cfg["lr_scheduler"]["interval"] == "step"
    assert len(opt.param_groups[0]["params"]) == 1  # frozen parameters are not optimised
    lrs = []
    for _ in range(15):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert abs(lrs[0] - 1e-5) < 1e-12
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert all(abs(lr - 1e-3) < 1e-12 for lr in lrs[10:])

"""The authors' optimiser rules the full recipes use: lr per GPU times the number of devices, Adam eps."""
from types import SimpleNamespace

import pytest

from avsync.papers.sparsesync.module import SparseSyncModule


@pytest.mark.parametrize("per_device, devices, expected", [(True, 8, 4e-5), (True, 1, 5e-6), (False, 8, 5e-6)])
def test_lr_is_per_device_when_asked(per_device, devices, expected):
    module = SparseSyncModule(arch="sparsesync_toy", lr=5e-6, lr_per_device=per_device, eps=1e-7, warmup_steps=10,
                              log_figures=False)
    module._trainer = SimpleNamespace(world_size=devices)
    optimiser = module.configure_optimizers()["optimizer"]
    group = optimiser.param_groups[0]
    assert group["initial_lr"] == pytest.approx(expected) and group["eps"] == 1e-7
    assert group["lr"] == pytest.approx(expected / 100)  # the warm-up starts from lr / 100

"""Epoch means of values logged in training steps, kept as torchmetrics so that a resume keeps them.

``self.log(name, tensor, on_epoch=True)`` makes Lightning sum the tensor over the epoch in its own
loop state, which is private: a run resumed mid-epoch restarts that sum from zero, so its epoch
value would cover only the batches after the kill. :func:`log_epoch_mean` logs the same value
through a ``MeanMetric`` (batch-size weighted, as Lightning's mean) held by the module under
``epoch_means``; Lightning computes and resets it at the epoch end, and
:class:`avsync.training.resume.ExactResume` carries its state across a resume through the
metric's public state. Outside training (``module.training`` False) the value is logged as a
tensor, as before: evaluation epochs are never resumed mid-way.
"""
from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule

__all__ = ["CONTAINER", "ensure_epoch_means", "log_epoch_mean"]

CONTAINER = "epoch_means"  # the module attribute (a ModuleDict) holding one MeanMetric per logged name


def _slot(name: str) -> str:
    """A ModuleDict key for a logged name (no dots, which module names cannot hold)."""
    return name.replace(".", "_").replace("/", "__")


def _means(module: torch.nn.Module) -> torch.nn.ModuleDict:
    means = getattr(module, CONTAINER, None)
    if means is None:
        means = torch.nn.ModuleDict()
        setattr(module, CONTAINER, means)
    return means


def _metric(module: torch.nn.Module, slot: str, device: torch.device):
    from torchmetrics import MeanMetric

    means = _means(module)
    if slot not in means:
        means[slot] = MeanMetric().to(device)  # default nan_strategy: "disable" would drop the batch-size weights (torchmetrics 1.9)
    metric = means[slot]
    if metric.device != device:
        metric.to(device)
    return metric


def log_epoch_mean(module: LightningModule, name: str, value: torch.Tensor, *, batch_size: int,
                   on_step: bool = True, **log_kwargs: Any) -> None:
    """Log ``value`` (a scalar) under ``name`` with an epoch mean that survives a resume.

    ``log_kwargs`` are :meth:`LightningModule.log`'s (``prog_bar``, ``sync_dist`` ...)."""
    if not module.training:
        module.log(name, value, on_step=on_step, on_epoch=True, batch_size=batch_size, **log_kwargs)
        return
    value = torch.as_tensor(value).detach()
    slot = _slot(name)
    metric = _metric(module, slot, value.device)
    metric(value, torch.as_tensor(float(batch_size), device=value.device))
    module.log(name, metric, on_step=on_step, on_epoch=True, batch_size=batch_size,
               metric_attribute=f"{CONTAINER}.{slot}", **log_kwargs)


def ensure_epoch_means(module: torch.nn.Module, saved_names) -> None:
    """Create the epoch means named in a checkpoint (``epoch_means.<slot>``) before their states load."""
    prefix = CONTAINER + "."
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    for name in saved_names:
        if name.startswith(prefix):
            _metric(module, name[len(prefix):], device)

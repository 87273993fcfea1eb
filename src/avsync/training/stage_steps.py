"""The one-line training / validation / test steps that every module with a shared ``_step`` repeats."""
from __future__ import annotations

import torch


class StageSteps:
    """Mixin (put it before ``LightningModule`` in the bases): each stage's step is
    ``self._step(batch, stage)`` with stage ``"train"``, ``"val"`` or ``"test"``."""

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

"""Thin LightningModule base for models that classify the offset on a grid (SparseSync, Synchformer II).

The architecture is a plain ``nn.Module`` built by the subclass; this base owns what every grid
classifier shares: cross-entropy, Adam with the papers' linear warm-up from lr/100, one
:class:`~avsync.evaluation.grid_evaluator.GridEvaluator` per stage (loss, acc@1, tolerant
accuracy; logged as metric objects, so Lightning computes and resets them), and the TensorBoard
figures (confusion over offsets, per-offset accuracy; per dataset class in the test,
:mod:`~avsync.evaluation.class_breakdown`). Gradient-norm clipping is the Trainer's
``gradient_clip_val`` (1.0 in the configs).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from avsync.inputs import InputSpec
from avsync.evaluation.class_breakdown import ClassBreakdown
from avsync.evaluation.figures import log_figures
from avsync.evaluation.evaluator import StageEvaluators
from avsync.evaluation.grid_evaluator import GridEvaluator
from avsync.training.optim import adam_with_warmup
from avsync.training.stage_steps import StageSteps
from avsync.offsets import get_grid
from avsync.training.attached import attached_trainer

STAGES = ("train", "val", "test")


class OffsetClassificationModule(ClassBreakdown, StageSteps, L.LightningModule):
    """Subclasses set ``self.net`` (logits from ``self.model_inputs(batch)``) and ``self.input_spec``."""

    net: nn.Module
    input_spec: InputSpec

    def __init__(self, num_classes: int, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 weight_decay: float = 0.0, warmup_steps: int = 1000, tolerance_classes: int = 1,
                 log_figures: bool = True, lr_per_device: bool = False, eps: float = 1e-8):
        super().__init__()
        self.grid = get_grid(num_classes)
        self.tolerance_classes = int(tolerance_classes)
        self.evaluators = StageEvaluators({s: self.build_evaluator(s) for s in STAGES})
        self.lr, self.betas, self.weight_decay = lr, tuple(betas), weight_decay
        self.warmup_steps = warmup_steps
        self.log_figures = log_figures
        # the authors' rule: the configured lr is per GPU, multiplied by the number of devices
        self.lr_per_device, self.eps = bool(lr_per_device), float(eps)

    # -- frozen parts (pre-trained extractors) -----------------------------------------------------
    def freeze(self, *modules: nn.Module) -> None:
        """Keep ``modules`` fixed: no gradients, and eval mode (batch-norm statistics) whatever mode
        the rest of the model is put in."""
        self._frozen = tuple(modules)  # a plain attribute: they stay registered where they are
        for module in modules:
            module.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        for module in getattr(self, "_frozen", ()):
            module.eval()
        return self

    # -- the part a subclass provides ---------------------------------------------------------
    def model_inputs(self, batch: dict) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def forward(self, batch: dict) -> torch.Tensor:
        return self.net(*self.model_inputs(batch))

    # -- steps --------------------------------------------------------------------------------
    def build_evaluator(self, stage: str, class_names: Sequence[str] = ()) -> GridEvaluator:
        """The metrics of one stage (per dataset class in the test when the data module has classes)."""
        return GridEvaluator(stage, self.grid.values, self.tolerance_classes, class_names)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch)
        loss = F.cross_entropy(logits, batch["target"])
        evaluator = self.evaluators[stage]
        self.log(f"{stage}/loss", evaluator.update_loss(loss, logits.shape[0]), on_step=stage == "train",
                 on_epoch=True, prog_bar=True)
        evaluator.log(self, evaluator.update(logits.detach(), batch["target"], batch.get("class_index")),
                      on_step=False, on_epoch=True)
        return loss

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        probs = self(batch).softmax(-1)
        offsets = self.grid.as_tensor().to(probs.device)
        return {"key": batch.get("key"), "probs": probs, "pred_offset_sec": offsets[probs.argmax(-1)],
                "true_offset_sec": batch.get("offset_sec")}

    # -- figures at epoch end (Lightning computes and resets the logged metrics after these hooks) -----
    def _log_epoch_figures(self, stage: str) -> None:
        result = self.evaluators[stage].results()  # every rank: the states are synchronised
        if self.log_figures and result is not None:
            log_figures(self, self.evaluators[stage].offset_figures(result, confusion=True))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_figures("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_figures("test")
        self.keep_breakdown()

    # -- optimisation -----------------------------------------------------------------------------
    def configure_optimizers(self):
        devices = self.trainer.world_size if self.lr_per_device and attached_trainer(self) is not None else 1
        return adam_with_warmup(self.parameters(), self.lr * devices, self.warmup_steps, self.betas,
                                self.weight_decay, self.eps)


def load_matching_weights(module: nn.Module, ckpt_path: str | Path | Mapping, prefix: str = "") -> list[str]:
    """Initialise ``module`` from a checkpoint (a path, or one already loaded), copying every tensor
    whose name and shape match.

    Used for the papers' staged recipes (pre-trained extractors, 3 -> 21 class curriculum,
    dense -> sparse fine-tuning): a new head or a longer positional table is left as initialised.
    Returns the names that were *not* loaded.
    """
    state = ckpt_path if isinstance(ckpt_path, Mapping) else torch.load(ckpt_path, map_location="cpu",
                                                                        weights_only=True)
    state = state.get("state_dict", state)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    loadable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    module.load_state_dict(loadable, strict=False)
    return sorted(set(own) - set(loadable))

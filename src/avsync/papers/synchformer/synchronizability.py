"""Synchformer synchronizability (§4.2, Fig. 4) as a LightningModule: can these streams be synchronised?

A stage-II model (``init_from``: a stage-II or converted official checkpoint) gets one more head, a
binary logit on the OFF token (:class:`~avsync.papers.synchformer.network.SynchronizabilityHead`), trained
with BCE on :class:`~avsync.data_modules.synchronizability.SynchronizabilityDataModule` examples
(half of them with streams that do not overlap). The extractors stay frozen (and read from the
feature cache when the batch carries features, as in stage II); ``tune="sync_module"`` fine-tunes
the projections and the sync transformer with the head (the paper's "fine-tune Synchformer"),
``tune="head"`` trains the head alone.

Metrics per stage: ROC AUC (torchmetrics ``BinaryAUROC``) and binary accuracy of the score; the
offset accuracy of the synchronisable examples; and at validation / test the filtered-accuracy
curve of Fig. 4 (right) with the ROC curve (left) as TensorBoard figures, written as JSON beside
the logs too (``synchronizability_<stage>.json``). The offsets are those of the stage-II model
(:class:`~avsync.papers.synchformer.network.OffsetReference`, a frozen snapshot when the sync module is
fine-tuned), so ``forward`` — and with it ``avsync detect`` / ``avsync attribute`` — predicts offsets
as the synchronisation model did.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryROC

from avsync.evaluation.figures import log_figures
from avsync.modules.offset_classification import STAGES, load_matching_weights
from avsync.papers.synchformer.stage2 import SynchformerStage2Module
from avsync.papers.synchformer.synchronizability_plots import filtered_accuracy_figure
from avsync.papers.synchformer.network import OffsetReference, SynchronizabilityHead
from avsync.papers.synchformer.synchronizability_metrics import FilteredAccuracyCurve
from avsync.training.epoch_means import log_epoch_mean

log = logging.getLogger(__name__)

TUNE = ("sync_module", "head")


class SynchformerSynchronizabilityModule(SynchformerStage2Module):
    """Binary synchronizability head over a stage-II Synchformer.

    Args:
        init_from: stage-II checkpoint (ours, or ``avsync convert``'s) holding every tensor of the
            Synchformer; required for training (None only when a checkpoint of this module is loaded).
        tune: "sync_module" (projections + sync transformer + head) or "head".
        tolerance_classes: an offset is right within this many grid classes (±0.2 s: 1).
        freeze_extractors: must stay True (kept for checkpoints, whose hyper-parameters carry it).
        center_features: as the stage-II model it fine-tunes (its checkpoint's setting).
        Other arguments: :class:`~avsync.papers.synchformer.stage2.SynchformerStage2Module`'s.
    """

    def __init__(self, arch: str = "synchformer", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, segment_step: float = 0.5, lr: float = 2e-6,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0, warmup_steps: int = 1000,
                 init_from: str | None = None, extractors_from: str | None = None, tune: str = "sync_module",
                 tolerance_classes: int = 1, log_figures: bool = True, freeze_extractors: bool = True,
                 center_features: bool = False, lr_per_device: bool = False, eps: float = 1e-8):
        if tune not in TUNE:
            raise ValueError(f"tune must be one of {TUNE}, got {tune!r}")
        if not freeze_extractors:
            raise ValueError("the synchronizability head is fine-tuned over frozen extractors (Synchformer §4.2)")
        super().__init__(arch, arch_overrides, input_overrides, segment_step, lr, betas, weight_decay, warmup_steps,
                         extractors_from=extractors_from, init_from=None, freeze_extractors=True,
                         log_figures=log_figures, center_features=center_features, lr_per_device=lr_per_device,
                         eps=eps)
        if init_from:
            missing = load_matching_weights(self.net, init_from, prefix="net.")
            if missing:
                raise ValueError(f"{init_from} is not a stage-II checkpoint of this Synchformer ({arch}): "
                                 f"{len(missing)} tensors missing, e.g. {missing[:3]}")
        self.tune, self.tolerance_classes = tune, int(tolerance_classes)
        self.sync_head = SynchronizabilityHead(self.net.cfg.dim)
        self.reference = OffsetReference(self.net) if tune == "sync_module" else None
        frozen = [self.net.vfeat_extractor, self.net.afeat_extractor]
        if tune == "head":
            frozen = [self.net]
        self.freeze(*frozen, *([self.reference] if self.reference is not None else []))
        self.auroc = nn.ModuleDict({f"{s}_auroc": BinaryAUROC() for s in STAGES})
        self.binary_acc = nn.ModuleDict({f"{s}_binary_acc": BinaryAccuracy() for s in STAGES})
        self.roc = nn.ModuleDict({f"{s}_roc": BinaryROC() for s in STAGES[1:]})
        self.curves = nn.ModuleDict({f"{s}_curve": FilteredAccuracyCurve() for s in STAGES[1:]})

    def offset_logits(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        """The stage-II model's offset logits (B, num_classes) from segment features."""
        if self.reference is not None:
            return self.reference(vis, aud)
        return self.net.sync(vis, aud)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.offset_logits(*self.segment_features(batch))

    def synchronizability(self, batch: dict) -> torch.Tensor:
        """Probability (B,) that the batch's streams can be synchronised."""
        return self.sync_head(self.net.sync_token(*self.segment_features(batch))).sigmoid()

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        if "sync_target" not in batch:
            raise KeyError("a synchronizability batch needs 'sync_target' (1 synchronisable, 0 not); train it with "
                           "avsync.data_modules.synchronizability.SynchronizabilityDataModule")
        vis, aud = self.segment_features(batch)
        logit = self.sync_head(self.net.sync_token(vis, aud))
        target = batch["sync_target"].float()
        loss = F.binary_cross_entropy_with_logits(logit, target)
        log_epoch_mean(self, f"{stage}/loss", loss, on_step=stage == "train", prog_bar=True,
                       batch_size=logit.shape[0], sync_dist=stage != "train")
        score = logit.detach().sigmoid()
        self.auroc[f"{stage}_auroc"].update(score, target.long())
        binary_acc = self.binary_acc[f"{stage}_binary_acc"]
        binary_acc.update(score, target.long())
        self.log(f"{stage}/binary_acc", binary_acc, on_step=False, on_epoch=True)
        synced = target > 0.5
        if stage != "train":
            self.roc[f"{stage}_roc"].update(score, target.long())
        if synced.any():
            with torch.no_grad():
                offsets = self.offset_logits(vis[synced], aud[synced])
            true = batch["target"][synced]
            evaluator = self.evaluators[stage]
            evaluator.log(self, evaluator.update(offsets, true), on_step=False, on_epoch=True)
            if stage != "train":
                correct = (offsets.argmax(-1) - true).abs() <= self.tolerance_classes
                self.curves[f"{stage}_curve"].update(score[synced], correct)
        return loss

    def _log_auroc(self, stage: str) -> None:
        """The epoch's AUROC, logged as the metric object when the epoch held both kinds of examples
        (AUC needs both); otherwise it is not logged and its examples are dropped."""
        auroc = self.auroc[f"{stage}_auroc"]
        targets = torch.cat([t.flatten() for t in auroc.target]) if auroc.target else torch.zeros(0)
        both = targets.unique().numel() == 2
        if both:
            self.log(f"{stage}/auroc", auroc, prog_bar=stage != "train")
        if stage != "train":
            self._log_synchronizability(stage, auroc if both else None)
        if not both:
            auroc.reset()

    def on_train_epoch_end(self) -> None:
        self._log_auroc("train")

    def on_validation_epoch_end(self) -> None:
        self._log_auroc("val")
        super().on_validation_epoch_end()

    def on_test_epoch_end(self) -> None:
        self._log_auroc("test")
        super().on_test_epoch_end()

    def _log_synchronizability(self, stage: str, auroc: BinaryAUROC | None) -> None:
        """Fig. 4 of the epoch: figures in TensorBoard, numbers in ``<log_dir>/synchronizability_<stage>.json``.
        ``auroc`` is None when the epoch held only one kind of example (no ROC then)."""
        roc, curve = self.roc[f"{stage}_roc"], self.curves[f"{stage}_curve"]
        record = {"stage": stage, "global_step": int(self.global_step), "auroc": None}
        fpr = tpr = None
        if auroc is not None:
            record["auroc"] = float(auroc.compute())
            fpr, tpr, thresholds = roc.compute()
        filtered = curve.compute() if curve.scores else None  # synchronised on every rank
        if filtered is not None:
            record["filtered_accuracy"] = filtered.as_dict()
        if self.log_figures:
            figures = {}
            if fpr is not None:
                # torchmetrics' own ROC plot, the AUC in its legend
                figures[f"{stage}/synchronizability_roc"] = lambda: roc.plot(curve=(fpr, tpr, thresholds),
                                                                             score=True)[0]
            if filtered is not None:
                figures[f"{stage}/filtered_accuracy"] = lambda: filtered_accuracy_figure(filtered)
            log_figures(self, figures)
        if self.trainer.is_global_zero:
            log_dir = getattr(self.trainer, "log_dir", None)
            if log_dir:
                Path(log_dir).mkdir(parents=True, exist_ok=True)
                (Path(log_dir) / f"synchronizability_{stage}.json").write_text(json.dumps(record, indent=1))
        roc.reset()
        curve.reset()

"""A tiny seeded training run on one loader path, for the kill-and-resume tests (tests/integration/test_resume_paths.py).

Run as a script it trains, optionally hard-kills itself (``os._exit(137)``, no clean-up, no
checkpoint on exit) when a given step begins, or resumes from the run folder's ``last.ckpt``:

    python tests/support/resume_harness.py PATH ROOT RUN_DIR STEPS KILL_STEP|-1 [resume]

The model is a linear regression from pooled inputs (mean colour, audio mean and spread, or the
bank's features) to the item's label, with a little noise drawn from the global RNG each step
(as dropout would): a resumed run matches only if its data order, its items' random draws and the
RNGs all continue exactly. Its training loss and a torchmetrics error are logged with epoch means
that must survive the resume too.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import lightning as L
import torch
from torchmetrics import MeanAbsoluteError

from avsync.inputs import InputSpec
from avsync.training.epoch_means import log_epoch_mean
from avsync.training.resume import ExactResume

PATHS = ("toy", "curriculum", "multirate", "wrapped", "real", "feature_bank")

SPEC = InputSpec(fps=25.0, duration_sec=1.0, frame_size=32, resize_short_side=None, offset_classes=3,
                 sample_rate=16000)
TOY = dict(num_valid=1, num_test=0, clip_duration_sec=3.0, num_workers=0, cache_decoded=True)


def data_module(path: str, root: str, run_dir: Path):
    """The data module of one loader path, small enough for a few seconds of training."""
    from avsync.data_modules.toy import ToyAVDataModule

    report = str(run_dir / "report")
    if path == "toy":  # shuffled batches, default collate
        return ToyAVDataModule(root=root, num_train=6, batch_size=2, input_spec=SPEC, report_dir=report, **TOY)
    if path == "curriculum":  # same-clip batches (stage 2) cut to a drawn length (RandomDurationCollate)
        from avsync.data_modules.sync_curriculum import ToySyncCurriculumDataModule

        spec = dataclasses.replace(SPEC, offset_classes=None, max_frame_shift=5, train_durations=(0.4, 0.6))
        return ToySyncCurriculumDataModule(curriculum_stage=2, eval_offsets="in_sync", root=root, num_train=3,
                                           batch_size=2, input_spec=spec, report_dir=report, **TOY)
    if path == "multirate":  # one resumable loader per rate, combined by Lightning
        from avsync.data_modules.multirate import MultiRateToyDataModule

        spec = dataclasses.replace(SPEC, offset_classes=None, max_frame_shift=3)
        return MultiRateToyDataModule(train_rates=[24, 30], val_rates=[24], test_rates=[24], input_spec=spec,
                                      root=root, num_train=4, num_valid=1, num_test=1, clip_duration_sec=1.5,
                                      batch_size=2, num_workers=0)
    if path == "wrapped":  # a module that wraps a clip module (WrappedLoaders)
        from avsync.data_modules.synchronizability import SynchronizabilityDataModule

        clips = ToyAVDataModule(root=root, num_train=6, batch_size=2, input_spec=SPEC, report_dir=report, **TOY)
        return SynchronizabilityDataModule(clips, prob_unsynchronisable=0.5)
    if path == "real":  # the real LRS3 layout of the shared fixtures (one training clip)
        from avsync.data_modules.lrs3 import LRS3DataModule

        return LRS3DataModule(root=root, input_spec=SPEC, batch_size=1, num_workers=0, cache_decoded=True,
                              probe_cache_dir=str(run_dir.parent / "probe_cache"), report_dir=report)
    if path == "feature_bank":  # training from cached frozen features
        from avsync.data_modules.feature_bank import FeatureBankDataModule

        clips = ToyAVDataModule(root=root, num_train=6, batch_size=2, input_spec=SPEC, report_dir=report, **TOY)
        return FeatureBankDataModule(clips, start_step_sec=0.2, cache_dir="", progress=False)
    raise ValueError(f"unknown loader path {path!r}; expected one of {PATHS}")


def _pooled_video(video: torch.Tensor) -> torch.Tensor:
    return video.float().mean(dim=(1, 2, 3)) / 255.0  # (N, 3)


def _pooled_audio(audio: torch.Tensor) -> torch.Tensor:
    return torch.stack([audio.mean(1), audio.std(1)], 1)  # (N, 2)


class TinyRegressor(L.LightningModule):
    """A linear map from pooled inputs to the label (see the module docstring)."""

    frozen_prefixes = ("frozen.",)

    def __init__(self):
        super().__init__()
        self.input_spec = SPEC
        self.frozen = torch.nn.Linear(1, 1)  # what a feature bank's key hashes (nothing else)
        self.head = torch.nn.Linear(5, 1)
        self.train_error = MeanAbsoluteError()
        self.epoch_history: list[tuple[int, float, float]] = []  # (epoch, mean loss, error) of each epoch run here

    def frozen_encoders(self):
        return _pooled_video, _pooled_audio

    def features(self, batch: dict) -> torch.Tensor:
        if "vfeat" in batch:
            return torch.cat([batch["vfeat"].float(), batch["afeat"].float()], 1)
        return torch.cat([_pooled_video(batch["video"]), _pooled_audio(batch["audio"])], 1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        parts = list(batch.values()) if all(isinstance(v, dict) for v in batch.values()) else [batch]
        x = torch.cat([self.features(b) for b in parts])
        y = torch.cat([b.get("sync_target", b["target"]).float() for b in parts])
        pred = self.head(x + 0.01 * torch.randn_like(x)).squeeze(-1)
        loss = torch.nn.functional.mse_loss(pred, y)
        self.train_error.update(pred.detach(), y)
        log_epoch_mean(self, "train/loss", loss, batch_size=len(y))
        self.log("train/error", self.train_error, on_step=False, on_epoch=True)
        return loss

    def on_train_epoch_end(self) -> None:
        """The epoch's aggregates, as Lightning is about to log them (``compute`` has no side effect)."""
        loss = self.epoch_means["train__loss"].compute()
        self.epoch_history.append((self.current_epoch, float(loss), float(self.train_error.compute())))

    def configure_optimizers(self):
        return torch.optim.SGD(self.head.parameters(), lr=0.1)


def fit(path: str, root: str, run_dir: Path, steps: int, kill_step: int = -1, resume: bool = False):
    """Train ``steps`` steps (checkpoint after each); returns (logged metrics, weights, the epoch
    aggregates of the epochs this call ran: a resumed run's first is the epoch of the kill)."""
    callbacks = [L.pytorch.callbacks.ModelCheckpoint(dirpath=run_dir / "ckpt", save_last=True, every_n_train_steps=1),
                 ExactResume()]
    if kill_step >= 0:
        callbacks.append(KillAtStep(kill_step))
    L.seed_everything(1337, workers=True)
    model = TinyRegressor()
    trainer = L.Trainer(max_steps=steps, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=run_dir, callbacks=callbacks,
                        accelerator="cpu", devices=1, deterministic=True)
    trainer.fit(model, datamodule=data_module(path, root, run_dir),
                ckpt_path=str(run_dir / "ckpt" / "last.ckpt") if resume else None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return metrics, {k: v.detach().clone() for k, v in model.state_dict().items()}, model.epoch_history


class KillAtStep(L.Callback):
    """A hard kill when step ``step`` begins."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os._exit(137)


if __name__ == "__main__":
    path, root, run_dir, steps, kill = sys.argv[1:6]
    fit(path, root, Path(run_dir), int(steps), int(kill), resume=len(sys.argv) > 6)

"""Toy sets at several frame rates, each delivered at its own rate (DiVAS's LRS3-multfps in small).

DiVAS trains on clips at their original rates (23.976 ... 30 fps) and tests on rates it never saw
(59.94 / 60 fps). Every other data module decodes all clips at the model's one rate
(``InputSpec.fps``); this one keeps one :class:`~.toy.ToyAVDataModule` per rate, written at that
rate (``source_fps``) and decoded at it (the model's InputSpec with ``fps`` replaced), and tags
each batch with ``fps`` so the model knows the rate of what it receives.

- training: one loader per rate in ``train_rates``, combined by Lightning (``max_size_cycle``):
  each step receives a dict ``{"24": batch, "25": batch, "30": batch}``, one batch per rate;
- validation / test: one loader per rate in ``val_rates`` / ``test_rates`` (Lightning's
  ``dataloader_idx``); a model that sums its metrics over loaders reports the mix.

The toy sets are small and short by default (a few clips of ``clip_duration_sec``), so that a plan
generates them in a minute or two. Per-rate counts: a rate gets ``num_train`` training clips only
if it is in ``train_rates`` (likewise valid / test), so a held-out rate is written for its test
split alone.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader

from avsync.inputs import InputSpec

from .toy import ToyAVDataModule

__all__ = ["MultiRateToyDataModule", "RateTaggedCollate"]


class RateTaggedCollate:
    """Wraps a collate function (None: PyTorch's default) and adds ``fps`` (B,) to every batch."""

    def __init__(self, collate, fps: float):
        from torch.utils.data import default_collate

        self.collate, self.fps = collate or default_collate, float(fps)

    def __call__(self, items):
        batch = self.collate(items)
        batch["fps"] = torch.full((len(batch["target"]),), self.fps, dtype=torch.float64)
        return batch


class _RateToyDataModule(ToyAVDataModule):
    """A toy set at one rate whose loaders tag their batches with that rate; a split it has no
    clips for (a held-out rate's training split) is left empty instead of failing setup."""

    def build_dataset(self, split: str):
        return super().build_dataset(split) if self.num_clips.get(split, 0) else None

    def _loader(self, split: str, train: bool):
        loader = super()._loader(split, train)
        loader.collate_fn = RateTaggedCollate(loader.collate_fn, self.source_fps)
        return loader


class MultiRateToyDataModule(L.LightningDataModule):
    """One toy set per frame rate; see the module docstring.

    Args:
        train_rates / val_rates / test_rates: frame rates (fps) of each split's clips; None for
            val / test: the training rates.
        input_spec: what the model consumes (None: the attached model's ``input_spec``); its
            ``fps`` is replaced by each set's rate.
        num_train / num_valid / num_test, clip_duration_sec, variant, root, generator_seed, ...:
            passed to each rate's :class:`~.toy.ToyAVDataModule` (the same names).
    """

    def __init__(self, train_rates: Sequence[float] = (24.0, 25.0, 30.0), val_rates: Sequence[float] | None = None,
                 test_rates: Sequence[float] | None = None, input_spec: InputSpec | None = None,
                 num_train: int = 96, num_valid: int = 16, num_test: int = 32, clip_duration_sec: float = 3.0,
                 variant: str = "dense", root: str | None = None, generator_seed: int = 0,
                 source_size: int | None = None, generator_workers: int = 1, batch_size: int = 32,
                 num_workers: int = 0, cache_decoded: bool = True, seed: int = 1337,
                 max_source_sec: float | None = 9.0) -> None:
        super().__init__()
        # every argument spelled out (no **kwargs): the CLI parser sees them all
        toy_kwargs = dict(variant=variant, root=root, generator_seed=generator_seed, source_size=source_size,
                          generator_workers=generator_workers, batch_size=batch_size, num_workers=num_workers,
                          cache_decoded=cache_decoded, seed=seed, max_source_sec=max_source_sec)
        self.rates = {"train": _rates(train_rates, "train_rates"),
                      "valid": _rates(train_rates if val_rates is None else val_rates, "val_rates"),
                      "test": _rates(train_rates if test_rates is None else test_rates, "test_rates")}
        self.input_spec = input_spec
        counts = {"train": int(num_train), "valid": int(num_valid), "test": int(num_test)}
        self.children_by_rate: dict[float, _RateToyDataModule] = {}
        for rate in sorted(set().union(*self.rates.values())):
            n = {split: counts[split] if rate in self.rates[split] else 0 for split in counts}
            self.children_by_rate[rate] = _RateToyDataModule(
                source_fps=rate, num_train=n["train"], num_valid=n["valid"], num_test=n["test"],
                clip_duration_sec=clip_duration_sec, **toy_kwargs)

    def prepare_data(self) -> None:
        for child in self.children_by_rate.values():
            child.prepare_data()

    def resolve_spec(self) -> InputSpec:
        if self.input_spec is not None:
            return self.input_spec
        spec = getattr(getattr(self.trainer, "lightning_module", None), "input_spec", None)
        if not isinstance(spec, InputSpec):
            raise RuntimeError(f"{type(self).__name__} needs input_spec=InputSpec(...) or an attached model "
                               "that declares one")
        return spec

    def setup(self, stage: str | None = None) -> None:
        spec = self.resolve_spec()
        for rate, child in self.children_by_rate.items():
            child.input_spec = dataclasses.replace(spec, fps=rate)
            child.trainer = self.trainer
            child.setup(stage)

    def _loaders(self, split: str, train: bool) -> dict[str, object]:
        return {f"{rate:g}": self.children_by_rate[rate]._loader(split, train) for rate in self.rates[split]}

    def train_dataloader(self) -> CombinedLoader:
        return CombinedLoader(self._loaders("train", True), mode="max_size_cycle")

    def val_dataloader(self) -> list:
        return list(self._loaders("valid", False).values())

    def test_dataloader(self) -> list:
        return list(self._loaders("test", False).values())

    def predict_dataloader(self) -> list:
        return self.test_dataloader()


def _rates(rates: Sequence[float], name: str) -> tuple[float, ...]:
    out = tuple(float(r) for r in rates)
    if not out or any(r <= 0 for r in out) or len(set(out)) != len(out):
        raise ValueError(f"{name} must be distinct positive frame rates, got {list(rates)}")
    return out

"""Clips delivered at several frame rates, each at its own rate (DiVAS's LRS3-multfps).

DiVAS trains on clips at their original rates (23.976 ... 30 fps) and tests on rates it never saw
(59.94 / 60 fps). Every other data module decodes all clips at the model's one rate
(``InputSpec.fps``); a multi-rate module keeps one child data module per rate ("bucket"), decodes
each child's clips at that rate (the model's InputSpec with ``fps`` replaced) and tags each batch
with ``fps`` so the model knows the rate of what it receives:

- training: one loader per rate in ``train_rates``, combined by Lightning (``max_size_cycle``):
  each step receives a dict ``{"24": batch, "25": batch, "30": batch}``, one batch per rate;
- validation / test: one loader per rate in ``val_rates`` / ``test_rates`` (Lightning's
  ``dataloader_idx``); a model that sums its metrics over loaders reports the mix.

:class:`MultiRateDataModule` holds that logic once; :class:`MultiRateToyDataModule` (here: one toy
set written per rate) and :class:`~.lrs3_multirate.MultiRateLRS3DataModule` (LRS3-multfps clips
grouped by native rate) only say how a rate's child is made. A child is an ordinary data module
told which splits it serves (``served_splits``: those whose rates name it), so a held-out rate is
listed for its test split alone; its loaders come from its own ``split_loader`` with a collate that
tags the batches with the rate.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader

from avsync.inputs import InputSpec

from .bad_media import BadMediaReport
from .base import AVSyncDataModule
from .toy import ToyAVDataModule

__all__ = ["MultiRateDataModule", "MultiRateToyDataModule", "RateTaggedCollate"]

log = logging.getLogger(__name__)


class RateTaggedCollate:
    """Wraps a collate function (None: PyTorch's default) and adds ``fps`` (B,) to every batch."""

    def __init__(self, collate, fps: float):
        from torch.utils.data import default_collate

        self.collate, self.fps = collate or default_collate, float(fps)

    def __call__(self, items):
        batch = self.collate(items)
        batch["fps"] = torch.full((len(batch["target"]),), self.fps, dtype=torch.float64)
        return batch


class MultiRateDataModule(L.LightningDataModule):
    """One child :class:`~.base.AVSyncDataModule` per frame rate; see the module docstring.

    A subclass calls ``super().__init__(train_rates, val_rates, test_rates, input_spec)`` and then
    :meth:`add_child` once per rate of :attr:`all_rates`. The children share one bad-media report
    (:attr:`report`). A validation / test rate with no usable clip is left out of that split's
    loaders (with a warning); a training rate with none is an error that names the rate.
    """

    def __init__(self, train_rates: Sequence[float], val_rates: Sequence[float] | None,
                 test_rates: Sequence[float] | None, input_spec: InputSpec | None) -> None:
        super().__init__()
        self.rates = {"train": _rates(train_rates, "train_rates"),
                      "valid": _rates(train_rates if val_rates is None else val_rates, "val_rates"),
                      "test": _rates(train_rates if test_rates is None else test_rates, "test_rates")}
        self.input_spec = input_spec
        self.children_by_rate: dict[float, AVSyncDataModule] = {}
        self.report: BadMediaReport | None = None

    @property
    def all_rates(self) -> list[float]:
        return sorted(set().union(*self.rates.values()))

    def served_splits(self, rate: float) -> frozenset:
        return frozenset(split for split, rates in self.rates.items() if rate in rates)

    def add_child(self, rate: float, child: AVSyncDataModule, serves: frozenset | None = None) -> None:
        """Make ``child`` the bucket of ``rate``: it serves the splits whose rates name it (and, if
        given, only those of ``serves``)."""
        served = self.served_splits(rate)
        child.served_splits = served if serves is None else served & frozenset(serves)
        self.children_by_rate[float(rate)] = child

    def prepare_data(self) -> None:
        for child in self.children_by_rate.values():
            child.trainer = self.trainer
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
        children = list(self.children_by_rate.values())
        for child in children:
            child.trainer = self.trainer
        if self.report is None and children:
            self.report = BadMediaReport(children[0].report_path())
        for rate, child in self.children_by_rate.items():
            child.input_spec = dataclasses.replace(spec, fps=rate)
            child.report = self.report
            try:
                child.setup(stage)
            except RuntimeError as err:  # e.g. the base's "no usable training clips", said for this rate
                raise RuntimeError(f"{rate:g} fps bucket: {err}") from err

    def clips_per_rate(self, split: str) -> dict[str, int]:
        """``{"24": items, ...}`` of a set-up split (evaluation items: clips x plans per clip)."""
        out = {}
        for rate in self.rates[split]:
            dataset = self.children_by_rate[rate].datasets.get(split)
            out[f"{rate:g}"] = 0 if dataset is None else len(dataset)
        return out

    def _loaders(self, split: str, train: bool) -> dict[str, object]:
        loaders = {}
        for rate in self.rates[split]:
            child = self.children_by_rate[rate]
            dataset = child.datasets.get(split)
            if dataset is None or len(dataset) == 0:
                log.warning("%s: no usable %g fps clips in split %s; that rate is left out", type(self).__name__,
                            rate, split)
                continue
            tagged = RateTaggedCollate(child.collate_for(split, train), rate)
            loaders[f"{rate:g}"] = child.split_loader(split, train, collate=tagged)
        return loaders

    def train_dataloader(self) -> CombinedLoader:
        loaders = self._loaders("train", True)
        if not loaders:
            raise RuntimeError(f"{type(self).__name__}: no training clips at any of {list(self.rates['train'])} fps")
        return CombinedLoader(loaders, mode="max_size_cycle")

    def val_dataloader(self) -> list:
        return list(self._loaders("valid", False).values())

    def test_dataloader(self) -> list:
        return list(self._loaders("test", False).values())

    def predict_dataloader(self) -> list:
        return self.test_dataloader()

    def teardown(self, stage: str | None = None) -> None:
        if self.report is not None and len(self.report):
            log.warning("%s", self.report.summary())


class MultiRateToyDataModule(MultiRateDataModule):
    """One toy set per frame rate, written at that rate (``source_fps``) and decoded at it.

    The toy sets are small and short by default (a few clips of ``clip_duration_sec``), so that a
    plan generates them in a minute or two. Per-rate counts: a rate gets ``num_train`` training
    clips only if it is in ``train_rates`` (likewise valid / test), so a held-out rate is written
    for its test split alone.

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
        super().__init__(train_rates, val_rates, test_rates, input_spec)
        # every argument spelled out (no **kwargs): the CLI parser sees them all
        toy_kwargs = dict(variant=variant, root=root, generator_seed=generator_seed, source_size=source_size,
                          generator_workers=generator_workers, batch_size=batch_size, num_workers=num_workers,
                          cache_decoded=cache_decoded, seed=seed, max_source_sec=max_source_sec)
        counts = {"train": int(num_train), "valid": int(num_valid), "test": int(num_test)}
        for rate in self.all_rates:
            n = {split: counts[split] if rate in self.rates[split] else 0 for split in counts}
            child = ToyAVDataModule(source_fps=rate, num_train=n["train"], num_valid=n["valid"], num_test=n["test"],
                                    clip_duration_sec=clip_duration_sec, **toy_kwargs)
            self.add_child(rate, child, serves={split for split, count in n.items() if count})


def _rates(rates: Sequence[float], name: str) -> tuple[float, ...]:
    out = tuple(float(r) for r in rates)
    if not out or any(r <= 0 for r in out) or len(set(out)) != len(out):
        raise ValueError(f"{name} must be distinct positive frame rates, got {list(rates)}")
    return out

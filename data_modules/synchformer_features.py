"""Synchformer stage II from cached segment features (``avsync cache-features``) instead of decoded media.

Wraps any data module (``data``): its records, training sampler and fixed evaluation plans are used
unchanged, so the examples are the same offsets and windows as with decoding; only the content is
read from the cache (:func:`avsync.papers.synchformer.feature_cache.gather_segments`). A batch then carries
``vis_feats`` (B, S, tv, D) and ``aud_feats`` (B, S, ta, D) besides ``target`` / ``offset_sec`` /
``key``, which :class:`~avsync.papers.synchformer.stage2.SynchformerStage2Module` consumes directly.

The cache is the suite's one frozen-feature cache (:mod:`avsync.data_modules.feature_cache`): a
file whose checksum does not match is recomputed from the model's extractors at ``setup`` (when
they are the ones that wrote the cache), never read. With ``build_if_missing`` the module writes
the cache itself on first use, from the attached model's extractors, into
``cache_dir/synchformer_segments_<key>`` (:func:`~avsync.data_modules.feature_cache.cache_key` of the
extractor weights, the clips and the input settings): a plan stage (``avsync reproduce``) can then
train from cached features without a separate ``avsync cache-features`` run, and stages that share
frozen extractors (the 3 -> 21 class curriculum) share one cache.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from avsync.papers.synchformer.feature_cache import (KIND, cache_settings, extractor_fingerprint, gather_segments,
                                                     segment_compute, write_cache)

from .base import AVSyncDataModule
from .clip_dataset import AVClipDataset
from .feature_cache import INDEX, ClipFeatures, FeatureStore, cache_key
from .loaders import WrappedLoaders

__all__ = ["CachedFeatureDataset", "SynchformerFeatureDataModule"]


class CachedFeatureDataset(Dataset):
    """The plans of ``base`` (an :class:`AVClipDataset`), with features gathered from ``store``'s ``split``."""

    def __init__(self, base: AVClipDataset, store: FeatureStore, split: str, num_segments: int,
                 step_sec: float, keep_in_memory: bool = True):
        cached = set(store.keys(split))
        missing = [r.key for r in base.records if r.key not in cached]
        if missing:
            skipped = store.skipped.get(split, {})
            why = "; ".join(f"{k}: {skipped[k]}" for k in missing[:3] if k in skipped)
            raise ValueError(f"{len(missing)} clip(s) are not in the feature cache {store.folder}, e.g. {missing[:3]}"
                             f"{' (' + why + ')' if why else ''}; run `avsync cache-features` with the same data "
                             "configuration")
        self.base, self.store, self.split = base, store, split
        self.num_segments, self.step_sec = num_segments, step_sec
        self.memo: dict[str, ClipFeatures] | None = {} if keep_in_memory else None

    def __len__(self) -> int:
        return len(self.base)

    def _entry(self, key: str) -> ClipFeatures:
        if self.memo is not None and key in self.memo:
            return self.memo[key]
        entry = self.store.get(self.split, key)
        if self.memo is not None:
            self.memo[key] = entry
        return entry

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item())) if self.base.train else None
        record, plan = self.base.record_of(index), self.base.plan_for(index, rng)
        vis, aud = gather_segments(self._entry(record.key), plan.video_start_sec, plan.audio_start_sec,
                                   self.num_segments, self.step_sec)
        return {"vis_feats": vis, "aud_feats": aud,
                "target": torch.tensor(self.base.target_of(plan), dtype=torch.int64),
                "offset_sec": float(plan.offset_sec), "video_start_sec": float(plan.video_start_sec),
                "audio_start_sec": float(plan.audio_start_sec), "key": record.key, "index": int(index)}


class SynchformerFeatureDataModule(WrappedLoaders, L.LightningDataModule):
    """Cached-feature examples over the clips, samplers and fixed plans of ``data``.

    Args:
        data: the data module the cache was written from (same configuration).
        cache_dir: folder written by ``avsync cache-features``.
        check_fingerprint: refuse a cache written by other extractor weights than the model's.
        build_if_missing: write the cache from the model's extractors when there is none, into a
            sub-folder of ``cache_dir`` named after its key (module docstring).
        hop_frames: segment start spacing of a cache this module writes (``avsync cache-features``).
    """

    def __init__(self, data: AVSyncDataModule, cache_dir: str, check_fingerprint: bool = True,
                 build_if_missing: bool = False, hop_frames: int = 1):
        super().__init__()
        self.data = data
        self.cache_dir = self.cache_root = Path(cache_dir)
        self.check_fingerprint = check_fingerprint
        self.build_if_missing = bool(build_if_missing)
        self.hop_frames = int(hop_frames)
        self.datasets: dict[str, CachedFeatureDataset] = {}
        self.store: FeatureStore | None = None

    def prepare_data(self) -> None:
        if not self.build_if_missing and not (self.cache_dir / INDEX).is_file():
            raise FileNotFoundError(f"no feature cache at {self.cache_dir} ({INDEX} missing): "
                                    "run `avsync cache-features` first")

    def setup(self, stage: str | None = None) -> None:
        model = self.trainer.lightning_module if self.trainer is not None else None
        if model is None:
            raise RuntimeError("SynchformerFeatureDataModule reads the segment layout from the model; attach a trainer")
        self.data.input_spec = model.input_spec
        if self.store is None:
            self.store = self._open_store(model)
        self.data.setup(stage)
        if self.store.fingerprint == extractor_fingerprint(model.net) and not self.datasets:
            # broken files are recomputed with the extractors that wrote the others, never read
            records = {split: ds.records for split, ds in self.data.datasets.items()}
            with _mode_kept(model):
                self.store.repair(records, segment_compute(model, self.data.spec, self.store.settings["hop_frames"]))
        cfg = model.net.cfg
        step_sec = model.segment_step * cfg.segment_frames / cfg.fps
        for split, base in self.data.datasets.items():
            if split not in self.datasets:
                self.datasets[split] = CachedFeatureDataset(base, self.store, split, cfg.num_segments, step_sec)

    def _open_store(self, model) -> FeatureStore:
        if self.build_if_missing:
            self.cache_dir = self.cache_root / f"{KIND}_{self._cache_key(model)}"
        store = FeatureStore.open(self.cache_dir)
        if store is None and self.build_if_missing:
            with _mode_kept(model):  # write_cache puts the net in eval mode
                store = write_cache(model, self.data, self.cache_dir, hop_frames=self.hop_frames)
        if store is None:
            raise FileNotFoundError(f"no usable feature cache at {self.cache_dir} (no {INDEX} of this format): "
                                    "run `avsync cache-features` again")
        if self.check_fingerprint and store.fingerprint != extractor_fingerprint(model.net):
            raise ValueError(f"the feature cache {self.cache_dir} was written by other extractor weights than "
                             "the model's; rebuild it or pass check_fingerprint=false")
        return store

    def _cache_key(self, model) -> str:
        """Key of a self-built cache: the extractor weights, the clips of every split and the input
        settings it was written with (one extractor may serve several data sets)."""
        self.data.prepare_data()
        self.data.setup(None)
        records = {split: ds.records for split, ds in self.data.datasets.items()}
        return cache_key(extractor_fingerprint(model.net), cache_settings(model.input_spec, self.hop_frames), records)

    def loader_settings(self) -> AVSyncDataModule:
        return self.data


@contextmanager
def _mode_kept(model):
    """Restore every submodule's train/eval mode after the cache writer switched the net to eval."""
    modes = {m: m.training for m in model.modules()}
    try:
        yield
    finally:
        for m, training in modes.items():
            m.train(training)

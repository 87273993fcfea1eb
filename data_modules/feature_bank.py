"""Training on cached outputs of frozen feature extractors (a feature bank).

When a model's extractors are frozen (SparseSync Table 3's "frozen" row, the toy recipe's sync
stages, Synchformer stage II) their outputs for a given video or audio window never change, yet
a training step recomputes them every time — on this CPU ~85 % of a toy SparseSync step. A video
window's features depend only on the video window and an audio window's only on the audio
window, so one pass over each training clip can cache both streams at every start on a grid of
``start_step_sec`` and any training example (video start v, offset Δ on the class grid) is then a
*pair* of cached windows: video at v, audio at v + Δ. With the step 0.2 s and SparseSync's 5 s
crops in the first 9 s that is 21 video + 21 audio windows per clip for all 21 x (up to 21)
start/offset combinations the sampler can draw.

What is lost against decoding every step, and why it is acceptable for frozen extractors:
video starts are quantised to the step (instead of any frame), the audio jitter is drawn once per
cached audio window (instead of per example), and there is no random crop or flip (the bank holds
the centre crop). Labels, offsets and the sampler's distribution over them are unchanged.

:class:`FeatureBankDataModule` wraps any :class:`~avsync.data_modules.base.AVSyncDataModule`:
training batches come from the bank (``vfeat``/``afeat`` instead of ``video``/``audio``),
validation and test batches are the source's decoded clips, so the metrics are measured exactly
as without the bank. The model provides ``frozen_encoders()`` and a ``forward`` that accepts both
kinds of batch (:class:`avsync.papers.sparsesync.module.SparseSyncModule`). The bank is built on the first
``train_dataloader()`` call (the model is on its device by then), with a progress bar, and saved
as a :class:`~avsync.data_modules.feature_cache.FeatureStore` (the one frozen-feature cache of the
suite) under ``cache_dir/feature_bank_<key>``, keyed by the extractor weights, the window settings
and the clips, so the next stage with the same frozen extractors (the 3 -> 21 class curriculum)
loads it instead; a broken cache file is found by its checksum and recomputed.
"""
from __future__ import annotations

import logging
import math
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avsync.media import MediaError, read_clip
from avsync.offsets import ClipTooShortError, RandomOffsetSampler, get_grid, stable_hash
from avsync.toy.generate import default_cache_dir

from .base import AVSyncDataModule
from .clip_dataset import AVClipDataset
from .feature_cache import ClipFeatures, FeatureStore, cache_key, weights_fingerprint
from .loaders import build_loader
from .records import ClipRecord

__all__ = ["ClipFeatures", "FeatureBank", "FeatureBankDataModule", "build_feature_bank"]

log = logging.getLogger(__name__)

KIND = "feature_bank"
SPLIT = "train"


class FeatureBank:
    """The cached clips of a training set plus what they were computed with."""

    def __init__(self, clips: list[ClipFeatures], start_step_sec: float, crop_sec: float, skipped: list[str]):
        self.clips, self.start_step_sec, self.crop_sec, self.skipped = clips, start_step_sec, crop_sec, skipped

    def __len__(self) -> int:
        return len(self.clips)

    @classmethod
    def from_store(cls, store: FeatureStore) -> "FeatureBank":
        clips = [store.get(SPLIT, key) for key in store.keys(SPLIT)]
        return cls(clips, store.settings["start_step_sec"], store.settings["crop_sec"],
                   list(store.skipped.get(SPLIT, {})))


def _grid_starts(usable_sec: float, crop_sec: float, step: float) -> np.ndarray:
    """Window starts 0, step, 2·step, … whose window ends inside the usable source."""
    count = int(math.floor((usable_sec - crop_sec) / step + 1e-6)) + 1
    return np.round(np.arange(count) * step, 9)


def bank_settings(dataset: AVClipDataset, start_step_sec: float, max_source_sec: float | None,
                  jitter_sec: float, seed: int, dtype: torch.dtype) -> dict:
    """What the cached windows depend on: not the labels (3- and 21-class stages share a bank)."""
    spec = dataset.spec
    return {"fps": spec.fps, "crop_sec": spec.duration_sec, "frame_size": spec.frame_size,
            "resize_short_side": spec.resize_short_side, "crop": spec.crop, "sample_rate": spec.sample_rate,
            "decode_size": dataset.decode_size, "start_step_sec": float(start_step_sec),
            "max_source_sec": max_source_sec, "jitter_sec": float(jitter_sec), "seed": int(seed), "dtype": str(dtype)}


def build_feature_bank(dataset: AVClipDataset, encode_video, encode_audio, *, start_step_sec: float,
                       max_source_sec: float | None, jitter_sec: float, seed: int, device: torch.device,
                       dtype: torch.dtype = torch.float16, progress: bool = True,
                       store: FeatureStore | None = None) -> FeatureBank:
    """Run the frozen encoders over every window start of every clip of ``dataset``.

    Each clip is decoded once (its usable part: the first ``max_source_sec`` seconds). Audio
    window k starts at ``k·step + jitter_k``, jitter_k ~ U[−jitter_sec, +jitter_sec] drawn from
    (seed, clip key) and clipped so the window stays inside. Unreadable or too-short clips are
    recorded in the data set's bad-media report and left out. The entries go to ``store`` (written
    and committed), or to a store in memory.
    """
    if store is None:
        store = FeatureStore(None, KIND, "", bank_settings(dataset, start_step_sec, max_source_sec, jitter_sec,
                                                           seed, dtype))
    compute = bank_compute(dataset, encode_video, encode_audio, start_step_sec, max_source_sec, jitter_sec, seed,
                           device, dtype)

    def on_skip(record: ClipRecord, reason: str) -> None:
        dataset.report.record(record.key, record.path, reason, "feature_bank")

    store.fill(SPLIT, dataset.records, compute, (MediaError, ClipTooShortError), on_skip, progress, "feature bank")
    if not store.keys(SPLIT):
        raise RuntimeError(f"feature bank: none of the {len(dataset.records)} training clips could be read")
    store.commit()
    return FeatureBank.from_store(store)


def bank_compute(dataset: AVClipDataset, encode_video, encode_audio, start_step_sec: float,
                 max_source_sec: float | None, jitter_sec: float, seed: int, device: torch.device, dtype: torch.dtype):
    """``record -> ClipFeatures`` of the bank (for :meth:`FeatureStore.fill` / :meth:`FeatureStore.repair`)."""
    return partial(_clip_features, dataset, encode_video, encode_audio, dataset.spec.duration_sec, start_step_sec,
                   max_source_sec, jitter_sec, seed, device, dtype)


def _clip_features(dataset: AVClipDataset, encode_video, encode_audio, crop: float, step: float,
                   max_source_sec: float | None, jitter_sec: float, seed: int, device: torch.device,
                   dtype: torch.dtype, record: ClipRecord) -> ClipFeatures:
    spec = dataset.spec
    usable = record.duration_sec if max_source_sec is None else min(record.duration_sec, max_source_sec)
    usable = int(usable * spec.fps) / spec.fps  # whole frames only
    if usable < crop:
        raise ClipTooShortError(f"clip of {record.duration_sec:.3f} s is shorter than the {crop} s crop")
    whole = read_clip(record.path, 0.0, 0.0, usable, spec.fps, spec.sample_rate, size=dataset.decode_size,
                      reject_silent=dataset.reject_silent)
    frames, wav = whole["video"], whole["audio"]
    starts = _grid_starts(usable, crop, step)
    rng = np.random.default_rng([seed, stable_hash(record.key)])
    jitter = rng.uniform(-jitter_sec, jitter_sec, len(starts)) if jitter_sec > 0 else np.zeros(len(starts))
    audio_starts = np.clip(starts + jitter, 0.0, usable - crop)

    v0 = np.round(starts * spec.fps).astype(int)
    a0 = np.round(audio_starts * spec.sample_rate).astype(int)
    if v0.max() + spec.num_frames > len(frames) or a0.max() + spec.num_samples > len(wav):
        raise ClipTooShortError(f"decoded {len(frames)} frames / {len(wav)} samples: too few for the windows")
    video = np.stack([dataset.centre_crop(frames[s:s + spec.num_frames]) for s in v0])
    audio = np.stack([wav[s:s + spec.num_samples] for s in a0])
    vfeat = encode_video(torch.from_numpy(video).to(device)).to("cpu", dtype)
    afeat = encode_audio(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(device)).to("cpu", dtype)
    return ClipFeatures(record.key, usable, float(step), torch.from_numpy(starts), vfeat,
                        torch.from_numpy(audio_starts), afeat)


class FeatureBankPairs(Dataset):
    """Training examples drawn as pairs of cached windows with the sampler's distribution.

    One item per clip per epoch (as the decoded training set); each fetch draws an offset and a
    video start on the bank's step grid from a fresh generator seeded by torch's RNG (so
    ``seed_everything`` makes the draws reproducible and workers never repeat each other).
    """

    def __init__(self, bank: FeatureBank, sampler: RandomOffsetSampler):
        self.bank, self.sampler = bank, sampler

    def __len__(self) -> int:
        return len(self.bank)

    def __getitem__(self, index: int) -> dict:
        clip = self.bank.clips[index]
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        plan = self.sampler.sample(clip.usable_sec, rng, jitter=False)
        vi, ai = (int(i) for i in clip.index_of([plan.video_start_sec, plan.video_start_sec + plan.offset_sec]))
        return {"vfeat": clip.video[vi], "afeat": clip.audio[ai], "target": torch.tensor(plan.label),
                "offset_sec": float(plan.offset_sec), "video_start_sec": float(clip.video_starts[vi]),
                "audio_start_sec": float(clip.audio_starts[ai]), "key": clip.key, "index": index}


class FeatureBankDataModule(L.LightningDataModule):
    """Training batches from a feature bank of ``source``'s training clips; evaluation from ``source``.

    Args:
        source: the data module of the clips (toy, LRS3, VGGSound, ...), configured as usual.
        start_step_sec: grid of cached window starts; every offset of the model's grid must be a
            multiple of it (0.2 s for the 3- and 21-class grids).
        batch_size: training batch size (default: the source's).
        cache_dir: where banks are saved (default ``$AVSYNC_CACHE_DIR/feature_bank``); None to
            use the default, "" to keep the bank in memory only.
        seed: seed of the per-window audio jitter.
    """

    def __init__(self, source: AVSyncDataModule, start_step_sec: float = 0.2, batch_size: int | None = None,
                 cache_dir: str | None = None, seed: int = 0, progress: bool = True):
        super().__init__()
        self.source = source
        self.start_step_sec = float(start_step_sec)
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.seed = int(seed)
        self.progress = progress
        self.bank: FeatureBank | None = None

    # -- plumbing: the source sees the same trainer (its input spec comes from the model) ----
    def prepare_data(self) -> None:
        self.source.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        self.source.trainer = self.trainer
        self.source.setup(stage)

    def val_dataloader(self) -> DataLoader:
        return self.source.val_dataloader()

    def test_dataloader(self) -> DataLoader:
        return self.source.test_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.source.predict_dataloader()

    def teardown(self, stage: str | None = None) -> None:
        self.source.teardown(stage)

    # -- the bank -----------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        spec = self.source.spec
        if not spec.offset_classes:
            raise ValueError("a feature bank serves grid classifiers (offset_classes set); score-search "
                             "models draw their own pairs")
        if spec.train_durations:
            raise ValueError("a feature bank caches windows of one length; variable-length training "
                             f"(train_durations={spec.train_durations}) needs decoded clips")
        grid = get_grid(spec.offset_classes)
        step = self.start_step_sec
        off_grid = [o for o in grid.values if abs(o / step - round(o / step)) > 1e-6]
        if off_grid or abs(step * spec.fps - round(step * spec.fps)) > 1e-6:
            raise ValueError(f"start_step_sec={step} must be a whole number of frames at {spec.fps} fps and "
                             f"divide every offset of the grid (not {off_grid[:3]})")
        if self.bank is None:
            self.bank = self._load_or_build()
        sampler = RandomOffsetSampler(grid, crop_sec=spec.duration_sec, max_source_sec=self.source.max_source_sec,
                                      jitter_sec=0.0, start_step_sec=step)
        return self._loader(FeatureBankPairs(self.bank, sampler))

    def _loader(self, pairs: FeatureBankPairs) -> DataLoader:
        return build_loader(pairs, train=True, batch_size=self.batch_size or self.source.batch_size, num_workers=0,
                            trainer=self.trainer)

    def _load_or_build(self) -> FeatureBank:
        model = self.trainer.lightning_module
        encode_video, encode_audio = model.frozen_encoders()
        dataset = self.source.datasets["train"]
        args = (self.start_step_sec, self.source.max_source_sec, self.source.audio_jitter_sec, self.seed)
        folder = self._cache_folder(model, dataset)
        store = FeatureStore.open(folder) if folder is not None else None
        if store is not None:
            log.info("feature bank: loading %s", folder)
            store.repair({SPLIT: dataset.records},
                         bank_compute(dataset, encode_video, encode_audio, *args, model.device, torch.float16))
            paths = {r.key: r.path for r in dataset.records}
            for key, reason in store.skipped.get(SPLIT, {}).items():  # every clip left out is reported, every run
                dataset.report.record(key, paths.get(key, key), reason, "feature_bank")
            return FeatureBank.from_store(store)
        if folder is not None:
            store = FeatureStore(folder, KIND, self._fingerprint(model), bank_settings(dataset, *args, torch.float16))
        bank = build_feature_bank(dataset, encode_video, encode_audio, start_step_sec=args[0], max_source_sec=args[1],
                                  jitter_sec=args[2], seed=args[3], device=model.device, progress=self.progress,
                                  store=store)
        if bank.skipped:
            log.warning("feature bank: %d clip(s) skipped (see the bad-media report)", len(bank.skipped))
        return bank

    @staticmethod
    def _fingerprint(model) -> str:
        prefixes = tuple(getattr(model, "frozen_prefixes", ()))
        if not prefixes:
            raise TypeError(f"{type(model).__name__} names no frozen_prefixes: the bank cannot tell which "
                            "weights its features depend on")
        return weights_fingerprint(model, prefixes)

    def _cache_folder(self, model, dataset: AVClipDataset) -> Path | None:
        """``cache_dir/feature_bank_<key>`` (:func:`~avsync.data_modules.feature_cache.cache_key`), or
        None for a bank in memory only (``cache_dir=""``)."""
        if self.cache_dir == "":
            return None
        root = Path(self.cache_dir) if self.cache_dir else default_cache_dir() / "feature_bank"
        settings = bank_settings(dataset, self.start_step_sec, self.source.max_source_sec,
                                 self.source.audio_jitter_sec, self.seed, torch.float16)
        return root / f"{KIND}_{cache_key(self._fingerprint(model), settings, {SPLIT: dataset.records})}"

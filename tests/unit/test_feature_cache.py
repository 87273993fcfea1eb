"""The one frozen-feature cache: entries round-trip exactly, a broken file is found and recomputed
(never unpickled), an index of another format or a missing index means "build again", and the key
follows weights, settings and clips."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from avsync.data_modules.feature_cache import (INDEX, ClipFeatures, CorruptCacheEntry, FeatureStore, cache_key,
                                               weights_fingerprint)


def _clip(key: str, seed: int) -> ClipFeatures:
    g = torch.Generator().manual_seed(seed)
    return ClipFeatures.on_grid(key, 2.0, 0.2, torch.randn(6, 4, 3, generator=g).half(),
                                torch.randn(7, 2, 5, generator=g).half())


def _store(folder) -> FeatureStore:
    store = FeatureStore(folder, "test", "abc", {"step": 0.2})
    for i, key in enumerate(("a/x.mp4", "b/y.mp4")):
        store.put("train", _clip(key, i))
    store.skipped["train"] = {"c/z.mp4": "no audio stream"}
    store.commit()
    return store


def test_entries_round_trip_exactly(tmp_path):
    _store(tmp_path)
    store = FeatureStore.open(tmp_path)
    assert store.keys("train") == ["a/x.mp4", "b/y.mp4"] and store.skipped == {"train": {"c/z.mp4": "no audio stream"}}
    for i, key in enumerate(store.keys("train")):
        got, ref = store.get("train", key), _clip(key, i)
        assert torch.equal(got.video, ref.video) and torch.equal(got.audio_starts, ref.audio_starts)
    assert not list(tmp_path.rglob("*.tmp"))  # written under temporary names, renamed into place


def test_windows_gather_by_start_and_refuse_outside(tmp_path):
    clip = _clip("k", 0)
    vis, aud = clip.windows(0.4, 0.6, count=3, spacing_sec=0.2)
    assert torch.equal(vis, clip.video[2:5]) and torch.equal(aud, clip.audio[3:6])
    with pytest.raises(ValueError, match="outside the cached clip"):
        clip.windows(0.0, 1.0, count=3, spacing_sec=0.2)


def test_a_broken_file_is_found_and_recomputed_not_read(tmp_path):
    _store(tmp_path)
    store = FeatureStore.open(tmp_path)
    path = tmp_path / store.entries["train"]["b/y.mp4"]["file"]
    path.write_bytes(path.read_bytes()[:-10])                     # truncated
    with pytest.raises(CorruptCacheEntry, match="SHA-256"):
        store.get("train", "b/y.mp4")
    assert store.verify() == [("train", "b/y.mp4")]
    records = {"train": [SimpleNamespace(key=k) for k in store.keys("train")]}
    computed = []
    assert store.repair(records, lambda r: computed.append(r.key) or _clip(r.key, 1)) == [("train", "b/y.mp4")]
    assert computed == ["b/y.mp4"]
    again = FeatureStore.open(tmp_path)
    assert again.verify() == [] and torch.equal(again.get("train", "b/y.mp4").audio, _clip("b/y.mp4", 1).audio)


def test_missing_old_or_unreadable_index_means_build_again(tmp_path):
    assert FeatureStore.open(tmp_path) is None                    # e.g. a run killed before the index
    (tmp_path / INDEX).write_text(json.dumps({"fingerprint": "x", "splits": {}}))   # the format before
    assert FeatureStore.open(tmp_path) is None
    (tmp_path / INDEX).write_text('{"format": 2, "kin')           # truncated
    assert FeatureStore.open(tmp_path) is None


def test_in_memory_store_keeps_the_entries():
    store = _store(None)
    assert torch.equal(store.get("train", "a/x.mp4").video, _clip("a/x.mp4", 0).video) and store.verify() == []


def test_key_follows_weights_settings_and_clips(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    media = tmp_path / "clip.mp4"
    media.write_bytes(b"1")
    recs = {"train": [SimpleNamespace(key="clip", path=str(media))]}
    fp = weights_fingerprint(net, ("0.",))
    key = cache_key(fp, {"hop": 1}, recs)
    assert key == cache_key(fp, {"hop": 1}, recs)
    assert key != cache_key(fp, {"hop": 2}, recs)
    with torch.no_grad():
        net[1].weight.add_(1.0)                                   # not under the prefix: same features
    assert weights_fingerprint(net, ("0.",)) == fp
    with torch.no_grad():
        net[0].bias.add_(1e-3)
    assert cache_key(weights_fingerprint(net, ("0.",)), {"hop": 1}, recs) != key
    media.write_bytes(b"22")                                      # the clip was re-encoded
    assert cache_key(fp, {"hop": 1}, recs) != key
    with pytest.raises(ValueError, match="no weights under"):
        weights_fingerprint(net, ("missing.",))

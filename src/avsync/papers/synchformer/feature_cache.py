"""``avsync cache-features``: run Synchformer's frozen extractors once per clip and store segment features.

Stage II trains only the synchronisation module on top of frozen extractors, so the extractor
output of a segment never changes; computing it once and reading it back removes almost all of
stage II's compute (and the video decoding). What a crop plan can ask for decides what is stored:
the sampler puts video windows on the frame grid (1 / fps) and offsets on a 0.2 s grid, so every
segment a plan can use starts at a multiple of one frame for video and, without audio jitter, also
for audio. The cache therefore holds, per clip, the features of *every* 0.64 s segment starting at
each ``hop_frames`` frames (default 1, i.e. 0.04 s) over the whole clip, for both streams::

    vis  (Nv, tv, D) float16   segment i covers frames [i * hop, i * hop + 16)
    aud  (Na, ta, D) float16   segment i covers samples [i * hop_sec * sr, ... + 10240)

Any crop, offset and number of segments is then a gather (:func:`gather_segments`). Audio jitter
that is not a multiple of the hop is rounded to the nearest cached start (at most hop / 2).
Frames are centre-cropped once (no random crop / flip in stage II from the cache). This module only
says which segments and which extractors; storing, keying and checking the features is the suite's
one frozen-feature cache, :mod:`avsync.data_modules.feature_cache`.

    avsync cache-features --config experiments/synchformer_toy_stage2.yaml \\
        --model.init_args.extractors_from stage1.ckpt --out cache/toy_stage2

The folder is a :class:`~avsync.data_modules.feature_cache.FeatureStore`: one ``.pt`` per clip per
split (loads with ``weights_only=True``) and ``index.json`` (the extractor fingerprint, hop, frame
size, per-file checksums), which the reading data module checks against the model.
"""
from __future__ import annotations

import argparse
import logging
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avsync.data_modules.feature_cache import ClipFeatures, FeatureStore, weights_fingerprint
from avsync.papers.synchformer.network import SegmentInputs, Synchformer

log = logging.getLogger(__name__)

KIND = "synchformer_segments"
EXTRACTOR_PREFIXES = ("vfeat_extractor.", "afeat_extractor.")


def extractor_fingerprint(net: Synchformer) -> str:
    """A digest of the extractor weights: a cache is only valid for the extractors that wrote it."""
    return weights_fingerprint(net, EXTRACTOR_PREFIXES)


@torch.no_grad()
def clip_features(net: Synchformer, inputs: SegmentInputs, frames: torch.Tensor, audio: torch.Tensor,
                  hop_frames: int = 1, chunk: int = 32) -> dict[str, torch.Tensor]:
    """Features of every segment of a whole clip: frames (T, H, W, 3) uint8, audio (N,) float."""
    seg = inputs.frames_per_segment
    if hop_frames < 1 or seg % hop_frames:
        raise ValueError(f"hop_frames must divide the segment length ({seg}); got {hop_frames}")
    step = hop_frames / seg
    nv = (frames.shape[0] - seg) // hop_frames + 1
    hop_samples = inputs.samples_per_segment * hop_frames // seg
    na = (audio.shape[0] - inputs.samples_per_segment) // hop_samples + 1
    if nv < 1 or na < 1:
        raise ValueError(f"clip shorter than one segment ({frames.shape[0]} frames, {audio.shape[0]} samples)")
    device = next(net.parameters()).device
    vis, aud = [], []
    for i0 in range(0, nv, chunk):
        n = min(chunk, nv - i0)
        part = frames[i0 * hop_frames: (i0 + n - 1) * hop_frames + seg].to(device)
        vis.append(net.vfeat_extractor(inputs.video(part[None], n, step))[0].half().cpu())
    for i0 in range(0, na, chunk):
        n = min(chunk, na - i0)
        part = audio[i0 * hop_samples: (i0 + n - 1) * hop_samples + inputs.samples_per_segment].to(device)
        aud.append(net.afeat_extractor(inputs.audio(part[None], n, step))[0].half().cpu())
    return {"video": torch.cat(vis), "audio": torch.cat(aud)}


def gather_segments(cached: ClipFeatures, video_start_sec: float, audio_start_sec: float, num_segments: int,
                    step_sec: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The (S, tv, D) / (S, ta, D) features of a plan's segments from a clip's cache entry."""
    return cached.windows(video_start_sec, audio_start_sec, num_segments, step_sec)


def cache_settings(spec, hop_frames: int) -> dict:
    """What the cached segments depend on besides the extractor weights and the clips."""
    return {"hop_frames": int(hop_frames), "hop_sec": hop_frames / spec.fps, "fps": spec.fps,
            "sample_rate": spec.sample_rate, "frame_size": spec.frame_size,
            "resize_short_side": spec.resize_short_side}


def _clip_entry(net: Synchformer, inputs: SegmentInputs, spec, hop_frames: int, chunk: int, record) -> ClipFeatures:
    """Decode ``record`` whole (whole frames, centre crop) and run the extractors on every segment."""
    from avsync.media import read_clip

    seconds = int(record.duration_sec * spec.fps) / spec.fps
    clip = read_clip(record.path, 0.0, 0.0, seconds, spec.fps, spec.sample_rate,
                     size=spec.resize_short_side or spec.frame_size)
    frames = clip["video"]
    y0, x0 = (frames.shape[1] - spec.frame_size) // 2, (frames.shape[2] - spec.frame_size) // 2
    frames = torch.from_numpy(np.ascontiguousarray(frames[:, y0:y0 + spec.frame_size, x0:x0 + spec.frame_size]))
    feats = clip_features(net, inputs, frames, torch.from_numpy(clip["audio"]), hop_frames, chunk)
    return ClipFeatures.on_grid(record.key, seconds, hop_frames / spec.fps, feats["video"], feats["audio"])


def segment_compute(module: nn.Module, spec, hop_frames: int = 1, chunk: int = 32):
    """``record -> ClipFeatures`` through ``module.net``'s extractors (puts the net in eval mode)."""
    return partial(_clip_entry, module.net.eval(), module.inputs, spec, int(hop_frames), int(chunk))


def _log_skip(record, reason: str) -> None:
    log.warning("skipping %s: %s", record.path, reason)


def write_cache(module: nn.Module, datamodule, out: Path, splits=("train", "valid", "test"),
                hop_frames: int = 1, chunk: int = 32) -> FeatureStore:
    """Features of every clip of ``splits`` of ``datamodule`` through ``module.net``'s extractors,
    written as a feature store in ``out`` (clips that cannot be decoded are listed as skipped)."""
    from avsync.media import MediaError

    datamodule.input_spec = module.input_spec
    datamodule.prepare_data()
    datamodule.setup(None)
    spec = datamodule.spec
    compute = segment_compute(module, spec, hop_frames, chunk)
    store = FeatureStore(out, KIND, extractor_fingerprint(module.net), cache_settings(spec, hop_frames))
    for split in splits:
        if split not in datamodule.datasets:
            continue
        store.entries.setdefault(split, {})
        store.fill(split, datamodule.datasets[split].records, compute, (MediaError,), _log_skip)
        log.info("%s: cached %d clips", split, len(store.keys(split)))
    store.commit()
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="avsync cache-features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="cache folder to write")
    parser.add_argument("--hop-frames", type=int, default=1, help="segment start spacing in frames (divides 16)")
    parser.add_argument("--splits", nargs="+", default=["train", "valid", "test"])
    parser.add_argument("--chunk", type=int, default=32, help="segments per extractor call")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    from avsync.training_cli import cli_main

    cli = cli_main(rest, run=False)  # the stage-II config: model (extractors) and data module
    store = write_cache(cli.model, cli.datamodule, args.out, tuple(args.splits), args.hop_frames, args.chunk)
    counts = {s: len(store.keys(s)) for s in store.entries}
    print(f"cached {counts} clips in {args.out} (hop {store.settings['hop_sec']:.3f} s, "
          f"fingerprint {store.fingerprint[:12]})")
    return 0

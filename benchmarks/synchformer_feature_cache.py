"""Stage-II epoch time of Synchformer from the feature cache vs recomputing the frozen extractors.

Same clips, same plans (the toy set's training sampler, seeded), same machine; the recompute path
decodes with the whole-clip memo (``cache_decoded``) so that decoding is not what is measured.
Writes ``benchmarks/results/synchformer_feature_cache_<arch>.json``.

    python benchmarks/synchformer_feature_cache.py --arch synchformer_toy --clips 8 --epochs 2
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from avsync.data_modules.synchformer_features import CachedFeatureDataset
from avsync.data_modules.toy import ToyAVDataModule
from avsync.papers.synchformer.feature_cache import write_cache
from avsync.papers.synchformer.stage2 import SynchformerStage2Module


def run_epochs(module, loader, epochs: int) -> float:
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-4)
    module.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            loss = torch.nn.functional.cross_entropy(module(batch), batch["target"])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return (time.perf_counter() - start) / epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="synchformer_toy")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--toy-root", default=None)
    p.add_argument("--cache", default="/tmp/avsync_bench_cache")
    args = p.parse_args()
    torch.manual_seed(0)
    size = {"synchformer_toy": 32}.get(args.arch, 224)
    module = SynchformerStage2Module(arch=args.arch, input_overrides={"resize_short_side": size if size < 224 else 256})
    dm = ToyAVDataModule(root=args.toy_root, num_train=args.clips, num_valid=1, num_test=1,
                         batch_size=args.batch_size, num_workers=0, cache_decoded=True, audio_jitter_sec=0.0)
    t0 = time.perf_counter()
    store = write_cache(module, dm, Path(args.cache), splits=("train",))
    cache_sec = time.perf_counter() - t0
    cfg = module.net.cfg
    cached = CachedFeatureDataset(dm.datasets["train"], store, "train", cfg.num_segments,
                                  module.segment_step * cfg.segment_frames / cfg.fps)
    loader_kw = dict(batch_size=args.batch_size, shuffle=True, drop_last=True)
    run_epochs(module, dm.train_dataloader(), 1)  # warm-up: fills the decode memo
    recompute = run_epochs(module, dm.train_dataloader(), args.epochs)
    from_cache = run_epochs(module, torch.utils.data.DataLoader(cached, **loader_kw), args.epochs)
    result = {"arch": args.arch, "clips": args.clips, "batch_size": args.batch_size, "epochs": args.epochs,
              "epoch_sec_recompute": round(recompute, 3), "epoch_sec_from_cache": round(from_cache, 3),
              "speed_up": round(recompute / from_cache, 1), "cache_write_sec": round(cache_sec, 1),
              "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}
    out = Path(__file__).parent / "results" / f"synchformer_feature_cache_{args.arch}.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""``avsync convert``: official checkpoint -> a checkpoint this suite's LightningModule loads.

    avsync convert --model sparsesync --src sparsesync_official.pt --dst sparsesync.ckpt

The result loads with ``torch.load(dst, weights_only=True)``, with
``SparseSyncModule.load_from_checkpoint(dst)`` and as ``init_from: dst`` in a config.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from avsync.registry import converter_names, get_converter


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avsync convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=converter_names(), help="which model the checkpoint is")
    p.add_argument("--src", required=True, type=Path, help="official checkpoint (.pt/.pth)")
    p.add_argument("--dst", required=True, type=Path, help="where to write the converted checkpoint")
    p.add_argument("--arch", default=None,
                   help="registered configuration to start from (default: the model name); sizes that "
                        "the weights reveal (depth, classes, widths, positional tables) are inferred")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    converter = get_converter(args.model)
    ckpt = converter.lightning_checkpoint(args.src, arch=args.arch or args.model)
    args.dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, args.dst)
    hp = ckpt["hyper_parameters"]
    print(f"{args.src} -> {args.dst}: {len(ckpt['state_dict'])} tensors, arch={hp['arch']}, "
          f"overrides={hp.get('arch_overrides') or {}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What fused attention, channels-last and bf16 autocast each buy (issue 8, point 3).

Each variant changes one thing against the suite's default (fused ``F.scaled_dot_product_attention``,
contiguous fp32 weights):

* **explicit attention**: every model's SDPA call replaced by the reference codes' explicit
  softmax(q kᵀ/√d) v (``bench_common.explicit_attention``); the speed-up of fused attention is
  explicit time / fused time;
* **channels-last**: convolution weights (hence activations) in NHWC / NDHWC order — only where a
  model has convolutions that matter (SparseSync's S3D + ResNet; a ViT has one patch stem);
* **bf16 autocast**: ``torch.autocast(<device>, torch.bfloat16)``.

Measured on SparseSync (training step, batch 2, 5 s at 224 px, end to end; 2 s clips with
``--quick``), Synchformer's Motionformer (ViT-B, divided space-time attention over 8x14x14 tokens:
forward of one 0.64 s segment) and DiVAS-frame (ViT, offset prediction of a 2 s clip, 16 windows x 31 offsets). The
variants of one model are timed in turns (round robin) so that a change of machine load hits
all alike; the speed-up is the median time of the default over the median time of the variant.

    python benchmarks/speedups.py [--quick] [--models sparsesync motionformer divas_frame] [--device cuda]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cases import CASES, first_optimizer, synthetic_batch, to_device  # noqa: E402
from bench_common import (RESULTS, attention_kind, autocast, fmt, header, markdown_table, median,  # noqa: E402
                          sync, to_channels_last, write_report)

VARIANTS = {  # name: (attention, channels_last, bf16)
    "default (fused attention, fp32)": ("fused", False, False),
    "explicit attention": ("explicit", False, False),
    "channels-last": ("fused", True, False),
    "bf16 autocast": ("fused", False, True),
}


def sparsesync_step(args, channels_last: bool) -> Callable[[], torch.Tensor]:
    """A training step of the full SparseSync LightningModule (its loss path and Adam)."""
    torch.manual_seed(0)  # every variant starts from the same weights
    module = CASES["sparsesync"].make(args.toy)
    module = to_channels_last(module) if channels_last else module
    module = module.to(args.device).train()
    frames = int(round(args.sparsesync_seconds * module.input_spec.fps))
    batch = to_device(synthetic_batch(module, CASES["sparsesync"], 2, frames), args.device)
    opt = first_optimizer(module.configure_optimizers())

    def step(bf16: bool) -> torch.Tensor:
        with autocast(args.device, bf16):
            loss = module.training_step(batch, 0)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()
    return step


def motionformer_forward(args, channels_last: bool) -> Callable[[], torch.Tensor]:
    """Synchformer's visual extractor on one normalised 16-frame segment, inference."""
    torch.manual_seed(0)
    from avsync.papers.synchformer.network import get_config
    from avsync.papers.synchformer.motionformer import Motionformer

    net = Motionformer(get_config("synchformer_toy" if args.toy else "synchformer").motionformer)
    net = (to_channels_last(net) if channels_last else net).to(args.device).eval()
    cfg = net.cfg
    x = torch.randn(1, 1, 3, cfg.frames, cfg.img_size, cfg.img_size, generator=torch.Generator().manual_seed(0))
    x = x.to(args.device)

    @torch.inference_mode()
    def forward(bf16: bool) -> torch.Tensor:
        with autocast(args.device, bf16):
            return net(x).float()
    return forward


def divas_predict(args, channels_last: bool) -> Callable[[], torch.Tensor]:
    """DiVAS-frame's offset prediction of one 2 s clip (score search through ``predict_clip``)."""
    torch.manual_seed(0)
    module = CASES["divas_frame"].make(args.toy)
    module = (to_channels_last(module) if channels_last else module).to(args.device).eval()
    batch = to_device(synthetic_batch(module, CASES["divas_frame"], 1), args.device)

    @torch.inference_mode()
    def predict(bf16: bool) -> torch.Tensor:
        with autocast(args.device, bf16):
            return module.predict_clip(batch["video"][0], batch["audio"][0])["distances"].float()
    return predict


MODELS = {
    "sparsesync": ("SparseSync training step (batch 2, {sparsesync_seconds:g} s, 224 px)", sparsesync_step, True),
    "motionformer": ("Synchformer Motionformer forward (1 segment, 16x224x224)", motionformer_forward, False),
    "divas_frame": ("DiVAS-frame offset prediction (2 s clip, 240 px)", divas_predict, False),
}


def measure(key: str, args: argparse.Namespace) -> dict:
    """Median seconds per call of each variant (round robin), and how far each variant's output
    is from the default's (inference models only: a training step's weights move)."""
    _, build, training = MODELS[key]
    plain = build(args, False)
    fns = {}
    for name, (attention, channels_last, bf16) in VARIANTS.items():
        base = build(args, True) if channels_last else plain
        fns[name] = (base, attention, bf16)

    def call(name: str) -> torch.Tensor:
        fn, attention, bf16 = fns[name]
        with attention_kind(attention):
            out = fn(bf16)
        sync(args.device)
        return out

    reference = None if training else call(next(iter(VARIANTS)))
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    diffs: dict[str, float] = {}
    for name in VARIANTS:  # warm-up, and the output check
        out = call(name)
        if reference is not None:
            diffs[name] = float((out - reference).abs().max() / reference.abs().max().clamp_min(1e-12))
    for _ in range(args.rounds):
        for name in VARIANTS:
            t0 = time.perf_counter()
            call(name)
            times[name].append(time.perf_counter() - t0)
    return {"times": times, "diffs": diffs}


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(VARIANTS)
    keys = list(results)
    for i, name in enumerate(VARIANTS):
        speedups = [median(results[k]["times"][next(iter(VARIANTS))]) / median(results[k]["times"][name])
                    for k in keys]
        ax.bar([j + i * width for j in range(len(keys))], speedups, width, label=name)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks([j + width * (len(VARIANTS) - 1) / 2 for j in range(len(keys))], keys)
    ax.set_ylabel("speed relative to the default (>1 = faster)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(results: dict, args: argparse.Namespace, argv: list[str]) -> None:
    default = next(iter(VARIANTS))
    rows = []
    for key, r in results.items():
        base = median(r["times"][default])
        for name in VARIANTS:
            t = median(r["times"][name])
            diff = r["diffs"].get(name)
            rows.append([MODELS[key][0].format(**vars(args)) if name == default else "", name, fmt(t, 3),
                         f"{base / t:.2f}x", "—" if diff is None else f"{diff:.1e}"])
    lines = header("Speed-ups: fused attention, channels-last, bf16 autocast", argv, args.device)
    lines += [f"Device `{args.device}`, {'toy configs' if args.toy else 'the papers’ configs'}; median of "
              f"{args.rounds} round-robin timings per variant after one warm-up call each. "
              "'× default' > 1 means the variant is faster than the suite's default; for explicit attention "
              "its inverse is the speed-up of fused attention. 'max rel. diff' compares the variant's "
              "output with the default's (inference models).", ""]
    lines += markdown_table(["model / call", "variant", "s / call", "× default", "max rel. diff"], rows)
    stem = args.out.with_suffix("")
    plot(results, stem.with_suffix(".png"), f"Speed-ups on {args.device}")
    lines += ["", f"![speed-ups]({stem.with_suffix('.png').name})"]
    write_report(args.out, lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="*", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sparsesync-seconds", type=float, default=5.0, help="clip length of the SparseSync step")
    p.add_argument("--quick", action="store_true", help="make bench: 1 round, SparseSync on 2 s clips")
    p.add_argument("--toy", action="store_true", help="toy configs (smoke run)")
    p.add_argument("--out", type=Path, default=None)
    return p


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.quick:
        args.rounds, args.sparsesync_seconds = 1, min(args.sparsesync_seconds, 2.0)
    suffix = ("_" + args.device.split(":")[0] if args.device != "cpu" else "") + ("_toy" if args.toy else "")
    args.out = args.out or RESULTS / f"speedups{suffix}.md"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = {}
    for key in args.models:
        print(f"-- {key}", flush=True)
        results[key] = measure(key, args)
        print({k: [round(t, 3) for t in v] for k, v in results[key]["times"].items()}, flush=True)
    report(results, args, [str(Path("benchmarks") / Path(__file__).name), *argv])


if __name__ == "__main__":
    main()

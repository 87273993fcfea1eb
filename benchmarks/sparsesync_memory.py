"""Memory (and time) vs input length, SparseSync's selectors vs a plain transformer over all tokens
(SparseSync Fig. 4; issue 8, point 3).

As in the paper's figure the feature extractors are left out (they are the same for both): the
measured part is everything after them, fed with token maps of the size S3D and the audio ResNet
produce for a clip of 1-10 s (visual t x 7 x 7 x 512, audio 9 x t_a x 512; the sizes are read off
the extractors on the meta device). One training pass (forward, cross-entropy, backward) at batch 2.

* **selectors**: SparseSync's ``SelectorSyncTransformer`` (16 + 16 selectors, depth 3);
* **plain**: the same norms, positional tables and 3-layer synchronisation transformer over
  ``[OFF; all visual tokens; MOD; all audio tokens]`` (no selectors), the vanilla baseline.

Each is run with fused attention (``F.scaled_dot_product_attention``, this suite) and with the
explicit softmax attention of the reference code (what Fig. 4 measured), each point in a fresh
process (peak = rise of the RSS high-water mark; CUDA: max allocated).

    python benchmarks/sparsesync_memory.py [--quick] [--width toy] [--device cuda]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (RESULTS, PeakMemory, attention_kind, fmt, header, markdown_table, median,  # noqa: E402
                          run_isolated, time_calls, write_report)

from avsync.papers.sparsesync.network import SPARSESYNC_CONFIGS, SelectorSyncTransformer, SparseSync  # noqa: E402

FPS, SAMPLE_RATE, HOP, N_FREQ, FRAME = 25, 16000, 128, 257, 224
MODELS, ATTENTION = ("selectors", "plain"), ("fused", "explicit")


class AllTokensTransformer(SelectorSyncTransformer):
    """The vanilla baseline: SparseSync's synchronisation transformer over every extractor token."""

    def __init__(self, cfg):
        super().__init__(cfg)
        del self.v_selector, self.a_selector

    def forward(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        vis = self.vis_pos_emb(self.pre_lnorm_vis(vis)).flatten(1, 3)
        aud = self.aud_pos_emb(self.pre_lnorm_aud(aud)).flatten(1, 2)
        return self.off_head(self.global_transformer(vis, aud)[:, 0])


def token_grids(seconds: float) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """(t, h, w) visual and (f, t) audio token grids of a clip, from the full extractors on the meta device."""
    with torch.device("meta"):
        net = SparseSync(SPARSESYNC_CONFIGS["sparsesync"])
        frames, columns = int(round(seconds * FPS)), int(round(seconds * SAMPLE_RATE)) // HOP + 1
        v = net.vfeat_extractor(torch.empty(1, 3, frames, FRAME, FRAME))
        a = net.afeat_extractor(torch.empty(1, 1, N_FREQ, columns))
    return tuple(v.shape[2:]), tuple(a.shape[2:])


def config(width: str, vis: tuple[int, int, int], aud: tuple[int, int], dropout: float | None):
    base = SPARSESYNC_CONFIGS["sparsesync" if width == "full" else "sparsesync_toy"]
    # positional tables as long as this input (the paper's tables cover 5 s)
    cfg = dataclasses.replace(base, visual_block=vis, audio_block=aud)
    return cfg if dropout is None else dataclasses.replace(cfg, dropout=dropout)


def measure(model: str, attention: str, seconds: float, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    vis_grid, aud_grid = token_grids(seconds)
    cfg = config(args.width, vis_grid, aud_grid, args.dropout)
    net = (SelectorSyncTransformer if model == "selectors" else AllTokensTransformer)(cfg).to(args.device).train()
    b = args.batch_size
    vis = torch.randn(b, *vis_grid, cfg.dim, device=args.device)
    aud = torch.randn(b, *aud_grid, cfg.dim, device=args.device)
    target = torch.randint(cfg.num_classes, (b,), device=args.device)

    def step() -> None:
        F.cross_entropy(net(vis, aud), target).backward()
        net.zero_grad(set_to_none=True)

    with attention_kind(attention), PeakMemory(args.device) as mem:
        times = time_calls(step, args.device, 1, 1, args.steps, 10.0)
    tokens = (1 + cfg.num_selectors) * 2 if model == "selectors" else \
        2 + vis_grid[0] * vis_grid[1] * vis_grid[2] + aud_grid[0] * aud_grid[1]
    return {"model": model, "attention": attention, "seconds": seconds, "delta_mb": mem.delta_mb,
            "sec_per_step": median(times), "tokens": tokens, "vis_grid": vis_grid, "aud_grid": aud_grid}


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {("selectors", "fused"): "tab:blue", ("selectors", "explicit"): "tab:cyan",
              ("plain", "fused"): "tab:red", ("plain", "explicit"): "tab:orange"}
    for (model, attention), color in styles.items():
        pts = sorted((r["seconds"], r) for r in results
                     if r.get("model") == model and r.get("attention") == attention and "error" not in r)
        if not pts:
            continue
        xs = [s for s, _ in pts]
        label = f"{model}, {attention} attention"
        axes[0].plot(xs, [r["delta_mb"] / 1024 for _, r in pts], "o-", color=color, label=label)
        axes[1].plot(xs, [r["sec_per_step"] for _, r in pts], "o-", color=color, label=label)
    axes[0].set_ylabel("peak memory of a training pass (GiB)")
    axes[1].set_ylabel("s per forward + backward")
    for ax in axes:
        ax.set_xlabel("input length (s)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(results: list[dict], args: argparse.Namespace, argv: list[str]) -> None:
    cell = {(r["model"], r["attention"], r["seconds"]): r for r in results}
    rows = []
    for seconds in args.seconds:
        first = next((r for r in results if r["seconds"] == seconds and "vis_grid" in r), None)
        row = [f"{seconds:g}", f"{tuple(first['vis_grid'])} / {tuple(first['aud_grid'])}" if first else "—",
               str(next((r["tokens"] for r in results if r["seconds"] == seconds and r["model"] == "plain"
                         and "tokens" in r), "—"))]
        for model in MODELS:
            for attention in ATTENTION:
                r = cell.get((model, attention, seconds), {"error": "not run"})
                row.append("✗ " + r["error"][:40] if "error" in r else
                           f"{r['delta_mb'] / 1024:.2f} GiB, {fmt(r['sec_per_step'], 3)} s")
        rows.append(row)
    width = "full width (512-d, depth 3, 8 heads, 16+16 selectors)" if args.width == "full" else \
        "**toy width** (64-d, depth 2, 4 heads) — not the paper's size"
    lines = header("SparseSync memory vs input length: selectors vs a plain transformer (Fig. 4)", argv,
                   args.device)
    dropout = "the config's dropout 0.1" if args.dropout is None else f"dropout {args.dropout:g}"
    lines += [f"Transformer part only (extractors excluded, as in Fig. 4), {width}, {dropout}, "
              f"batch {args.batch_size}, fp32, device `{args.device}`; one training pass = forward + "
              f"cross-entropy + backward; "
              f"memory = peak rise over the state after building the model and token maps (fresh process "
              f"per cell), time = median of up to {args.steps} passes after one warm-up.", ""]
    lines += markdown_table(["input (s)", "tokens visual (t,h,w) / audio (f,t)", "plain: tokens"] +
                            [f"{m}, {a} attn" for m in MODELS for a in ATTENTION], rows)
    stem = args.out.with_suffix("")
    plot(results, stem.with_suffix(".png"), f"SparseSync transformer, batch {args.batch_size}, {args.width} width")
    lines += ["", f"![memory vs length]({stem.with_suffix('.png').name})"]
    write_report(args.out, lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, nargs="*", default=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    p.add_argument("--width", choices=("full", "toy"), default="full")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--dropout", type=float, default=None,
                   help="attention/residual dropout (default: the config's 0.1; on CPU SDPA only takes its "
                        "flash path without attention dropout)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="make bench: 1, 2, 5 and 10 s, 2 timed passes")
    p.add_argument("--no-isolate", action="store_true", help="one process (memory is approximate)")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--worker", nargs=3, metavar=("MODEL", "ATTENTION", "SECONDS"), help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.worker:
        model, attention, seconds = args.worker
        print(json.dumps(measure(model, attention, float(seconds), args)))
        return
    if args.quick:
        args.seconds, args.steps = [s for s in (1, 2, 5, 10) if s in args.seconds] or args.seconds, 2
    suffix = ("_" + args.device.split(":")[0] if args.device != "cpu" else "") + ("_toy" if args.width == "toy" else "")
    args.out = args.out or RESULTS / f"sparsesync_memory{suffix}.md"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for seconds in args.seconds:
        for model in MODELS:
            for attention in ATTENTION:
                if args.no_isolate:
                    r = measure(model, attention, seconds, args)
                else:
                    worker = ["--width", args.width, "--device", args.device, "--batch-size", str(args.batch_size),
                              *(["--dropout", str(args.dropout)] if args.dropout is not None else []),
                              "--steps", str(args.steps), "--worker", model, attention, str(seconds)]
                    r = run_isolated(Path(__file__), worker, args.timeout)
                results.append({"model": model, "attention": attention, "seconds": seconds, **r})
                print(json.dumps(results[-1]), flush=True)
    report(results, args, [str(Path("benchmarks") / Path(__file__).name), *argv])


if __name__ == "__main__":
    main()

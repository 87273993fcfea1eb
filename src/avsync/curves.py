"""Learning curves from TensorBoard event files, as one PNG (the reproduction runner's figure)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CURVE_TAGS = ("train/loss_step", "val/loss", "val/acc@1", "val/acc_tol", "val/segment_acc", "val/selector_acc")


def read_scalars(log_dir: str | Path, tags=CURVE_TAGS) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    available = set(acc.Tags().get("scalars", []))
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags if t in available}


def plot_learning_curves(runs: dict[str, str | Path], out: str | Path) -> Path | None:
    """One row per run (stage), one column per metric; returns the PNG path (None if nothing logged)."""
    curves = {name: read_scalars(d) for name, d in runs.items() if Path(d).exists()}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    tags = [t for t in CURVE_TAGS if any(t in c for c in curves.values())]
    fig, axes = plt.subplots(len(curves), len(tags), figsize=(3.2 * len(tags), 2.4 * len(curves)), squeeze=False)
    for row, (name, scalars) in enumerate(curves.items()):
        for col, tag in enumerate(tags):
            ax = axes[row][col]
            if tag in scalars:
                steps, values = zip(*scalars[tag])
                ax.plot(steps, values, marker="." if len(steps) < 30 else None)
            ax.set_title(f"{name}: {tag}", fontsize=8)
            ax.set_xlabel("step", fontsize=7)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

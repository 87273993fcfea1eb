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


def plot_learning_curves(runs: dict[str, str | Path], out: str | Path) -> dict[Path, list[str]]:
    """Learning curves of the stages, one figure per stage group: stages of one family (the name up to
    its first ``_``: ``dense_3cls`` and ``dense_21cls``, the ``sparse_*`` lengths and seeds) that log
    the same metrics share a figure (one row per stage, one column per metric), so no panel is empty
    and a figure holds one part of the plan. The group of the first stage goes to ``out``
    (``curves.png``), each other group to ``<out stem>_<its first stage>.png`` beside it.
    Returns {PNG: its stages} (empty if nothing was logged)."""
    curves = {name: read_scalars(d) for name, d in runs.items() if Path(d).exists()}
    groups: dict[tuple, list[str]] = {}
    for name, scalars in curves.items():
        if scalars:
            tags = tuple(t for t in CURVE_TAGS if t in scalars)
            groups.setdefault((name.split("_")[0], tags), []).append(name)
    out, written = Path(out), {}
    for i, ((_, tags), names) in enumerate(groups.items()):
        path = out if i == 0 else out.with_name(f"{out.stem}_{names[0]}{out.suffix}")
        _plot_group({n: curves[n] for n in names}, tags, path)
        written[path] = names
    return written


def _plot_group(curves: dict[str, dict], tags: tuple[str, ...], path: Path) -> None:
    fig, axes = plt.subplots(len(curves), len(tags), figsize=(3.2 * len(tags), 2.4 * len(curves)), squeeze=False)
    for row, (name, scalars) in enumerate(curves.items()):
        for col, tag in enumerate(tags):
            ax = axes[row][col]
            steps, values = zip(*scalars[tag])
            ax.plot(steps, values, marker="." if len(steps) < 30 else None)
            ax.set_title(f"{name}: {tag}", fontsize=8)
            ax.set_xlabel("step", fontsize=7)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

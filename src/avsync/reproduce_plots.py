"""The reproduction runner's figures per stage: accuracy per true offset, and per dataset class
(sorted bars, AVST Fig. 3 / SparseSync Fig. 3) where the stage's test data had classes.

They are drawn from the ``breakdown`` a stage's ``result.json`` holds (the module's
``test_breakdown``, :mod:`avsync.evaluation.class_breakdown`) and written beside the results table as
``<stage>_per_offset.png`` / ``<stage>_per_class.png``; the table links them.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from avsync.evaluation.class_plots import per_class_figure  # noqa: E402
from avsync.evaluation.figures import per_offset_figure  # noqa: E402

__all__ = ["PLOT_KINDS", "stage_plot_paths", "write_stage_plots"]

#: file suffix -> link text in the results table
PLOT_KINDS = {"per_offset": "per offset", "per_class": "per class"}


def stage_plot_paths(out: Path, stage: str) -> dict[str, Path]:
    return {kind: Path(out) / f"{stage}_{kind}.png" for kind in PLOT_KINDS}


def _tensor(values: list) -> torch.Tensor:
    return torch.tensor([float("nan") if v is None else float(v) for v in values], dtype=torch.float64)


def write_stage_plots(out: Path, stage: str, result: dict) -> list[Path]:
    """The PNGs of one stage's test breakdown (none without one); returns the files written."""
    data = result.get("breakdown")
    if not data:
        return []
    paths, written = stage_plot_paths(out, stage), []
    per_offset = data["per_offset"]
    fig = per_offset_figure(_tensor(per_offset["acc@1"]), _tensor(per_offset["acc_tol"]), data["offsets_sec"],
                            f"{stage}: test accuracy per true offset")
    written.append(_save(fig, paths["per_offset"]))
    if "per_class" in data:
        per_class = data["per_class"]
        fig = per_class_figure(data["classes"], per_class["acc_tol"], per_class["acc@1"], per_class["count"],
                               f"{stage}: test accuracy per class")
        written.append(_save(fig, paths["per_class"]))
    else:
        paths["per_class"].unlink(missing_ok=True)  # left by an earlier run of the stage with classes
    return written


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

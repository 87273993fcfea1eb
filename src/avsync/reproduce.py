"""``avsync reproduce <paper>``: run a paper's reproduction plan and write its table beside the paper's.

A plan (``reproductions/<paper>/plan.yaml``) holds lists of stages (``toy``, ``full``,
``official``). Each stage is a LightningCLI run — ``fit`` with the stage's configs, then ``test`` on the last checkpoint — optionally
initialised from an earlier stage's checkpoint (the papers' staged recipes: pre-trained
extractors, 3 -> 21 classes, dense -> sparse). A stage's configs are grouped by concern: ``path#entry``
names one entry of a concern file (``../trainer.yaml``, ``configs/model.yaml``, ``configs/data.yaml``),
a plain path a whole config file; a ``matrix`` repeats a stage (or a group of stages) per value
(:func:`expand_matrices`), so a variant that changes one value is a plan line, not a config file. The paper's numbers live in
``paper_numbers.yaml``; each names the stage and metric that reproduce it. Without a dataset
root the plan's ``toy`` stages run on the embedded synthetic set (results labelled *toy*); with
``--data-root`` its ``full`` stages run at the paper's scale, and a result outside the stated
tolerance of the paper makes the command exit non-zero. ``--weights official`` (with a dataset
root) runs the plan's ``official`` stages instead: each names the authors' published checkpoint
(``official: <name>``, see ``avsync weights list``), which is fetched, checked and converted on
first use and tested under the stage's full-size configs without any fitting (results in
``runs/reproduce/<paper>_official``). The full table gets those results as an "authors' weights"
column beside the trained values (each paper number's ``official_stage``), read from the finished
stages of ``<paper>_official`` next to it (``--authors-results`` names another folder); whichever of
the two runs finishes second writes the combined table.

Beside the table, each tested stage gets PNGs of its accuracy per true offset and, where its test
data had classes, per class (:mod:`avsync.reproduce_plots`), linked from the table.

A finished stage leaves ``result.json`` and is skipped when the command runs again, so an
interrupted reproduction resumes where it stopped. ``--publish`` copies the finished table to
``reproductions/<paper>/results/<mode>.csv`` (the committed results) and regenerates the README's
results tables from it (:func:`update_readme_results`).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from avsync.reproduce_plots import PLOT_KINDS, stage_plot_paths, write_stage_plots

log = logging.getLogger("avsync.reproduce")

REPRODUCTIONS = Path(__file__).resolve().parents[2] / "reproductions"
# plan sections: toy (embedded set), full (paper scale, trained), official (paper scale, the authors'
# published weights tested without training; `--weights official`). Column label of each.
MODES = {"toy": "toy", "full": "full", "official": "authors' weights"}


@dataclass
class Stage:
    name: str
    configs: list[str]
    args: list[str] = field(default_factory=list)
    init_from: str | None = None
    fit: bool = True      # False: evaluate the init_from stage's checkpoint under this stage's configs
    test: bool = True
    description: str = ""
    official: str | None = None  # the authors' published weights by name (avsync.weights): tested, never fit
    # a checkpoint shipped with the plan (path relative to the plan's folder) that a fitted stage starts
    # from instead of an earlier stage, and its sha256, checked before use: pre-trained weights the
    # plan does not make itself (the toy sparse extractors, reproductions/sparsesync/README.md)
    init_file: str | None = None
    init_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.official is not None:
            if self.init_from is not None:
                raise ValueError(f"stage {self.name}: official weights and init_from exclude each other")
            self.fit = False
        if self.init_file is not None:
            if self.init_from is not None or self.official is not None or not self.fit:
                raise ValueError(f"stage {self.name}: init_file starts a fitted stage; it excludes init_from and official")
            if not self.init_sha256:
                raise ValueError(f"stage {self.name}: init_file {self.init_file} needs its init_sha256")


@dataclass
class PaperNumber:
    table: str
    setting: str
    metric: str           # the metric's name in the test results, e.g. test/acc_tol
    value: float          # the paper's number, in percent
    stage: str | None     # the stage whose test result reproduces it (None: not reproduced here)
    tolerance: float = 2.0  # allowed |difference| in points at full scale
    note: str = ""
    dataset: str = ""     # where the paper measured it (e.g. "LRS2"), shown beside the setting
    split: str = ""       # the paper's split (e.g. "test")
    tolerance_kind: str = "absolute points"  # how `tolerance` is read (the gate compares |difference|)
    authors_stage: str | None = None  # the `official` stage testing the authors' weights for this number


def expand_matrices(items: list[dict]) -> list[dict]:
    """A plan section with its matrices expanded into plain stages, in order.

    A stage may carry ``matrix``: ``{key: [values...]}`` (every combination, keys in order) or
    ``[{key: value, ...}, ...]`` (one stage per row); ``{key}`` in its name, configs, args, init_from,
    init_file, official and description is replaced by the value, e.g. ``name: dense_enc_eval{len}`` with
    ``args: [--model.init_args.eval_window_frames, "{len}"]``. An item ``{matrix: ..., stages: [...]}``
    repeats a group of stages per value (a train stage and the stages evaluating it stay together).
    So a value that varies one knob is one line of the plan, not one config file per value."""
    out = []
    for item in items:
        item = dict(item)
        matrix, group = item.pop("matrix", None), item.pop("stages", None)
        if group is not None and item:
            raise ValueError(f"a stage group holds only matrix and stages, not {sorted(item)}")
        for values in _matrix_rows(matrix):
            if group is not None:
                out += expand_matrices([_fill(stage, values) for stage in group])
            else:
                out.append(_fill(item, values))
    return out


def _matrix_rows(matrix) -> list[dict]:
    if matrix is None:
        return [{}]
    if isinstance(matrix, dict):
        return [dict(zip(matrix, combo)) for combo in itertools.product(*matrix.values())]
    return [dict(row) for row in matrix]


def _fill(value, values: dict):
    """``value`` with ``{key}`` replaced by ``values[key]`` in every string (other braces kept)."""
    if isinstance(value, str):
        for key, v in values.items():
            value = value.replace("{" + key + "}", str(v))
        return value
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def read_config(ref: str, plan_dir: Path) -> dict:
    """The config a plan names: ``path`` (a whole LightningCLI config file) or ``path#entry`` (one named
    entry of a concern file such as ``configs/model.yaml``), the path relative to the plan's folder."""
    path, _, entry = ref.partition("#")
    doc = yaml.safe_load((Path(plan_dir) / path).read_text())
    if not entry:
        return doc
    if entry not in doc:
        raise KeyError(f"{Path(plan_dir) / path} has no entry {entry!r} (it has {', '.join(doc)})")
    return doc[entry]


def config_args(configs: list[str], plan_dir: Path) -> list[str]:
    """``--config`` arguments for a stage's configs, merged left to right by LightningCLI: a whole
    file by its path, a concern file's entry as the YAML text of that entry."""
    args = []
    for ref in configs:
        if "#" in ref:
            args += ["--config", yaml.safe_dump(read_config(ref, plan_dir), allow_unicode=True, sort_keys=False)]
        else:
            args += ["--config", str(Path(plan_dir) / ref)]
    return args


def stage_cli_args(stage: Stage, plan_dir: Path, data_root: str | None) -> list[str]:
    """A stage's configs and args (``{data_root}`` filled in) as LightningCLI arguments."""
    return config_args(stage.configs, plan_dir) + [a.replace("{data_root}", str(data_root)) for a in stage.args]


def stage_argv(stage: Stage, plan_dir: Path, stage_dir: Path, ckpts: dict[str, str], data_root: str | None) -> list[str]:
    """The LightningCLI arguments of one stage: its configs, its args (``{data_root}`` filled in), its
    output folder and, for a fitted stage with ``init_from``, the earlier stage's weights."""
    args = stage_cli_args(stage, plan_dir, data_root)
    args += ["--trainer.default_root_dir", str(stage_dir)]
    if stage.init_from and stage.fit:
        args += ["--model.init_args.init_from", ckpts[stage.init_from]]
    if stage.init_file:
        args += ["--model.init_args.init_from", str(checked_init_file(stage, plan_dir))]
    return args


def checked_init_file(stage: Stage, plan_dir: Path) -> Path:
    """The stage's shipped checkpoint, after checking that it is there and is the file the plan names."""
    from avsync.weights.download import file_digest

    path = (Path(plan_dir) / stage.init_file).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"stage {stage.name}: init_file {path} does not exist")
    digest = file_digest(path, "sha256")
    if digest != stage.init_sha256.lower():
        raise ValueError(f"stage {stage.name}: init_file {path} has sha256 {digest}, the plan expects "
                         f"{stage.init_sha256}: not the file the plan's results were measured with")
    return path


def load_plan(paper: str, mode: str, plans: Path = REPRODUCTIONS) -> tuple[list[Stage], list[PaperNumber], Path]:
    root = Path(plans) / paper
    if not root.is_dir():
        known = sorted(p.name for p in Path(plans).iterdir() if (p / "plan.yaml").exists())
        raise SystemExit(f"no reproduction for {paper!r}; known: {', '.join(known)}")
    plan = yaml.safe_load((root / "plan.yaml").read_text())
    if mode not in plan:
        raise SystemExit(f"the {paper} plan has no {mode!r} stages")
    stages = [Stage(**s) for s in expand_matrices(plan[mode])]
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"{root / 'plan.yaml'} [{mode}]: stage names repeat: "
                         f"{sorted({n for n in names if names.count(n) > 1})}")
    numbers = []
    for n in yaml.safe_load((root / "paper_numbers.yaml").read_text())["numbers"]:
        stage = n.pop(f"{mode}_stage", None)
        n["authors_stage"] = n.get("official_stage")
        for other in MODES:
            n.pop(f"{other}_stage", None)
        numbers.append(PaperNumber(stage=stage, **n))
    return stages, numbers, root


def run_stage(stage: Stage, plan_dir: Path, out: Path, ckpts: dict[str, str], data_root: str | None,
              extra_callbacks: list | None = None) -> dict:
    """fit (unless the stage only evaluates) + test, in-process, through the LightningCLI users call.

    ``extra_callbacks`` join the trainer's own (the regression gate's deliberate breaks)."""
    from avsync.training_cli import cli_main

    stage_dir = out / stage.name
    args = stage_argv(stage, plan_dir, stage_dir, ckpts, data_root)
    ckpt = None
    if stage.official:  # fetched, checked and converted on first use (avsync.weights), cached after
        from avsync.weights import convert

        ckpt = str(convert(stage.official))
    log.info("stage %s: %s %s %s", stage.name, "fit" if stage.fit else "test", " ".join(stage.configs),
             " ".join(args[2 * len(stage.configs):]))
    start = time.time()
    cli = cli_main(args, run=False)
    cli.trainer.callbacks.extend(extra_callbacks or [])
    if stage.fit:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        ckpt = _last_checkpoint(cli.trainer, stage_dir)
    else:
        ckpt = ckpt or ckpts[stage.init_from]
    result = {"stage": stage.name, "checkpoint": ckpt, "fit_seconds": round(time.time() - start, 1),
              "log_dir": cli.trainer.log_dir if stage.fit else None,
              **({"official_weights": stage.official} if stage.official else {})}
    if stage.test:
        tested = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt, weights_only=True)
        result["test"] = {k: float(v) for k, v in tested[0].items()}
        if getattr(cli.model, "test_breakdown", None):  # per offset / per class (avsync.evaluation.class_breakdown)
            result["breakdown"] = cli.model.test_breakdown
    result["seconds"] = round(time.time() - start, 1)
    (stage_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


def _last_checkpoint(trainer, stage_dir: Path) -> str:
    """The weights at the end of the stage (callbacks save on validation, which may be earlier)."""
    path = str(stage_dir / "final.ckpt")
    trainer.save_checkpoint(path)
    return path


def _percent(results: dict[str, dict], stage: str | None, metric: str) -> float | None:
    got = results.get(stage, {}).get("test", {}).get(metric) if stage else None
    return None if got is None else 100.0 * got


def finished_results(folder: Path) -> dict[str, dict]:
    """``result.json`` of every finished stage under ``folder`` (a reproduction's output), by stage."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*/result.json"))}


def write_table(numbers: list[PaperNumber], results: dict[str, dict], out: Path, mode: str,
                paper: str, authors: dict[str, dict] | None = None) -> list[str]:
    """Markdown + CSV: paper value | this run | difference [| authors' weights]. Returns the failures
    (full and official modes). ``authors``: the official run's results (full mode), shown as a column
    (each number's ``authors_stage``) and not gated here (their own run gates them)."""
    label = MODES[mode]
    with_authors = mode == "full" and authors is not None
    rows, failures = [], []
    for n in numbers:
        ours = _percent(results, n.stage, n.metric)
        diff = None if ours is None else ours - n.value
        setting = f"{n.setting} ({n.dataset})" if n.dataset else n.setting
        rows.append({"table": n.table, "setting": setting, "metric": n.metric, "paper": n.value,
                     label: ours, "difference": diff, "stage": n.stage or "", "note": n.note,
                     "dataset": n.dataset, "split": n.split, "tolerance": n.tolerance,
                     "tolerance_kind": n.tolerance_kind})
        if with_authors:
            rows[-1][MODES["official"]] = _percent(authors, n.authors_stage, n.metric)
        if mode != "toy" and diff is not None and abs(diff) > n.tolerance:
            failures.append(f"{n.table} {setting}: {ours:.1f} vs paper {n.value:.1f} (tolerance {n.tolerance})")
    lines = [f"# {paper}: reproduction ({label})", ""]
    if mode == "toy":
        lines += ["**Toy scale.** These numbers come from narrow models trained for minutes on the embedded "
                  "synthetic audio-visual set on a CPU. They are *not* a reproduction of the paper's numbers, "
                  "which come from full-size models on the real datasets; they show the pipeline end to end "
                  "and whether the paper's qualitative findings appear at toy scale.", ""]
    if mode == "official":
        lines += ["**Authors' weights.** The authors' published checkpoints (`avsync weights list`), converted "
                  "and tested under this plan's full-scale protocol without any training.", ""]
    if with_authors:
        lines += ["**Authors' weights** column: the authors' published checkpoints tested under the same "
                  "protocol without training (`--weights official`; — where none is published or not run).", ""]
    lines += paper_table(rows, label, with_authors)
    lines += ["", "| stage | seconds | checkpoint | plots |", "|---|---|---|---|"]
    for name, res in results.items():
        plots = " · ".join(f"[{PLOT_KINDS[k]}]({p.name})" for k, p in stage_plot_paths(out, name).items()
                           if p.exists())
        lines.append(f"| {name} | {res.get('seconds', '—')} | {_relative_to(res.get('checkpoint', ''), out)} | {plots} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return failures


def paper_table(rows: list[dict], label: str, with_authors: bool) -> list[str]:
    """The paper-vs-run table in Markdown: one line per paper number (rows as in ``results.csv``)."""
    fmt = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
    extra = f" {MODES['official']} |" if with_authors else ""
    lines = [f"| table | setting | metric | paper | this run ({label}) | difference |{extra} stage |",
             "|---|---|---|---|---|---|" + ("---|" if with_authors else "") + "---|"]
    for r in rows:
        authors_cell = f" {fmt(r[MODES['official']])} |" if with_authors else ""
        where = " — ".join(t for t in (r["stage"], r["note"]) if t)
        lines.append(f"| {r['table']} | {r['setting']} | {r['metric']} | {fmt(r['paper'])} | {fmt(r[label])} "
                     f"| {fmt(r['difference'])} |{authors_cell} {where} |")
    return lines


# Committed results: reproductions/<paper>/results/<mode>.csv (the runner's results.csv of the run a
# README describes); the README's table between these markers is generated from it (results_block).
RESULTS_BLOCK = re.compile(r"(<!-- results:(\w+) -->\n)(.*?)(<!-- /results -->)", re.S)


def committed_results(paper_dir: Path, mode: str) -> Path:
    return Path(paper_dir) / "results" / f"{mode}.csv"


def results_block(csv_path: Path) -> str:
    """The paper-vs-run table of a committed ``results.csv``, as the runner writes it in results.md."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    label = next(m for m in MODES.values() if m in rows[0])
    with_authors = label == MODES["full"] and MODES["official"] in rows[0]
    number = lambda v: None if v in ("", None) else float(v)  # noqa: E731
    for r in rows:
        for key in ("paper", label, "difference", MODES["official"]):
            if key in r:
                r[key] = number(r[key])
    return "\n".join(paper_table(rows, label, with_authors)) + "\n"


def update_readme_results(paper_dir: Path, check: bool = False) -> list[str]:
    """Regenerate every ``<!-- results:<mode> -->`` block of ``<paper_dir>/README.md`` from
    ``results/<mode>.csv``. Returns the modes whose block was (``check``: would be) changed."""
    readme = Path(paper_dir) / "README.md"
    if not readme.exists():
        return []
    text, changed = readme.read_text(), []

    def fill(m: re.Match) -> str:
        block = results_block(committed_results(paper_dir, m.group(2)))
        if block != m.group(3):
            changed.append(m.group(2))
        return m.group(1) + block + m.group(4)

    new = RESULTS_BLOCK.sub(fill, text)
    if changed and not check:
        readme.write_text(new)
    return changed


def publish_results(out: Path, paper_dir: Path, mode: str) -> Path:
    """Commit-ready copy of a finished run: ``out/results.csv`` -> ``<paper_dir>/results/<mode>.csv``,
    then the README's generated tables refreshed from it."""
    target = committed_results(paper_dir, mode)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(out) / "results.csv", target)
    update_readme_results(paper_dir)
    return target


def _relative_to(path: str, out: Path) -> str:
    """``path`` as seen from the table's folder ``out``, so a committed table names no machine's paths."""
    if not path:
        return path
    try:
        return str(Path(path).resolve().relative_to(out.resolve()))
    except ValueError:
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="avsync reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("paper", help="folder name under reproductions/ (e.g. sparsesync)")
    parser.add_argument("--data-root", help="real dataset root: run the full-size plan instead of the toy one")
    parser.add_argument("--weights", choices=("trained", "official"), default="trained",
                        help="official: test the authors' published weights under the full-size protocol "
                             "(the plan's `official` stages; needs --data-root) instead of training")
    parser.add_argument("--out", help="output folder (default runs/reproduce/<paper>[_full])")
    parser.add_argument("--only", nargs="*", help="run only these stages (their init_from stages must exist)")
    parser.add_argument("--fresh", action="store_true", help="rerun stages that already have a result")
    parser.add_argument("--plans", default=str(REPRODUCTIONS), help="folder of reproduction plans")
    parser.add_argument("--publish", action="store_true",
                        help="copy the finished table to reproductions/<paper>/results/<mode>.csv and regenerate "
                             "the README's results tables from it (the committed results)")
    parser.add_argument("--authors-results", help="output folder of the --weights official run whose results "
                                                  "fill the full table's authors' weights column "
                                                  "(default: <paper>_official beside the full run's folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    if args.weights == "official" and not args.data_root:
        parser.error("--weights official tests on the real data: give --data-root")
    mode = "official" if args.weights == "official" else "full" if args.data_root else "toy"
    stages, numbers, plan_dir = load_plan(args.paper, mode, Path(args.plans))
    out = Path(args.out or f"runs/reproduce/{args.paper}{'' if mode == 'toy' else '_' + mode}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    authors = None
    if mode == "full":
        authors = finished_results(Path(args.authors_results) if args.authors_results
                                   else out.parent / f"{args.paper}_official")
    results: dict[str, dict] = {}
    ckpts: dict[str, str] = {}
    for stage in stages:
        done = out / stage.name / "result.json"
        if done.exists() and not args.fresh:
            results[stage.name] = json.loads(done.read_text())
        elif args.only and stage.name not in args.only:
            continue
        else:
            results[stage.name] = run_stage(stage, plan_dir, out, ckpts, args.data_root)
        ckpts[stage.name] = results[stage.name]["checkpoint"]
        write_stage_plots(out, stage.name, results[stage.name])
        write_table(numbers, results, out, mode, args.paper, authors)  # keep the table current while it runs
    from avsync.evaluation.curves import plot_learning_curves

    plot_learning_curves({n: r["log_dir"] for n, r in results.items() if r.get("log_dir")}, out / "curves.png")
    failures = write_table(numbers, results, out, mode, args.paper, authors)
    if mode == "official":  # a finished full run beside this one: its table gets the authors' column now
        full_dir = out.parent / f"{args.paper}_full"
        if finished_results(full_dir):
            _, full_numbers, _ = load_plan(args.paper, "full", Path(args.plans))
            write_table(full_numbers, finished_results(full_dir), full_dir, "full", args.paper, results)
    print((out / "results.md").read_text())
    if args.publish:
        print(f"published {publish_results(out, plan_dir, mode)}")
    if failures:
        print("outside tolerance:\n  " + "\n  ".join(failures))
        return 1
    return 0

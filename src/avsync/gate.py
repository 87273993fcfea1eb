"""``avsync gate``: the CI metric-regression gate on toy subsets.

Each model has a pinned baseline in ``reproductions/gate/baselines.yaml``: a seeded short run of a
small model on the embedded toy set (configs + arguments, like a reproduction stage), the test
metric it is scored by and the value that run reached when the baseline was pinned. The gate runs
every entry again and fails when a metric falls below ``baseline − margin``; the margin is stated
per entry, wide enough for the run-to-run spread that floating point leaves on another machine,
narrow enough that chance level is far below it.

Each entry runs in its own process (one thread each, ``--jobs`` at a time), so two cores hold two
runs and one model's crash cannot take the others down. ``--sabotage shuffle-audio`` breaks every
run on purpose — each clip is paired with another clip's audio in training and evaluation
(:class:`ShuffleAudio`) — the regression a broken loader or an off-by-one in the offset maths
would cause; the gate must then fail (``tests/gate/test_regression_gate.py``).

    avsync gate                        # all entries, table printed and written to runs/gate/
    avsync gate --models avst divas   # some of them
    avsync gate --sabotage shuffle-audio --models divas
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
import yaml

from avsync.reproduce import REPRODUCTIONS, Stage, run_stage

BASELINES = REPRODUCTIONS / "gate" / "baselines.yaml"
SABOTAGES = ("shuffle-audio",)
# a gate run keeps only the final.ckpt its runner saves: the configs' checkpoint callbacks would save
# every epoch (DiVAS's one-step epochs pickled two checkpoints a step, 30 % of its run time)
NO_CHECKPOINTS = ["--trainer.enable_checkpointing", "false", "--trainer.callbacks", "[]"]


@dataclass
class GateEntry:
    name: str
    configs: list[str]
    metric: str           # a test metric of the run, as in the test results (e.g. test/acc_tol)
    baseline: float       # the value the seeded run reached when pinned
    margin: float         # the gate fails below baseline - margin
    chance: float         # what a model that learned nothing scores (reported, and must sit below the bar)
    args: list[str] = field(default_factory=list)
    init_from: str | None = None  # pinned starting weights, relative to the baselines file
    description: str = ""
    ci: bool = True       # part of the CI gate (make test); False: too slow for CI, run by `avsync gate --all`

    @property
    def bar(self) -> float:
        return self.baseline - self.margin


def load_entries(path: Path = BASELINES) -> list[GateEntry]:
    entries = [GateEntry(**e) for e in yaml.safe_load(Path(path).read_text())["entries"]]
    for e in entries:
        if not e.chance < e.bar:
            raise ValueError(f"{path}: entry {e.name!r} has its bar {e.bar:g} at or below chance {e.chance:g}: "
                             "such a gate could not catch a model that learns nothing")
    return entries


def select_entries(entries: list[GateEntry], models: list[str] | None, everything: bool) -> list[GateEntry]:
    """The entries a run judges: those named (``--models``), else all (``--all``), else the CI ones."""
    if models:
        unknown = sorted(set(models) - {e.name for e in entries})
        if unknown:
            raise SystemExit(f"unknown gate entries {unknown}; known: {[e.name for e in entries]}")
        return [e for e in entries if e.name in models]
    return entries if everything else [e for e in entries if e.ci]


class ShuffleAudio(L.Callback):
    """Pairs every clip with another clip's audio, in training and evaluation (a deliberate break).

    Batches of several clips have their audio rolled by one along the batch; a batch of one takes
    the previous batch's audio (same length) so single-clip evaluation is broken too. Targets stay
    as they were, so the offset labels no longer describe the pairs.
    """

    KEYS = ("audio", "afeat", "aud_feats")  # decoded audio; audio features of a feature-bank / Synchformer cache batch

    def __init__(self) -> None:
        self.previous: dict[str, torch.Tensor] = {}

    def _shuffle(self, batch) -> None:
        if not isinstance(batch, dict):
            return
        for key in self.KEYS:
            audio = batch.get(key)
            if not torch.is_tensor(audio):
                continue
            if len(audio) > 1:
                batch[key] = audio.roll(1, dims=0)
            else:
                previous = self.previous.get(key)
                self.previous[key] = audio
                if previous is not None and previous.shape == audio.shape:
                    batch[key] = previous
                else:  # the first single clip: its own audio half a clip later (circularly)
                    batch[key] = audio.roll(audio.shape[-1] // 2, dims=-1)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._shuffle(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._shuffle(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._shuffle(batch)


# ---------------------------------------------------------------------------- one entry (child process)
def run_entry(entry: GateEntry, out: Path, sabotage: str | None, baselines: Path = BASELINES,
              seed: int | None = None) -> dict:
    """Fit + test one entry in this process; returns (and writes) its result. `seed` replaces the
    entry's pinned seed (to measure the seed-to-seed spread the margins must cover)."""
    args = NO_CHECKPOINTS + list(entry.args) + ([] if seed is None else ["--seed_everything", str(seed)])
    if entry.init_from:
        args += ["--model.init_args.init_from", str(Path(baselines).parent / entry.init_from)]
    stage = Stage(name=entry.name, configs=entry.configs, args=args, description=entry.description)
    callbacks = [ShuffleAudio()] if sabotage == "shuffle-audio" else []
    return run_stage(stage, Path(baselines).parent, out, {}, None, extra_callbacks=callbacks)


def _child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="avsync gate --child")
    parser.add_argument("name")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--baselines", type=Path, default=BASELINES)
    parser.add_argument("--sabotage", choices=SABOTAGES)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    entry = {e.name: e for e in load_entries(args.baselines)}[args.name]
    sys.argv = sys.argv[:1]  # the stage's LightningCLI parses its own argument list, not the gate's
    run_entry(entry, args.out, args.sabotage, args.baselines, args.seed)
    return 0


def _spawn(entry: GateEntry, out: Path, baselines: Path, sabotage: str | None, seed: int | None = None) -> dict:
    """Run one entry in a child process with one thread; its log goes to ``<out>/<name>.log``."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "avsync.gate", "--child", entry.name, "--out", str(out),
           "--baselines", str(baselines)] + (["--sabotage", sabotage] if sabotage else []) \
        + ([] if seed is None else ["--seed", str(seed)])
    shutil.rmtree(out / entry.name, ignore_errors=True)  # never read an earlier run's result
    start = time.time()
    with open(out / f"{entry.name}.log", "w") as log_file:
        code = subprocess.call(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    result_file = out / entry.name / "result.json"
    if code != 0 or not result_file.exists():
        return {"error": f"exit status {code}, see {out / (entry.name + '.log')}", "seconds": time.time() - start}
    return json.loads(result_file.read_text())


# ---------------------------------------------------------------------------- the gate
def judge(entries: list[GateEntry], results: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(markdown table lines, failures)."""
    lines = ["| model | metric | chance | baseline | margin | bar | this run | status | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    failures = []
    for e in entries:
        res = results.get(e.name, {})
        value = res.get("test", {}).get(e.metric)
        if value is None:
            status = "FAIL (" + res.get("error", f"no {e.metric} in the test results") + ")"
            failures.append(f"{e.name}: {status}")
        elif value < e.bar:
            status = "FAIL"
            failures.append(f"{e.name}: {e.metric} = {value:.3f} < bar {e.bar:.3f} (chance {e.chance:.3f})")
        else:
            status = "pass"
        shown = "—" if value is None else f"{value:.3f}"
        lines.append(f"| {e.name} | {e.metric} | {e.chance:.3f} | {e.baseline:.3f} | {e.margin:.3f} | {e.bar:.3f} "
                     f"| {shown} | {status} | {res.get('seconds', 0):.0f} |")
    return lines, failures


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(prog="avsync gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="entries to run (default: the CI entries)")
    parser.add_argument("--all", action="store_true", help="every entry, those too slow for CI (ci: false) too")
    parser.add_argument("--baselines", type=Path, default=BASELINES)
    parser.add_argument("--out", type=Path, default=Path("runs/gate"))
    parser.add_argument("--jobs", type=int, default=2, help="entries run at once (one thread each)")
    parser.add_argument("--sabotage", choices=SABOTAGES, help="break every run on purpose (the gate must fail)")
    parser.add_argument("--seed", type=int, help="another seed than the pinned one (to measure the spread)")
    args = parser.parse_args(argv)
    entries = select_entries(load_entries(args.baselines), args.models, args.all)
    out = args.out.resolve() / ((args.sabotage or "clean") + ("" if args.seed is None else f"_seed{args.seed}"))
    start = time.time()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {e.name: pool.submit(_spawn, e, out, args.baselines.resolve(), args.sabotage, args.seed)
                   for e in entries}
        results = {name: f.result() for name, f in futures.items()}
    lines, failures = judge(entries, results)
    title = f"# avsync regression gate{' (sabotage: ' + args.sabotage + ')' if args.sabotage else ''}" \
            + ("" if args.seed is None else f" (seed {args.seed})")
    report = [title, "", f"{len(entries)} entries, {time.time() - start:.0f} s with {args.jobs} jobs; "
              f"baselines from {args.baselines}", "", *lines, ""]
    report += ["**FAILED**: " + "; ".join(failures)] if failures else ["all entries at or above their bar"]
    (out / "gate.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

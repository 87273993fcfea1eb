"""Determinism and exact resume of a seeded toy run (SparseSync toy, dense toy set, LightningCLI).

Two uninterrupted runs must give identical metrics and weights; a run hard-killed (``os._exit``
in a subprocess) at a random step and resumed with ``--ckpt_path last`` must end with the
metrics and weights of the uninterrupted run.
"""
import json
import os
import random
import subprocess
import sys
import textwrap

import torch

from avsync.cli import cli_main

STEPS = 8           # 6 clips / batch 2 = 3 batches per epoch: the run crosses two epoch ends
VAL_EVERY = 4       # validation at steps 4 and 8


def _args(toy_root: str, run_dir) -> list[str]:
    checkpoint = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                  "init_args": {"dirpath": str(run_dir / "ckpt"), "save_last": True, "every_n_train_steps": 1}}
    return ["--config", "experiments/sparsesync_toy_dense.yaml", "--data.init_args.root", toy_root,
            "--data.init_args.num_train", "6", "--data.init_args.num_valid", "2", "--data.init_args.num_test", "2",
            "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
            "--model.init_args.log_figures", "false", "--model.init_args.warmup_steps", "3",
            "--trainer.default_root_dir", str(run_dir), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.callbacks", json.dumps([checkpoint]),
            "--trainer.max_steps", str(STEPS), "--trainer.val_check_interval", str(VAL_EVERY),
            "--trainer.limit_val_batches", "1"]


def _fit(args: list[str]) -> tuple[dict, dict]:
    cli = cli_main(["fit", *args])
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    weights = {k: v.detach().clone() for k, v in cli.model.state_dict().items()}
    return metrics, weights


def _assert_same(a: tuple[dict, dict], b: tuple[dict, dict], what: str) -> None:
    assert a[0] == b[0], f"{what}: metrics differ\n{a[0]}\n{b[0]}"
    assert a[1].keys() == b[1].keys()
    diff = [k for k in a[1] if not torch.equal(a[1][k], b[1][k])]
    assert not diff, f"{what}: {len(diff)} tensors differ, e.g. {diff[:3]}"


def test_seeded_run_repeats_and_killed_run_resumes_exactly(toy_root, tmp_path, repo_root_cwd):
    first = _fit(_args(toy_root, tmp_path / "a"))
    assert first[0] and "val/acc_tol" in first[0]
    _assert_same(first, _fit(_args(toy_root, tmp_path / "b")), "second seeded run")

    # a random step, named in every failure message; AVSYNC_KILL_STEP replays one
    kill_step = int(os.environ.get("AVSYNC_KILL_STEP") or random.SystemRandom().randint(1, STEPS - 1))
    run_dir = tmp_path / "killed"
    script = tmp_path / "killed_fit.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        import lightning as L
        from avsync.cli import cli_main

        class KillAtStep(L.Callback):
            # a hard kill (no clean-up, no checkpoint on exit) when step {kill_step} begins
            def on_train_batch_start(self, trainer, *args):
                if trainer.global_step == {kill_step}:
                    os._exit(137)

        cli_main(["fit", *sys.argv[1:]])
    """))
    args = _args(toy_root, run_dir)
    killer = json.loads(args[args.index("--trainer.callbacks") + 1])
    killer.append({"class_path": "__main__.KillAtStep"})
    args[args.index("--trainer.callbacks") + 1] = json.dumps(killer)
    # the killed part must compute with this process's thread count (float sums depend on it)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=170, env=env)
    assert proc.returncode == 137, f"the killed run should die at step {kill_step}:\n{proc.stderr[-3000:]}"
    saved = torch.load(run_dir / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == kill_step

    resumed = _fit([*_args(toy_root, run_dir), "--ckpt_path", "last"])
    _assert_same(first, resumed, f"run killed at step {kill_step} and resumed")

"""VocaLiST and SyncNet through the command line: a 2-step fit on the dense toy set, then test."""
import pytest
import torch

from avsync.cli import cli_main
from support.cli_overrides import TINY_SPLITS, cli_overrides

TINY = cli_overrides(data={**TINY_SPLITS, "num_workers": 0, "batch_size": 2},
                     model={"clip_frames": 36, "eval_contexts": [5, 6]})


@pytest.mark.parametrize("name", ["vocalist", "syncnet"])
def test_two_step_fit_then_test(name, toy_root, tmp_path, repo_root_cwd):
    run_dir = tmp_path / "run"
    common = ["--config", f"experiments/{name}_toy_dense.yaml", "--data.init_args.root", toy_root, *TINY,
              "--trainer.default_root_dir", str(run_dir), "--trainer.logger.init_args.save_dir", str(run_dir),
              "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1"]
    fit = cli_main(["fit", *common, "--trainer.max_steps", "2"])
    metrics = fit.trainer.callback_metrics
    losses = [v for k, v in metrics.items() if k.startswith("train/loss")]
    assert losses and all(torch.isfinite(v) for v in losses)
    for key in ("val/acc_tol", "val/acc_tol_5f", "val/acc_tol_6f"):
        assert 0.0 <= float(metrics[key]) <= 1.0, key
    ckpt_path = sorted(run_dir.rglob("last.ckpt"))[0]
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    assert state["global_step"] == 2
    assert state["state_dict"] and all(k.startswith("net.") for k in state["state_dict"])
    test = cli_main(["test", *common, "--ckpt_path", str(ckpt_path)])
    assert 0.0 <= float(test.trainer.callback_metrics["test/acc_tol_6f"]) <= 1.0

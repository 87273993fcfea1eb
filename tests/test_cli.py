"""The command line as users type it: LightningCLI subcommands over the suite's models and data."""
import subprocess
import sys

import pytest
import torch

from avsync.cli import main

CONFIG = "experiments/sparsesync_toy_dense.yaml"
TINY_DATA = ["--data.init_args.num_train", "8", "--data.init_args.num_valid", "4", "--data.init_args.num_test", "4",
             "--data.init_args.num_workers", "0", "--data.init_args.batch_size", "2"]


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("toy_cache"))


def test_help_lists_models_and_data_modules(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("avsync.lit.sparsesync.SparseSyncModule", "avsync.data_modules.toy.ToyAVDataModule",
                 "avsync.data_modules.lrs3.LRS3DataModule", "avsync.data_modules.vggsound.VGGSoundSparseDataModule"):
        assert name in out
    for sub in ("fit", "validate", "test", "predict"):
        assert sub in out


def test_lightning_entry_point_is_this_cli():
    out = subprocess.run([sys.executable.replace("python", "lightning"), "--help"], capture_output=True, text=True)
    if out.returncode != 0 and "No such file" in out.stderr:
        pytest.skip("the lightning script lives beside the interpreter only in an installed venv")
    assert "avsync" in out.stdout and "SparseSyncModule" in out.stdout


def test_two_step_fit_then_test_and_resume(toy_root, tmp_path, repo_root_cwd):
    run_dir = tmp_path / "run"
    common = ["--config", CONFIG, "--data.init_args.root", toy_root, *TINY_DATA,
              "--trainer.default_root_dir", str(run_dir), "--trainer.logger.init_args.save_dir", str(run_dir),
              "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1"]
    main(["fit", *common, "--trainer.max_steps", "2"])
    ckpts = sorted(run_dir.rglob("last.ckpt"))
    assert ckpts, "fit wrote no last.ckpt"
    state = torch.load(ckpts[0], map_location="cpu", weights_only=True)  # the suite's checkpoint rule
    assert state["global_step"] == 2
    assert any(k.startswith("net.transformer.") for k in state["state_dict"])
    # resume: two more steps from the last checkpoint continue the count instead of restarting
    main(["fit", *common, "--trainer.max_steps", "4", "--ckpt_path", str(ckpts[0])])
    resumed = torch.load(sorted(run_dir.rglob("last.ckpt"))[-1], map_location="cpu", weights_only=True)
    assert resumed["global_step"] == 4
    main(["test", *common, "--ckpt_path", str(ckpts[0])])

"""The command line as users type it: LightningCLI subcommands over the suite's models and data."""
import importlib
import subprocess
import sys

import pytest
import torch

from avsync.cli import main
from support.cli_overrides import cli_overrides

CONFIG = "experiments/sparsesync_toy_dense.yaml"
TINY_DATA = cli_overrides(data={"num_train": 8, "num_valid": 4, "num_test": 4, "num_workers": 0, "batch_size": 2})


def test_help_lists_models_and_data_modules(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("avsync.papers.sparsesync.module.SparseSyncModule", "avsync.data_modules.toy.ToyAVDataModule",
                 "avsync.data_modules.lrs3.LRS3DataModule", "avsync.data_modules.vggsound.VGGSoundSparseDataModule"):
        assert name in out
    for sub in ("fit", "validate", "test", "predict", "detect", "convert", "reproduce"):
        assert sub in out
    for hidden in ("_RateLRS3DataModule", "_RateToyDataModule", "base.AVSyncDataModule", "PairScoringModule"):
        assert hidden not in out


def test_help_table_names_exactly_the_public_concrete_classes():
    """The help reads a static table (no imports); importing everything finds the same classes."""
    import lightning as L

    from avsync.public_classes import BASES, DATA_MODULES, models
    from avsync.training_cli import _import_all, _subclasses, import_models
    import avsync.data_modules
    import avsync.papers

    _import_all(avsync.data_modules)
    for paper in ("avst", "divas", "sparsesync", "synchformer", "syncnet", "vocalist"):  # every module of every paper
        _import_all(importlib.import_module(f"avsync.papers.{paper}"))
    import_models()
    for base, table in ((L.LightningModule, models()), (L.LightningDataModule, DATA_MODULES)):
        found = {path for path in _subclasses(base) if not path.rsplit(".", 1)[1].startswith("_")} - BASES
        assert found == set(table), f"public_classes.py is out of date: {found ^ set(table)}"


def test_help_imports_neither_torch_nor_lightning():
    """`avsync --help` answers without the seconds of importing torch, Lightning and every model."""
    code = ("import sys\nfrom avsync.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'lightning', 'avsync.papers.sparsesync.module') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_training_help_has_no_lightning_args_warning():
    out = subprocess.run([sys.executable, "-m", "avsync.cli", "fit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--trainer" in out.stdout
    assert "args parameter" not in out.stderr


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

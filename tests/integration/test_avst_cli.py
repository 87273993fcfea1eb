"""AVST from the command line: a 2-step fit of the toy config, then test, with the dec attention maps."""
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from avsync.cli import cli_main, main
from support.cli_overrides import TWO_STEP_FIT, cli_overrides

CONFIG = "experiments/avst_toy_dense.yaml"
TINY = cli_overrides(data={"num_train": 8, "num_valid": 1, "num_test": 1, "clip_duration_sec": 3.0, "batch_size": 4},
                     model={"eval_windows": 2, "batch_windows": 2},
                     trainer={**TWO_STEP_FIT, "log_every_n_steps": 1})


@pytest.mark.parametrize("arch,stage", [("avst_dec_toy", "1"), ("avst_enc_mp_toy", "2")])
def test_two_step_fit_then_test(toy_root, tmp_path, repo_root_cwd, arch, stage):
    run = tmp_path / "run"
    common = ["--config", CONFIG, "--data.init_args.root", toy_root, *TINY, "--model.init_args.arch", arch,
              "--data.init_args.curriculum_stage", stage,
              "--trainer.default_root_dir", str(run), "--trainer.logger.init_args.save_dir", str(run)]
    main(["fit", *common])
    ckpts = sorted(run.rglob("last.ckpt"))
    assert ckpts, "fit wrote no last.ckpt"
    state = torch.load(ckpts[0], map_location="cpu", weights_only=True)  # the suite's checkpoint rule
    assert state["global_step"] == 2 and any(k.startswith("net.sync.") for k in state["state_dict"])
    events = EventAccumulator(str(next(run.rglob("events.out.tfevents.*")).parent)).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss_step", "val/acc_tol", "val/acc_tol_in_sync", "val/acc_tol_random_offset"} <= scalars
    if arch == "avst_dec_toy":
        assert "val/attention_dec" in events.Tags()["images"]
    main(["test", *common, "--ckpt_path", str(ckpts[0])])


def test_sparse_config_feeds_5_fps_and_tolerates_5_frames(repo_root_cwd, tmp_path):
    cli = cli_main(["--config", "experiments/avst_toy_sparse.yaml", "--data.init_args.root", str(tmp_path)],
                   run=False)
    model = cli.model
    assert model.frame_step == 5 and model.net.cfg.variant == "dec"
    tolerance = model.evaluators["val"].tolerant().tolerance
    assert tolerance.k == 5 and tolerance.fps == 25.0
    assert model.input_spec.frame_size == 96                  # the sparse toy frames, 6x6 grid
    assert model.input_spec.num_frames == 150                 # the longest training window (30 at 5 fps)
    assert max(model.input_spec.train_durations) == pytest.approx(150 / 25)

"""Every stage of the SparseSync plans composes into a valid LightningCLI run (no data needed to build it)."""
import math

import pytest
import yaml

from avsync.cli import cli_main
from avsync.reproduce import REPRODUCTIONS

PLAN_DIR = REPRODUCTIONS / "sparsesync"
PLAN = yaml.safe_load((PLAN_DIR / "plan.yaml").read_text())
NUMBERS = yaml.safe_load((PLAN_DIR / "paper_numbers.yaml").read_text())["numbers"]


def _args(stage, data_root="/nonexistent"):
    args = [a for cfg in stage["configs"] for a in ("--config", str(PLAN_DIR / cfg))]
    return args + [a.format(data_root=data_root) for a in stage.get("args", [])]


@pytest.mark.parametrize("mode", ["toy", "full"])
def test_every_paper_number_names_a_stage_of_the_plan(mode):
    names = {s["name"] for s in PLAN[mode]}
    for number in NUMBERS:
        assert number[f"{mode}_stage"] in names, number
    for stage in PLAN[mode]:
        assert stage.get("init_from") in (None, *names)


@pytest.mark.parametrize("stage", PLAN["full"], ids=lambda s: s["name"])
def test_full_size_stage_builds_the_papers_model(stage, repo_root_cwd):
    # fp16 autocast exists only on GPUs; the composition is what is tested here
    cli = cli_main(_args(stage) + ["--trainer.precision", "32", "--trainer.accelerator", "cpu"], run=False)
    cfg = cli.model.net.cfg
    params = sum(p.numel() for p in cli.model.net.parameters())
    assert cfg.num_classes in (3, 21)
    # the official depth-3 count; a 3-class head has fewer rows, longer inputs longer time tables
    # (172 visual and 256 audio channels per time position)
    extra_pe = (cfg.visual_block[0] - 16) * 172 + (cfg.audio_block[1] - 20) * 256
    assert params == 54_348_652 - (21 - cfg.num_classes) * 512 + extra_pe
    seconds = float(stage["name"].split("_len")[1]) if "_len" in stage["name"] else 5.0
    assert cli.model.input_spec.duration_sec == seconds and cli.model.input_spec.frame_size == 224
    # the positional tables fit exactly the feature map of that input length
    # S3D halves time three times (ceil, ceil, floor); the ResNet divides spectrogram frames by 32 (ceil)
    assert cfg.visual_block[0] == math.ceil(math.ceil(25 * seconds / 2) / 2) // 2
    assert cfg.audio_block[1] == math.ceil((1 + 125 * seconds) / 32)
    assert cli.datamodule.root.startswith("/nonexistent")


@pytest.mark.slow
def test_full_size_stage_runs_as_configured_on_the_real_lrs3_clip(real_fixtures, repo_root_cwd, tmp_path):
    """With a data root the full-size configs run unchanged: the paper's model (54.3M parameters,
    224 px, 5 s) takes one training step on the real LRS3 fixture clip and is tested on it at its
    official fixed offset. Only what a CPU-only machine forces is overridden (fp32, no workers)."""
    key = "pretrain/C8zY0oAdQrs/00018"
    split = tmp_path / "split.txt"
    split.write_text(key + "\n")
    stage = next(s for s in PLAN["full"] if s["name"] == "lrs3_full_21cls")
    splits = "{" + ", ".join(f"{s}: {split}" for s in ("train", "valid", "test")) + "}"
    offsets = real_fixtures / "metadata" / "lrs3_test_fixed_offsets_size21_crop5.csv"
    cli = cli_main(["fit", *_args(stage, data_root=str(real_fixtures)),
                    "--data.init_args.split_files", splits,
                    "--data.init_args.fixed_offsets_csv", f"{{test: {offsets}}}",
                    "--data.init_args.batch_size", "1", "--data.init_args.num_workers", "0",
                    "--data.init_args.pin_memory", "false", "--data.init_args.report_dir", str(tmp_path),
                    "--trainer.precision", "32", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
                    "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1",
                    "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)])
    assert cli.trainer.global_step == 1
    assert sum(p.numel() for p in cli.model.net.parameters()) == 54_348_652
    tested = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]
    assert 0.0 <= tested["test/acc_tol"] <= 1.0 and math.isfinite(tested["test/loss"])
    assert [r.key for r in cli.datamodule.datasets["test"].records] == [key]


# ---------------------------------------------------------------------------- VocaLiST (Tables 1 and 2)
VOC_DIR = REPRODUCTIONS / "vocalist"
VOC_PLAN = yaml.safe_load((VOC_DIR / "plan.yaml").read_text())
VOC_NUMBERS = yaml.safe_load((VOC_DIR / "paper_numbers.yaml").read_text())["numbers"]
VOC_PARAMS = {"VocaLiSTModule": 80_106_561, "SyncNetModule": 13_631_616}  # official counts (SPEC §3)


def _voc_args(stage, data_root="/nonexistent"):
    args = [a for cfg in stage["configs"] for a in ("--config", str(VOC_DIR / cfg))]
    return args + [a.format(data_root=data_root) for a in stage.get("args", [])]


@pytest.mark.parametrize("mode", ["toy", "full"])
def test_every_vocalist_number_names_a_stage_of_the_plan(mode):
    names = {s["name"] for s in VOC_PLAN[mode]}
    for number in VOC_NUMBERS:
        assert number[f"{mode}_stage"] in (None, *names), number
        assert number["metric"] == f"test/acc_tol_{number['setting'].split(', ')[-1].split()[0]}f", number
    for stage in VOC_PLAN[mode]:
        assert stage.get("init_from") in (None, *names)
        assert stage.get("fit", True) or stage.get("init_from"), stage["name"]


def _protocol(cli):
    """(tolerance in frames, contexts) the stage's test reads, and the toy set / dataset it reads them on."""
    return cli.model.tolerance_frames, cli.model.eval_contexts


@pytest.mark.parametrize("stage", VOC_PLAN["toy"], ids=lambda s: s["name"])
def test_vocalist_toy_stage_composes(stage, repo_root_cwd):
    cli = cli_main(_voc_args(stage) + ["--trainer.logger", "false"], run=False)
    tolerance, contexts = _protocol(cli)
    # the set a stage reads: "<trained on>_<model>[_on_<tested on>...]" names it
    read = stage["name"].split("_on_")[1] if "_on_" in stage["name"] else stage["name"]
    singing = read.startswith("singing")
    assert cli.datamodule.variant == ("singing" if singing else "dense")
    if tolerance == 1:  # Table 1 protocol (LRS2): 5..15 frames
        assert contexts == (5, 7, 9, 11, 13, 15) and not singing
    else:  # Table 2 protocol (Acappella): 5..25 frames at +-5
        assert tolerance == 5 and contexts == (5, 10, 15, 20, 25)
    assert cli.model.clip_frames >= max(contexts) + 2 * cli.model.max_shift
    assert type(cli.model).__name__ == ("VocaLiSTModule" if "vocalist" in stage["name"] else "SyncNetModule")
    assert cli.trainer.max_steps <= 200 and cli.trainer.limit_val_batches == 0


@pytest.mark.parametrize("stage", VOC_PLAN["full"], ids=lambda s: s["name"])
def test_vocalist_full_stage_builds_the_papers_model(stage, repo_root_cwd):
    cli = cli_main(_voc_args(stage) + ["--trainer.accelerator", "cpu", "--trainer.logger", "false"], run=False)
    model = cli.model
    assert sum(p.numel() for p in model.net.parameters()) == VOC_PARAMS[type(model).__name__]
    tolerance, contexts = _protocol(cli)
    on_acappella = "acappella" in stage["name"]
    assert type(cli.datamodule).__name__ == ("AcappellaDataModule" if on_acappella else "LRS2DataModule")
    assert cli.datamodule.root.startswith("/nonexistent")
    if "_var" in stage["name"]:  # a dedicated model per context: window = context
        n = int(stage["name"].rsplit("_var", 1)[1])
        assert model.window_frames == n and contexts == (n,) and tolerance == 5
    else:
        assert model.window_frames == 5
        assert (tolerance, contexts) == ((5, (5, 10, 15, 20, 25)) if on_acappella else (1, (5, 7, 9, 11, 13, 15)))

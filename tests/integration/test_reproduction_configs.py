"""Every stage of the SparseSync plans composes into a valid LightningCLI run (no data needed to build it)."""
import math

import pytest
import torch
import yaml

from avsync.cli import cli_main
from avsync.reproduce import REPRODUCTIONS, Stage, load_plan, stage_cli_args


def _plan(paper):
    """The paper's toy and full stages (matrices expanded) as dicts."""
    return {mode: [vars(s) for s in load_plan(paper, mode)[0]] for mode in ("toy", "full")}


def _cli_args(plan_dir, stage, data_root):
    return stage_cli_args(Stage(**stage), plan_dir, data_root)


PLAN_DIR = REPRODUCTIONS / "sparsesync"
PLAN = _plan("sparsesync")


def _args(stage, data_root="/nonexistent"):
    return _cli_args(PLAN_DIR, stage, data_root)


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
    # the authors' optimiser and clip sampling (configs/sparse_sync.yaml, scripts/train_utils.py)
    assert (cli.model.lr, cli.model.lr_per_device, cli.model.eps, cli.model.betas) == (5e-6, True, 1e-7, (0.9, 0.999))
    assert cli.datamodule.max_source_sec == 10.0 and cli.datamodule.batch_size == 10
    assert cli.config.trainer.sync_batchnorm  # the authors convert to SyncBatchNorm under DDP
    # VGGSound-Sparse adds the authors' fine-tuning augmentation (scripts/sbatch_finetune_sync.sh); LRS3 does not
    augment, masks = cli.datamodule.augment, cli.model.spectrogram.augment
    if stage["name"].startswith("vggss"):
        assert (augment.crop_upscale_p, augment.smaller_crop, augment.color_jitter_p, augment.greyscale_p) == \
            (0.5, 192, 0.2, 0.2)
        assert {augment.reverb_p, augment.volume_p, augment.pitch_shift_p, augment.lowpass_p, augment.noise_p} == {0.2}
        assert (augment.pitch_shift_cents, augment.lowpass_hz, augment.noise_amplitude, augment.volume_gain) == \
            (1000.0, 100.0, 0.01, 2.0)
        assert (masks.p, masks.freq_mask_param, masks.time_mask_param) == (0.2, 64, 200)
    else:
        assert augment is None and masks is None


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


@pytest.mark.slow
def test_full_size_vggss_stage_trains_with_its_augmentation_on_the_real_vggsound_clip(real_fixtures, repo_root_cwd,
                                                                                    tmp_path):
    """The VGGSound-Sparse fine-tuning config runs unchanged with the authors' augmentation, here forced on
    (every probability 1) so a single step goes through all of it: the 192 px crop upscaled, colour
    jitter, greyscale, reverb, volume, pitch shift, low-pass, noise and SpecAugment."""
    source = real_fixtures / "vggsound" / "h264_video_25fps_256side_16000hz_aac" / "3qesirWAGt4_20000_30000.mp4"
    clips = tmp_path / "clips"
    clips.mkdir()
    rows = [("aaaaaaaaaaa", 0, "dog barking", "train"), ("eeeeeeeeeee", 0, "dog barking", "train"),
            ("3qesirWAGt4", 20, "dog barking", "test")]
    for ytid, start, _, _ in rows:  # one real clip under the names of the csv
        (clips / f"{ytid}_{start * 1000}_{start * 1000 + 10000}.mp4").symlink_to(source)
    meta = tmp_path / "vggsound.csv"
    meta.write_text("".join(f"{y},{s},{label},{split}\n" for y, s, label, split in rows))
    stage = next(s for s in PLAN["full"] if s["name"] == "vggss_21cls")
    forced = ("{crop_upscale_p: 1, color_jitter_p: 1, greyscale_p: 1, reverb_p: 1, volume_p: 1, "
              "pitch_shift_p: 1, lowpass_p: 1, noise_p: 1}")
    cli = cli_main(["fit", *_args(stage),
                    "--data.init_args.root", str(clips), "--data.init_args.meta_csv", str(meta),
                    "--data.init_args.probe_durations", "false", "--data.init_args.augment", forced,
                    "--model.init_args.spec_augment", "{p: 1.0, freq_mask_param: 64, time_mask_param: 200}",
                    "--data.init_args.batch_size", "1", "--data.init_args.num_workers", "0",
                    "--data.init_args.pin_memory", "false", "--data.init_args.report_dir", str(tmp_path),
                    "--trainer.precision", "32", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
                    "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1",
                    "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)])
    assert cli.trainer.global_step == 1
    train = cli.datamodule.datasets["train"]
    assert train.augment.reverb_p == 1 and train.augment.smaller_crop == 192
    assert cli.datamodule.datasets["valid"].augment is None  # evaluation is never augmented
    torch.manual_seed(0)
    item = train[0]
    assert tuple(item["video"].shape) == (125, 224, 224, 3) and tuple(item["audio"].shape) == (80000,)
    video = item["video"].numpy()
    assert (video[..., 0] == video[..., 1]).all()  # greyscale (p 1)


# -- DiVAS -------------------------------------------------------------------------------------
DIVAS_DIR = REPRODUCTIONS / "divas"
DIVAS_PLAN = _plan("divas")
DIVAS_BASELINES = ("lrs2_syncnet", "lrs2_vocalist")  # Table 1's other models (tests/integration/test_divas_baselines.py)


def _divas_args(stage, data_root="/nonexistent"):
    return _cli_args(DIVAS_DIR, stage, data_root)


def test_divas_toy_plan_is_the_full_plan_less_diagnostics():
    """(Stages, numbers and configs of every plan: tests/unit/test_reproduction_plans.py.)"""
    # the full plan may hold diagnostics the toy plan drops for its time budget, never the reverse
    full_names = [s["name"] for s in DIVAS_PLAN["full"]]
    assert [n for n in full_names if n in {s["name"] for s in DIVAS_PLAN["toy"]}] == \
        [s["name"] for s in DIVAS_PLAN["toy"]]


@pytest.mark.parametrize("stage", [s for s in DIVAS_PLAN["toy"] if s["name"] not in DIVAS_BASELINES],
                         ids=lambda s: s["name"])
def test_divas_toy_stage_composes(stage, repo_root_cwd):
    cli = cli_main(_divas_args(stage), run=False)
    model, data, name = cli.model, cli.datamodule, stage["name"]
    assert model.hparams.arch == "divas_toy" and model.net.cfg.time_aware == ("base" not in name)
    assert model.lr == 3e-4 and model.audio_gain == 10.0  # the toy recipe
    assert (model.asd is not None) == name.endswith("_asd")  # Table 6: active speaker evaluation
    if name.startswith("lrs2_face"):
        assert type(data).__name__ == "ToyAVDataModule" and data.source_fps == 25.0
        return
    assert data.rates["train"] == (24.0, 25.0, 30.0) or name.endswith("grid21")
    if name.endswith("_60fps"):
        assert data.rates["test"] == (60.0,) and data.children_by_rate[60.0].num_clips["train"] == 0
    elif name.endswith("grid21"):
        assert model.grid is not None and len(model.grid) == 21 and model.max_shift == 50
        assert data.rates["test"] == (25.0,) and data.children_by_rate[25.0].clip_duration_sec >= 7.05
    else:
        assert data.rates["test"] == (24.0, 25.0, 30.0)
    frame = "frame" in name
    # the toy "face crop" is the dense set's whole frame (a talking head); "frame" the larger scene
    assert not frame or (model.input_spec.crop == "full" and model.net.cfg.frame_size == 48)
    assert data.children_by_rate[25.0].variant == ("dense_scene" if frame else "dense")


@pytest.mark.parametrize("stage", [s for s in DIVAS_PLAN["full"] if s["name"] not in DIVAS_BASELINES],
                         ids=lambda s: s["name"])
def test_divas_full_stage_builds_the_papers_model(stage, repo_root_cwd):
    cli = cli_main(_divas_args(stage), run=False)
    model, name = cli.model, stage["name"]
    params = sum(p.numel() for p in model.net.parameters())
    frame = "frame" in name
    assert params == (17_049_192 if frame else 4_838_568)  # paper: 17M / 4.8M
    assert model.lr == 1e-5 and model.audio_gain == 1.0 and model.margin == 20.0
    assert model.net.cfg.time_aware == ("base" not in name)
    assert model.input_spec.frame_size == (240 if frame else 96)
    assert cli.datamodule.root.startswith("/nonexistent")
    data = cli.datamodule
    assert (model.asd is not None) == name.endswith("_asd")
    if name.startswith("lrs2_face"):
        return
    # LRS3-multfps: every clip at its own rate, 24/25/30 fps trained together (one bucket of 25 fps
    # full frames: no original-rate full-frame folder exists), 59.94/60 fps held out for testing
    assert type(data).__name__ == "MultiRateLRS3DataModule"
    assert data.rates["train"] == ((25.0,) if frame else (24.0, 25.0, 30.0))
    if name.endswith("_60fps"):
        assert data.rates["test"] == (60.0,) and data.children_by_rate[60.0].served_splits == {"test"}
    elif name.endswith("grid21"):
        assert model.grid is not None and model.max_shift == 50 and model.input_spec.duration_sec == 5.0
        assert data.rates["test"] == (25.0,)
    else:
        assert data.rates["test"] == data.rates["train"]


def test_table_lists_dataset_split_and_why_a_cell_is_missing(tmp_path):
    from avsync.reproduce import PaperNumber, write_table

    numbers = [PaperNumber(table="2", setting="60 fps", metric="test/acc@±40ms", value=96.8, stage="s60",
                           dataset="LRS3-multfps", split="test (60 fps)"),
               PaperNumber(table="1", setting="SyncNet", metric="test/acc@±40ms", value=99.4, stage=None,
                           note="not reproduced", dataset="LRS2", split="test")]
    write_table(numbers, {"s60": {"test": {"test/acc@±40ms": 0.5}, "seconds": 1.0}}, tmp_path, "toy", "divas")
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0] == "table,setting,metric,paper,toy,difference,stage,note,dataset,split,tolerance,tolerance_kind"
    assert rows[1].startswith("2,60 fps (LRS3-multfps),test/acc@±40ms,96.8,50.0,-46.8,s60,,LRS3-multfps,test (60 fps)")
    assert "| 1 | SyncNet (LRS2) | test/acc@±40ms | 99.4 | — | — | not reproduced |" in (tmp_path / "results.md").read_text()


# -- Synchformer --------------------------------------------------------------------------------
SYNCH_DIR = REPRODUCTIONS / "synchformer"
SYNCH_PLAN = _plan("synchformer")
SYNCH_NUMBERS = yaml.safe_load((SYNCH_DIR / "paper_numbers.yaml").read_text())["numbers"]
SYNCH_PARAMS = 122_440_704 + 92_400_384 + 2 * 590_592 + 21_437_973   # official: extractors + sync module


def _synch_args(stage, data_root="/nonexistent"):
    return _cli_args(SYNCH_DIR, stage, data_root)


def test_synchformer_numbers_state_value_metric_tolerance_dataset_and_split():
    """(Stages and the stages numbers name, every plan: tests/unit/test_reproduction_plans.py.)"""
    for number in SYNCH_NUMBERS:
        assert {"value", "metric", "tolerance", "dataset", "split"} <= set(number), number


@pytest.mark.parametrize("stage", SYNCH_PLAN["toy"], ids=lambda s: s["name"])
def test_synchformer_toy_stage_composes(stage, repo_root_cwd):
    cli = cli_main(_synch_args(stage), run=False)
    cfg, spec = cli.model.net.cfg, cli.model.input_spec
    assert cfg.motionformer.dim == 64 and spec.frame_size == 32          # the narrow toy extractors
    if stage["name"] == "stage1":
        assert cli.model.center_segments and spec.offset_classes is None
        assert math.isclose(spec.duration_sec, 8 * 0.64)
        return
    step = cli.model.segment_step
    assert spec.offset_classes == cfg.num_classes == (3 if "3cls" in stage["name"] else 21)
    assert math.isclose(spec.duration_sec, ((cfg.num_segments - 1) * step + 1) * 0.64)
    expected = (8, 1.0) if "no_overlap" in stage["name"] else (15, 0.5) if "15seg" in stage["name"] else (14, 0.5)
    assert (cfg.num_segments, step) == expected
    assert cli.config.data.init_args.get("build_if_missing", True) is not False


@pytest.mark.parametrize("stage", [s for s in SYNCH_PLAN["full"] if s["name"] == "vgg_stage2"],
                         ids=lambda s: s["name"])
def test_synchformer_full_stage2_builds_the_papers_model(stage, repo_root_cwd):
    cli = cli_main(_synch_args(stage) + ["--trainer.precision", "32", "--trainer.accelerator", "cpu"], run=False)
    assert sum(p.numel() for p in cli.model.net.parameters()) == SYNCH_PARAMS
    assert cli.model.freeze_extractors and cli.model.hparams.lr == 2e-6
    assert cli.model.lr_per_device and cli.model.eps == 1e-7    # base_learning_rate x num_gpus, eps in fp16
    assert math.isclose(cli.model.input_spec.duration_sec, 4.8) and cli.model.input_spec.frame_size == 224
    assert cli.datamodule.root.startswith("/nonexistent")
    assert cli.datamodule.max_source_sec == 10.0 and cli.datamodule.batch_size == 16
    assert cli.datamodule.augment is None  # the authors' stage II has only crop, flip and audio jitter


@pytest.mark.slow
@pytest.mark.parametrize("stage", SYNCH_PLAN["full"], ids=lambda s: s["name"])
def test_synchformer_full_stage_composes(stage, repo_root_cwd):
    cli = cli_main(_synch_args(stage) + ["--trainer.precision", "32", "--trainer.accelerator", "cpu"], run=False)
    params = sum(p.numel() for p in cli.model.net.parameters())
    cfg = cli.model.net.cfg
    # a longer or shorter input changes only the positional table (2 + S * (8 + 6) rows of 768)
    assert params == SYNCH_PARAMS + (cfg.num_segments - 14) * 14 * 768
    if "synchronizability" in stage["name"] or "stage2" in stage["name"]:
        assert cli.model.lr_per_device and cli.model.eps == 1e-7      # base_learning_rate x num_gpus, fp16 eps
    if "stage1" in stage["name"]:
        assert not cli.model.center_segments                          # the paper's loss at full scale
        # the authors' stage I: 2 clips per GPU; VGGSound and AudioSet with augmentation per 0.64 s
        # segment, LRS3 at lr 5e-5 without (their README)
        augment = cli.datamodule.augment
        assert cli.datamodule.batch_size == 2 and cli.datamodule.max_source_sec == 10.0
        assert cli.datamodule.in_sync_jitter_sec == 0.05
        if stage["name"].startswith("lrs3"):
            assert augment is None and cli.model.hparams.lr == 5e-5
        else:
            assert cli.model.hparams.lr == 1e-4 and augment.segment_sec == 0.64
            assert (augment.crop_upscale_p, augment.color_jitter_p, augment.greyscale_p, augment.reverb_p,
                    augment.volume_p, augment.pitch_shift_p, augment.lowpass_p, augment.noise_p) == (0.2,) * 8


# ---------------------------------------------------------------------------- VocaLiST (Tables 1 and 2)
VOC_DIR = REPRODUCTIONS / "vocalist"
VOC_PLAN = _plan("vocalist")
VOC_NUMBERS = yaml.safe_load((VOC_DIR / "paper_numbers.yaml").read_text())["numbers"]
VOC_PARAMS = {"VocaLiSTModule": 80_106_561, "SyncNetModule": 13_631_616}  # official counts (docs/models.md)


def _voc_args(stage, data_root="/nonexistent"):
    return _cli_args(VOC_DIR, stage, data_root)


def test_every_vocalist_metric_names_its_context():
    """(Stages and the stages numbers name, every plan: tests/unit/test_reproduction_plans.py.)"""
    for number in VOC_NUMBERS:
        assert number["metric"] == f"test/acc_tol_{number['setting'].split(', ')[-1].split()[0]}f", number


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
    # the official training scripts: 128 pairs a batch for VocaLiST (BATCH_SIZE in train_vocalist_*.py)
    assert cli.datamodule.batch_size == (128 if type(model).__name__ == "VocaLiSTModule" else 16)
    if "_var" in stage["name"]:  # a dedicated model per context: window = context
        n = int(stage["name"].rsplit("_var", 1)[1])
        assert model.window_frames == n and contexts == (n,) and tolerance == 5
    else:
        assert model.window_frames == 5
        assert (tolerance, contexts) == ((5, (5, 10, 15, 20, 25)) if on_acappella else (1, (5, 7, 9, 11, 13, 15)))

"""AVST's reproduction folder: plan and paper numbers agree, every stage's configs compose into the
model and data it names, the curriculum's stage 2 starts from stage 1, and the findings check reads
a run correctly."""
import importlib.util
import json

import pytest
import torch
import yaml

from avsync.cli import cli_main
from avsync.papers.avst.module import AVSTModule
from avsync.reproduce import REPRODUCTIONS, load_plan, read_config, stage_cli_args, write_table

AVST = REPRODUCTIONS / "avst"


def _findings():
    spec = importlib.util.spec_from_file_location("avst_findings", AVST / "findings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paper_numbers_are_tables_2_to_5_in_sync_accuracy():
    """(Stages, configs and the stages numbers name: tests/unit/test_reproduction_plans.py.)"""
    _, numbers, _ = load_plan("avst", "full")
    for n in numbers:
        # the in-sync accuracy of one length of the model's one evaluation pass (headline = shortest)
        assert n.dataset and n.split == "test" and n.metric.startswith("test/acc_tol_in_sync")
        assert n.metric == "test/acc_tol_in_sync" or n.metric.removeprefix("test/acc_tol_in_sync_len").isdigit()
    cells = {(n.table, n.setting, n.dataset) for n in numbers}
    assert len(cells) == len(numbers) == 70  # Tables 2 (24), 3 (18), 4 (18), 5 (10)


def test_paper_numbers_are_the_papers():
    rows = yaml.safe_load((AVST / "paper_numbers.yaml").read_text())["numbers"]
    value = {(r["table"], r["setting"], r["dataset"]): r["value"] for r in rows}
    assert value[("2", "AVST enc-mp, 15 frames", "LRS3 full frame")] == 98.6
    assert value[("2", "AVST enc-mp, 5 frames", "LRS2")] == 91.9
    assert value[("3", "enc-mp, 1 layer, 11 frames", "LRS2")] == 98.4
    assert value[("4", "enc-mp, 1 frame of video masked, 5 frames", "LRS2")] == 76.5
    assert value[("5", "AVST dec, 30 frames", "VGG-Sound Sync")] == 52.7


@pytest.mark.parametrize("stage_name", ["dense_enc_eval", "dense_dec_s1", "dense_fixed5_mask_video_s1",
                                        "dense_fixed5_mask_video_eval", "sparse_dec_eval", "dense_fixed5_depth3"])
def test_toy_stage_configs_compose(stage_name, repo_root_cwd, tmp_path):
    stages, _, root = load_plan("avst", "toy")
    stage = next(s for s in stages if s.name == stage_name)
    cli = cli_main([*stage_cli_args(stage, root, None), "--trainer.default_root_dir", str(tmp_path)], run=False)
    model, data = cli.model, cli.datamodule
    assert isinstance(model, AVSTModule)
    variant = "sparse" if stage_name.startswith("sparse") else "dense"
    assert data.variant == variant and data.eval_offsets == "both"
    expected = "dec" if "_dec" in stage_name else ("enc-mp" if "_enc_mp" in stage_name or "fixed5" in stage_name else "enc")
    assert model.net.cfg.variant == expected
    if stage_name == "dense_enc_eval":
        assert model.train_frames == (5,) and data.batch_size == 4
        # a fixed-length model reads N frames as N-4 averaged 5-frame windows, 5 predictions per clip
        assert (model.eval_window_frames, model.eval_context, model.eval_windows) == (5, 1, 5)
        assert ("len15", 5, 15, 11) in model.eval_settings()
    if stage_name.startswith("dense_fixed5_mask_video"):  # Table 4: masked in training and in testing
        assert (model.mask_frames, model.mask_modality, model.eval_window_frames) == (1, "video", 5)
    if stage_name.startswith("dense_fixed5"):  # Tables 3-4 (§4.4): trained at a fixed 5 frames
        assert model.train_frames == (5,)
    if stage_name == "dense_fixed5_mask_video_eval":  # the N-frame column: N-4 averaged window scores
        assert model.eval_context_windows == (7, 9, 11, 13, 15) and ("len15", 5, 15, 11) in model.eval_settings()
    if stage_name == "sparse_dec_eval":  # 10-30 fed frames: 50-150 decoded
        assert (model.frame_step, model.hparams.tolerance_frames, model.eval_window_frames) == (5, 5, 50)
        assert model.eval_lengths == (75, 100, 125, 150)
        assert model.net.cfg.hop_length == 200
        assert data.batch_size == 12 and model.input_spec.frame_size == 64
    if stage_name == "dense_fixed5_depth3":
        assert model.net.cfg.depth == 3 and data.curriculum_stage == 2


def _parsed(args: list[str]) -> dict:
    """The config LightningCLI merges from ``args``, without building the model or the data."""
    from avsync.training_cli import AVSyncCLI, cli_main as training_cli_main

    class ParseOnly(AVSyncCLI):
        def instantiate_classes(self):
            pass

    original = AVSyncCLI.instantiate_classes
    try:
        AVSyncCLI.instantiate_classes = ParseOnly.instantiate_classes
        cli = training_cli_main(args, run=False)
    finally:
        AVSyncCLI.instantiate_classes = original
    return cli.config.as_dict()


def test_full_stage_configs_name_the_paper_sizes_and_data(repo_root_cwd, tmp_path):
    stages, _, root = load_plan("avst", "full")
    for name, data_class, arch, batch in (("vggsync_dec_eval", "VGGSoundSyncClassesCurriculumDataModule", "avst_dec", 12),
                                          ("lrs2_fixed5_depth1", "LRS2SyncCurriculumDataModule", "avst_enc_mp_depth1", 16),
                                          ("lrs2_fixed5_depth3_eval", "LRS2SyncCurriculumDataModule", "avst_enc_mp_depth3", 16),
                                          ("lrs2_fixed5_mask_audio", "LRS2SyncCurriculumDataModule", "avst_enc_mp", 16),
                                          ("lrs3_enc_s1", "LRS3SyncCurriculumDataModule", "avst_enc", 4)):
        stage = next(s for s in stages if s.name == name)
        merged = _parsed(stage_cli_args(stage, root, "/nonexistent"))  # LightningCLI's merge, nothing built
        assert merged["data"]["class_path"].endswith(data_class)
        assert merged["model"]["init_args"]["arch"] == arch
        assert merged["data"]["init_args"]["batch_size"] == batch
        assert "{data_root}" in " ".join(stage.args)
        if name.startswith("lrs2_fixed5"):  # Tables 3-4: separate models trained and tested at 5 frames
            assert list(merged["model"]["init_args"]["train_frames"]) == [5]
        if name == "lrs2_fixed5_depth3_eval":  # every column in one pass: N windows' scores averaged over N-4
            assert list(merged["model"]["init_args"]["eval_context_windows"]) == [7, 9, 11, 13, 15]
            assert merged["model"]["init_args"]["eval_context"] == 1 and stage.init_from == "lrs2_fixed5_depth3"
        if name == "lrs2_fixed5_mask_audio":  # trained with the mask, not Table 2's model masked at test
            assert merged["model"]["init_args"]["mask_frames"] == 1


def test_init_from_continues_a_stage_and_refuses_another_architecture(tmp_path):
    torch.manual_seed(0)
    first = AVSTModule(arch="avst_enc_mp_toy", train_frames=(5,))
    ckpt = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": first.state_dict()}, ckpt)
    second = AVSTModule(arch="avst_enc_mp_toy", train_frames=(5,), init_from=str(ckpt))
    for (name, a), b in zip(first.net.state_dict().items(), second.net.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="does not fit"):
        AVSTModule(arch="avst_dec_toy", train_frames=(5,), init_from=str(ckpt))


def test_table_shows_dataset_and_csv_carries_the_paper_fields(tmp_path):
    _, numbers, _ = load_plan("avst", "full")
    numbers = [n for n in numbers if n.table == "2" and n.stage in ("lrs2_enc_mp_eval", "lrs3_enc_mp_eval")
               and n.metric == "test/acc_tol_in_sync"]  # the 5-frame column
    results = {"lrs2_enc_mp_eval": {"test": {"test/acc_tol_in_sync": 0.80}},
               "lrs3_enc_mp_eval": {"test": {"test/acc_tol_in_sync": 0.77}}}
    failures = write_table(numbers, results, tmp_path, "full", "avst")
    assert len(failures) == 1 and "LRS2" in failures[0]  # 80.0 vs 91.9; 77.0 vs 77.3 is within 2 points
    table = (tmp_path / "results.md").read_text()
    assert "AVST enc-mp, 5 frames (LRS2)" in table and "AVST enc-mp, 5 frames (LRS3 full frame)" in table
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert {"dataset", "split", "tolerance", "tolerance_kind"} <= set(header)


def _write_results(findings, out, curves: dict[str, list[tuple[float, float]]]):
    """One evaluation pass per model (``<prefix>_eval``), its lengths' metrics as the plan logs them."""
    for prefix, values in curves.items():
        lengths = findings.SPARSE_LENGTHS if prefix.startswith("sparse") else findings.DENSE_LENGTHS
        test = {}
        for n, (in_sync, shifted) in zip(lengths, values):
            test[findings._metric("test/acc_tol_in_sync", prefix, n)] = in_sync
            test[findings._metric("test/acc_tol_random_offset", prefix, n)] = shifted
        (out / f"{prefix}_eval").mkdir(parents=True)
        (out / f"{prefix}_eval" / "result.json").write_text(json.dumps({"stage": f"{prefix}_eval", "test": test}))


def test_findings_state_what_holds_and_what_does_not(tmp_path):
    findings = _findings()
    dense, sparse = range(len(findings.DENSE_LENGTHS)), range(len(findings.SPARSE_LENGTHS))
    _write_results(findings, tmp_path, {"dense_enc_mp": [(0.3 + 0.05 * i, 0.2) for i in dense],   # rising
                                        "dense_enc": [(0.5, 0.2) for _ in dense],                # flat
                                        "sparse_dec": [(0.6 - 0.05 * i, 0.4) for i in sparse],   # falling
                                        "sparse_enc_mp": [(0.4 + 0.01 * i, 0.4) for i in sparse]})
    assert findings._metric("x", "sparse_dec", 15) == "x_len75" and findings._metric("x", "dense_enc", 5) == "x"
    lines = findings.findings(findings.load_results(tmp_path))
    text = "\n".join(lines)
    assert "rises with clip length (dense enc-mp, 5-15 frames: 30.0, 35.0" in text
    assert lines[0].endswith("**holds**.") and lines[4].endswith("**does not hold**.")  # sparse dec falls
    assert "dense enc, 5-15 frames: 50.0" in lines[2] and lines[2].endswith("**does not hold**.")  # flat
    assert lines[3].endswith("not shown: sparse_enc_mp is at chance level (mean 42.0 %, chance 35.5 %).")
    assert "enc-mp >= enc on the dense set (mean over lengths 42.5 vs 50.0): **does not hold**" in text
    assert "dec >= enc-mp on the sparse set (mean over lengths 50.0 vs 42.0): not shown: sparse_enc_mp" in text
    assert findings.main([str(tmp_path / "nothing")]) == 1

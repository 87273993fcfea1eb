"""AVST and DiVAS have no public code: their full recipes follow the papers' text. Each full stage
named here is composed by LightningCLI (no data read) and checked on what the paper says."""
import pytest

from avsync.cli import cli_main
from avsync.reproduce import load_plan, stage_cli_args


def _compose(paper: str, stage_name: str, tmp_path):
    stages, _, root = load_plan(paper, "full")
    stage = next(s for s in stages if s.name == stage_name)
    cli = cli_main([*stage_cli_args(stage, root, str(tmp_path)), "--trainer.default_root_dir", str(tmp_path)], run=False)
    return cli.model, cli.datamodule


@pytest.mark.parametrize("stage_name", ["lrs3_enc_s1", "lrs3_dec_eval", "lrs3_enc_mp", "lrs2_fixed5_mask_both",
                                        "vggsync_dec_eval"])
def test_avst_full_frames_are_resized_whole_and_not_flipped(stage_name, repo_root_cwd, tmp_path):
    """App. A: "resized to 224x224x3xT without cropping"; no augmentation is named."""
    model, _ = _compose("avst", stage_name, tmp_path)
    spec = model.input_spec
    assert (spec.frame_size, spec.keep_aspect, spec.hflip) == (224, False, False)
    assert spec.decode_size == (224, 224)


def test_avst_lrs3_is_tested_on_lrs3s_own_test_set(repo_root_cwd, tmp_path):
    _, data = _compose("avst", "lrs3_enc_mp_eval", tmp_path)
    assert data.subset_splits == {"train": ["pretrain"], "valid": ["trainval"], "test": ["test"]}


@pytest.mark.parametrize("stage_name", ["lrs3_enc_eval", "lrs3_dec_eval", "lrs2_fixed5_mask_audio_eval"])
def test_avst_lrs_evaluation_is_dense_over_whole_test_clips(stage_name, repo_root_cwd, tmp_path):
    """§4.2.1: scores "computed densely" — every window of each whole test clip, no 10-window prefix."""
    model, data = _compose("avst", stage_name, tmp_path)
    assert model.eval_windows is None and data.eval_whole_clips


@pytest.mark.parametrize("stage_name", ["lrs2_face", "multfps_time_aware", "multfps_frame", "frame_grid21"])
def test_divas_full_recipes_have_no_unnamed_augmentation(stage_name, repo_root_cwd, tmp_path):
    """DiVAS names no flip or random crop; full frames are squared by cutting the sides (a centred crop)."""
    model, _ = _compose("divas", stage_name, tmp_path)
    spec = model.input_spec
    assert (spec.random_crop, spec.hflip) == (False, False)
    if "frame" in stage_name:
        assert (spec.crop, spec.frame_size, spec.keep_aspect) == ("full", 240, True)


@pytest.mark.parametrize("stage_name", ["lrs2_face", "multfps_time_aware_60fps", "multfps_frame"])
def test_divas_evaluation_uses_all_windows_of_whole_clips(stage_name, repo_root_cwd, tmp_path):
    """§4.1: all W = L − F + 1 windows of a test clip, SyncNet's edges (the grid protocol keeps its crops)."""
    model, data = _compose("divas", stage_name, tmp_path)
    assert model.eval_edges == "pad"
    assert all(child.eval_whole_clips for child in getattr(data, "children_by_rate", {"": data}).values())
    grid, grid_data = _compose("divas", "frame_grid21", tmp_path)
    assert grid.eval_edges == "inside" and not any(c.eval_whole_clips for c in grid_data.children_by_rate.values())


def test_divas_lrs3_multfps_splits_in_the_papers_proportions(repo_root_cwd, tmp_path):
    _, data = _compose("divas", "multfps_time_aware", tmp_path)
    child = next(iter(data.children_by_rate.values()))
    assert [round(child.split_ratios[k], 1) for k in ("train", "valid", "test")] == [44.5, 1.7, 4.6]
    assert child.stratify_rates


@pytest.mark.parametrize("stage_name", ["lrs2_face", "multfps_base", "multfps_frame"])
def test_divas_negatives_reach_the_clip_length(stage_name, repo_root_cwd, tmp_path):
    """§3.1: a negative's shift is "only limited by the clip length": pairs drawn over the whole clip."""
    model, data = _compose("divas", stage_name, tmp_path)
    assert model.negatives == "data"
    for child in getattr(data, "children_by_rate", {"": data}).values():
        assert child.train_pair_negatives == 0.5 and child.max_source_sec is None
    asd, _ = _compose("divas", "lrs2_face_asd", tmp_path)  # ASD scores 2 s crops, not pairs
    assert asd.input_spec.duration_sec == 2.0


def test_multfps_split_is_stratified_by_frame_rate(tmp_path):
    """DiVAS §5.3: splits "to keep a balance of frame rates": each rate group is split on its own."""
    from avsync.data_modules.lrs3 import LRS3DataModule

    folder = tmp_path / "h264_orig_strict_crop_origfps_aac" / "pretrain"
    rates = {}
    for i, (n, rate) in enumerate(((500, 25.0), (300, 29.97), (200, 23.976))):
        for k in range(n):
            vid = f"r{i}v{k:04d}"
            (folder / vid).mkdir(parents=True)
            (folder / vid / "00001.mp4").touch()
            rates[f"pretrain/{vid}/00001.mp4"] = rate

    class FakeProbe:
        def frame_rates(self, rels):
            return {r: rates[r] for r in rels}

    def split_rates(stratify):
        dm = LRS3DataModule(root=str(tmp_path), variant="multfps", split_ratios=(44.5, 1.7, 4.6),
                            stratify_rates=stratify)
        dm.probe_cache = lambda folder: FakeProbe()
        out = {}
        for split in ("train", "valid", "test"):
            clips = dm.split_clip_paths(split)[0]
            out[split] = {r: sum(rates[c] == r for c in clips) for r in (25.0, 29.97, 23.976)}
        return out

    strat = split_rates(True)
    for rate, n in ((25.0, 500), (29.97, 300), (23.976, 200)):  # int(n·4.6/50.8) test, int(n·1.7/50.8) valid
        assert strat["test"][rate] == int(n * 4.6 / 50.8) and strat["valid"][rate] == int(n * 1.7 / 50.8)
        assert sum(strat[s][rate] for s in strat) == n  # every video in exactly one split
    with pytest.raises(ValueError, match="stratify_rates"):
        LRS3DataModule(root=str(tmp_path), variant="full_frame", stratify_rates=True)

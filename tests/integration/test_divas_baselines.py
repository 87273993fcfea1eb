"""DiVAS Table 1's SyncNet / VocaLiST stages: the vocalist plan's recipes, read by path, on lrs2_face's
data, tested under DiVAS's protocol (random offsets, ms windows; every window of the test input
averaged: the 2 s crop at toy scale, the whole test clip at full size, as lrs2_face)."""
import pytest
import yaml

from avsync.cli import cli_main
from avsync.reproduce import REPRODUCTIONS, load_plan, stage_cli_args

DIVAS_DIR = REPRODUCTIONS / "divas"
PLAN = {mode: load_plan("divas", mode)[0] for mode in ("toy", "full")}
NUMBERS = yaml.safe_load((DIVAS_DIR / "paper_numbers.yaml").read_text())["numbers"]
BASELINES = {"lrs2_syncnet": "SyncNetModule", "lrs2_vocalist": "VocaLiSTModule"}
PARAMS = {"VocaLiSTModule": 80_106_561, "SyncNetModule": 13_631_616}  # official counts (docs/models.md)
WINDOWS = ((-40.0, 40.0), (-125.0, 45.0), (-185.0, 90.0))


def _stage(mode, name):
    return next(s for s in PLAN[mode] if s.name == name)


def _cli(stage, extra=()):
    args = stage_cli_args(stage, DIVAS_DIR, "/nonexistent")
    return cli_main(args + ["--trainer.logger", "false", *extra], run=False)


def _assert_divas_protocol(model, lrs2_face_model):
    # the same clips, offsets and search as lrs2_face: 2 s at 25 fps, ±15 frames, every window averaged
    assert model.artificial_offsets and model.eval_windows_ms == WINDOWS
    assert model.input_spec.duration_sec == lrs2_face_model.input_spec.duration_sec == 2.0
    assert model.input_spec.max_frame_shift == lrs2_face_model.max_shift == 15
    assert model.eval_contexts == (model.clip_frames - 2 * model.max_shift,) == (20,)
    assert lrs2_face_model.tolerances_ms == WINDOWS


@pytest.mark.parametrize("name", BASELINES)
def test_toy_baseline_stage_reads_lrs2_face_set_and_divas_protocol(name, repo_root_cwd):
    cli = _cli(_stage("toy", name))
    face = _cli(_stage("toy", "lrs2_face"))
    assert type(cli.model).__name__ == BASELINES[name]
    _assert_divas_protocol(cli.model, face.model)
    assert cli.datamodule.set_dir == face.datamodule.set_dir  # no toy set of its own
    assert cli.datamodule.num_clips == face.datamodule.num_clips
    assert cli.datamodule.batch_size == (32 if name == "lrs2_syncnet" else 16)  # the vocalist plan's recipe
    assert cli.trainer.max_steps <= 200 and cli.trainer.limit_val_batches == 0


@pytest.mark.parametrize("name", BASELINES)
def test_full_baseline_stage_builds_the_papers_model(name, repo_root_cwd):
    cli = _cli(_stage("full", name), ["--trainer.accelerator", "cpu"])
    face = _cli(_stage("full", "lrs2_face"), ["--trainer.accelerator", "cpu"])
    assert type(cli.model).__name__ == BASELINES[name]
    assert sum(p.numel() for p in cli.model.net.parameters()) == PARAMS[BASELINES[name]]
    assert type(cli.datamodule).__name__ == "LRS2DataModule" and cli.datamodule.root.startswith("/nonexistent")
    # DiVAS's rows and the baselines read the same whole test clips (all L - F + 1 windows, §4.1) at the
    # same seeded offsets: the same data module class, seed, sampler range, offsets mode and minimum length
    assert face.datamodule.eval_whole_clips and face.model.eval_edges == "pad"
    assert cli.datamodule.eval_whole_clips and cli.model.eval_whole_clip and cli.model.context_labels == ("clip",)
    assert type(cli.datamodule) is type(face.datamodule)
    for attr in ("seed", "whole_clip_min_sec"):
        assert getattr(cli.datamodule, attr) == getattr(face.datamodule, attr)
    assert cli.datamodule.whole_clip_mode() == face.datamodule.whole_clip_mode() == "random"
    spec, face_spec = cli.model.input_spec, face.model.input_spec
    assert (spec.fps, spec.max_frame_shift) == (face_spec.fps, face_spec.max_frame_shift) == (25.0, 15)
    assert cli.model.artificial_offsets and cli.model.eval_windows_ms == WINDOWS
    assert cli.model.input_spec.duration_sec == 2.0  # training pairs still come from 2 s crops


@pytest.mark.parametrize("mode", ["toy", "full"])
def test_table1_baseline_rows_are_filled_by_these_stages(mode):
    rows = [n for n in NUMBERS if n["table"] == "1" and not n["setting"].startswith("DiVAS")]
    assert len(rows) == 6
    for row in rows:
        assert row[f"{mode}_stage"] == ("lrs2_syncnet" if row["setting"].startswith("SyncNet") else "lrs2_vocalist")


@pytest.mark.parametrize("name", ["syncnet", "vocalist"])
def test_search_encodes_shared_audio_candidates_once_with_the_same_scores(name):
    """The score search sends each audio window with many visual windows; eval encodes it once."""
    import torch

    from avsync.papers.syncnet.module import SyncNetModule
    from avsync.papers.vocalist.module import VocaLiSTModule
    from avsync.evaluation.score_search import shift_scores

    torch.manual_seed(0)
    overrides = {"crop": "full", "frame_size": 32, "resize_short_side": 32}
    if name == "syncnet":
        module = SyncNetModule(arch="syncnet_toy", input_overrides=overrides, clip_frames=36, max_shift=3,
                               eval_contexts=(5,))
    else:
        module = VocaLiSTModule(arch="vocalist_toy", input_overrides=overrides, clip_frames=36, max_shift=3,
                                eval_contexts=(5,))
    module.eval()
    video = torch.randint(0, 256, (36, 32, 32, 3), dtype=torch.uint8)
    audio = torch.randn(36 * 640) * 0.1

    class PairByPair:  # every pair through the plain forward: no sharing
        def pair_scores(self, frames, wav):
            out = module(frames, wav)
            return -out if name == "syncnet" else out

    with torch.no_grad():
        shared = module.search(video, audio)
        plain = shift_scores(PairByPair(), video, audio, fps=25.0, sample_rate=16000, window_frames=5, max_shift=3)
    assert shared.shape == (36 - 5 - 6 + 1, 7)
    assert torch.allclose(shared, plain, atol=1e-4)


def test_whole_clip_baseline_protocol_on_the_real_clip(real_fixtures, tmp_path):
    """A baseline (toy SyncNet) with ``eval_whole_clip`` on a data module's whole test clip (the real
    15.7 s LRS3 clip at its seeded offset): all L − 4 windows of the clip are embedded and scored, one
    answer for the clip, logged under DiVAS's metric names."""
    import torch

    from avsync.data_modules.sync_curriculum import LRS3SyncCurriculumDataModule
    from avsync.papers.syncnet.module import SyncNetModule

    torch.manual_seed(0)
    small = {"crop": "full", "frame_size": 32, "resize_short_side": 32}
    module = SyncNetModule(arch="syncnet_toy", input_overrides=small,
                           eval_contexts=(), eval_whole_clip=True, artificial_offsets=True, log_figures=False,
                           eval_windows_ms=[list(w) for w in WINDOWS], eval_batch_windows=64).eval()
    (tmp_path / "test.txt").write_text("pretrain/C8zY0oAdQrs/00018\n")
    data = LRS3SyncCurriculumDataModule(root=str(real_fixtures / "lrs3"), variant="full_frame",
                                        input_spec=module.input_spec, split_files={"test": str(tmp_path / "test.txt")},
                                        eval_offsets="random", eval_whole_clips=True, num_workers=0, batch_size=2,
                                        probe_cache_dir=str(tmp_path / "probe"))
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    (video,), d = batch["video"], int(batch["target"][0])
    assert len(video) == 393 - abs(d)  # the whole clip at its offset, not a 2 s crop
    windows = []
    lip = module.net.forward_lip
    module.net.forward_lip = lambda x: (windows.append(len(x)), lip(x))[1]
    logged = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    with torch.no_grad():
        module.test_step(batch, 0)
    assert sum(windows) == len(video) - 4  # every visual window t = 0 … L − 5, each embedded once
    assert int(module.evaluators["test"].tolerant("clip").count.sum()) == 1
    assert {"test/acc@±40ms", "test/acc@-125+45ms", "test/acc@-185+90ms", "test/acc_tol_clip"} <= set(logged)


def test_syncnet_whole_clip_scores_pad_the_audio_embeddings_with_zeros_as_syncnet_and_divas():
    """SyncNet's whole-clip scores: inside the clip the search's own −distances; a candidate whose
    audio lies outside the clip scores against a zero audio embedding (−|lip embedding|, syncnet_python's
    calc_pdist, DiVAS §4.1) instead of being left out, so every candidate is averaged over all windows."""
    import torch

    from avsync.modules.pair_scoring import PairScoringModule, whole_clip_offset
    from avsync.papers.syncnet.module import SyncNetModule

    torch.manual_seed(0)
    small = {"crop": "full", "frame_size": 32, "resize_short_side": 32}
    module = SyncNetModule(arch="syncnet_toy", input_overrides=small, clip_frames=36, max_shift=3, eval_contexts=(),
                           eval_whole_clip=True, eval_batch_windows=2).eval()
    video = torch.randint(0, 256, (20, 32, 32, 3), dtype=torch.uint8)
    audio = torch.randn(20 * 640) * 0.1
    with torch.no_grad():
        ours = module.whole_clip_scores(video, audio)
        left_out = PairScoringModule.whole_clip_scores(module, video, audio)  # the generic edge handling
        lip = module.net.forward_lip(module.frames(torch.stack([video[t:t + 5] for t in range(16)])))
    assert ours.shape == left_out.shape == (16, 7) and torch.isfinite(ours).all()
    inside = torch.isfinite(left_out)
    assert 0 < int((~inside).sum()) < ours.numel()
    torch.testing.assert_close(ours[inside], left_out[inside], rtol=1e-4, atol=1e-5)
    padded = -(lip + 1e-6).norm(dim=1)[:, None].expand(-1, 7)  # F.pairwise_distance(x, 0) = |x + eps|
    torch.testing.assert_close(ours[~inside], padded[~inside], rtol=1e-4, atol=1e-5)
    assert whole_clip_offset(ours).item() == int(ours.mean(0).argmax()) - 3

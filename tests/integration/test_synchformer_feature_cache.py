"""The Synchformer feature cache: gathered segment features equal recomputed ones; CLI cache -> fit."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avsync.cli import main
from avsync.data_modules.feature_cache import ClipFeatures
from avsync.papers.synchformer.feature_cache import clip_features, gather_segments
from avsync.papers.synchformer.network import SYNCHFORMER_CONFIGS, SegmentInputs, Synchformer
from avsync.reproduce import config_args

TOY = SYNCHFORMER_CONFIGS["synchformer_toy"]


@pytest.fixture(scope="module")
def clip_and_cache():
    torch.manual_seed(0)
    net, inputs = Synchformer(TOY).eval(), SegmentInputs(TOY)
    frames = torch.randint(0, 256, (60, 32, 32, 3), dtype=torch.uint8)
    audio = torch.randn(38_400) * 0.1                         # 2.4 s
    cached = ClipFeatures.on_grid("clip", 2.4, 0.04, **clip_features(net, inputs, frames, audio, hop_frames=1, chunk=16))
    return net, inputs, frames, audio, cached


def test_cache_covers_every_frame_start(clip_and_cache):
    *_, cached = clip_and_cache
    assert cached.video.shape == (60 - 16 + 1, 8, 64) and cached.video.dtype == torch.float16
    assert cached.audio.shape == ((38_400 - 10_240) // 640 + 1, 6, 64)


@pytest.mark.parametrize("video_start,offset", [(0.12, 0.4), (0.6, -0.2), (0.0, 0.0)])
def test_gathered_segments_equal_recomputed_ones(clip_and_cache, video_start, offset):
    net, inputs, frames, audio, cached = clip_and_cache
    audio_start = video_start + offset
    vis, aud = gather_segments(cached, video_start, audio_start, num_segments=3, step_sec=0.32)
    v0, a0 = round(video_start * 25), round(audio_start * 16000)
    with torch.no_grad():
        ref_v = net.vfeat_extractor(inputs.video(frames[None, v0:v0 + 32], 3, 0.5))[0]
        ref_a = net.afeat_extractor(inputs.audio(audio[None, a0:a0 + 20_480], 3, 0.5))[0]
    torch.testing.assert_close(vis.float(), ref_v, atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(aud.float(), ref_a, atol=2e-2, rtol=1e-2)


def test_plans_outside_the_clip_are_refused(clip_and_cache):
    *_, cached = clip_and_cache
    with pytest.raises(ValueError, match="outside the cached clip"):
        gather_segments(cached, 0.0, 1.5, num_segments=3, step_sec=0.32)


@pytest.mark.slow
def test_cache_features_then_fit_from_the_cache(tmp_path, repo_root_cwd):
    toy, cache, run = str(tmp_path / "toy"), tmp_path / "cache", tmp_path / "run"
    sizes = ["--num_train", "4", "--num_valid", "2", "--num_test", "2", "--root", toy]
    direct = [a.replace("--", "--data.init_args.", 1) if a.startswith("--") else a for a in sizes]
    assert main(["cache-features", "--config", "experiments/synchformer_toy_stage2.yaml", *direct,
                 "--hop-frames", "2", "--splits", "train", "valid", "--out", str(cache)]) == 0
    nested = [a.replace("--", "--data.init_args.data.init_args.", 1) if a.startswith("--") else a for a in sizes]
    main(["fit", "--config", "experiments/synchformer_toy_stage2_cached.yaml", *nested,
          "--data.init_args.data.init_args.batch_size", "2", "--data.init_args.cache_dir", str(cache),
          "--data.init_args.data.init_args.audio_jitter_sec", "0.0",
          "--trainer.max_steps", "2", "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1",
          "--trainer.default_root_dir", str(run), "--trainer.logger.init_args.save_dir", str(run)])
    state = torch.load(sorted(run.rglob("last.ckpt"))[0], map_location="cpu", weights_only=True)
    assert state["global_step"] == 2


@pytest.mark.slow
def test_feature_module_builds_its_cache_on_first_use_and_reuses_it(tmp_path, repo_root_cwd):
    """build_if_missing: a stage trains from cached features without `avsync cache-features`; a second
    run with the same extractors and clips finds the same folder instead of writing another."""
    plan_dir = Path("reproductions/synchformer")
    args = ["fit", *config_args(["../trainer.yaml#synchformer_toy", "configs/model.yaml#toy_stage2",
                                 "configs/data.yaml#toy_dense_cached", "configs/model.yaml#cls3"], plan_dir),
            "--data.init_args.cache_dir", str(tmp_path / "cache"), "--trainer.max_steps", "1",
            "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"]
    for name, value in (("num_train", 2), ("num_valid", 1), ("num_test", 1), ("batch_size", 1)):
        args += [f"--data.init_args.data.init_args.{name}", str(value)]
    args += ["--data.init_args.data.init_args.root", str(tmp_path / "toy")]
    for run in ("a", "b"):
        torch.manual_seed(0)   # the same random extractors both times
        main([*args, "--trainer.default_root_dir", str(tmp_path / run), "--seed_everything", "0"])
    folders = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "index.json").is_file()
    assert len(list((folders[0] / "train").glob("*.pt"))) == 2

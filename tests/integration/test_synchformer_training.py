"""Synchformer's two training stages, the official-checkpoint converter and the CLI on the toy set."""
from __future__ import annotations

import json
import math

import pytest
import torch

from avsync.cli import main
from avsync.registry import get_converter
from avsync.convert.cli import main as convert_main
from avsync.papers.synchformer.stage1 import SynchformerStage1Module, segment_infonce, warmup_cosine
from avsync.papers.synchformer.stage2 import SynchformerStage2Module
from avsync.papers.synchformer.network import SYNCHFORMER_CONFIGS, Synchformer
from conftest import SHARED
from support.cli_overrides import TINY_SPLITS, TWO_STEP_FIT, cli_overrides

MANIFEST = SHARED / "spec" / "official_state_dicts" / "synchformer.json"
TOY_INPUTS = {"resize_short_side": 32}


def _batch(seconds: float, b: int = 2, offsets: bool = False) -> dict:
    g = torch.Generator().manual_seed(0)
    frames = int(round(seconds * 25))
    batch = {"video": torch.randint(0, 256, (b, frames, 32, 32, 3), generator=g, dtype=torch.uint8),
             "audio": torch.randn(b, int(round(seconds * 16000)), generator=g) * 0.1}
    # a different tone every 0.32 s over the noise, so that audio segments differ from each other
    n = batch["audio"].shape[1]
    freqs = (200 + 3800 * torch.rand(b, math.ceil(seconds / 0.32), generator=g)).repeat_interleave(5120, dim=1)
    batch["audio"] = batch["audio"] + torch.sin(2 * math.pi * freqs[:, :n] * torch.arange(n) / 16000)
    if offsets:
        batch["target"] = torch.tensor([3, 10])[:b]
    return batch


# -- stage I ------------------------------------------------------------------------------------
def test_infonce_prefers_aligned_segments():
    g = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(12, 16, generator=g), dim=-1)
    aligned, acc = segment_infonce(z, z, torch.tensor(0.07))
    shuffled, _ = segment_infonce(z, z[torch.randperm(12, generator=g)], torch.tensor(0.07))
    assert acc == 1.0 and aligned < shuffled
    # both directions: the loss is symmetric in its arguments
    a = torch.nn.functional.normalize(torch.randn(12, 16, generator=g), dim=-1)
    torch.testing.assert_close(segment_infonce(z, a, torch.tensor(0.1))[0], segment_infonce(a, z, torch.tensor(0.1))[0])


def test_stage1_spec_step_and_temperature_clamp():
    module = SynchformerStage1Module(arch="synchformer_toy", num_segments=3, input_overrides=TOY_INPUTS)
    assert module.input_spec.offset_classes is None and module.input_spec.max_frame_shift == 0
    assert math.isclose(module.input_spec.duration_sec, 3 * 0.64)
    assert math.isclose(SynchformerStage1Module(arch="synchformer_toy").input_spec.duration_sec, 8.96)  # 14 segments
    with torch.no_grad():
        module.temperature.fill_(3.0)
    loss = module._step(_batch(3 * 0.64), "val")
    assert module.temperature.item() == pytest.approx(0.5)          # clamped to the official maximum
    assert torch.isfinite(loss)
    loss.backward()
    assert module.temperature.grad is not None                     # learnable
    assert module.net.vfeat_extractor.patch_embed_3d.proj.weight.grad is not None
    assert module.net.transformer.off_head.weight.grad is None     # the sync module is not stage I's


@pytest.mark.parametrize("center", [False, True])
def test_stage1_centring_removes_what_a_clip_shares_over_time(center, monkeypatch):
    """center_segments=True (the toy recipe): adding one vector to every segment of a clip leaves the
    embeddings unchanged; the paper's default (False) sees it."""
    module = SynchformerStage1Module(arch="synchformer_toy", num_segments=3, input_overrides=TOY_INPUTS,
                                     center_segments=center)
    g = torch.Generator().manual_seed(0)
    vis, aud = torch.randn(2, 3, 8, 64, generator=g), torch.randn(2, 3, 6, 64, generator=g)
    shared_v, shared_a = torch.randn(2, 1, 1, 64, generator=g) * 3, torch.randn(2, 1, 1, 64, generator=g) * 3
    embeddings = []
    for v, a in ((vis, aud), (vis + shared_v, aud + shared_a)):
        monkeypatch.setattr(module.net, "features", lambda video, audio, v=v, a=a: (v, a))
        with torch.no_grad():
            embeddings.append(module.embeddings(_batch(3 * 0.64)))
    same = all(torch.allclose(x, y, atol=1e-5) for x, y in zip(*embeddings))
    assert same == center
    assert SynchformerStage1Module(arch="synchformer_toy", num_segments=3).center_segments is False


def test_warmup_then_cosine_schedule():
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.5)
    assert warmup_cosine(110, 10, 110) == pytest.approx(0.0, abs=1e-9)


# -- stage II -----------------------------------------------------------------------------------
def test_stage2_trains_only_the_sync_module():
    torch.manual_seed(0)
    module = SynchformerStage2Module(arch="synchformer_toy", input_overrides=TOY_INPUTS, lr=1e-3)
    assert math.isclose(module.input_spec.duration_sec, 4.8) and module.input_spec.offset_classes == 21
    module.train()
    assert not module.net.vfeat_extractor.training and module.net.transformer.training
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    loss = torch.nn.functional.cross_entropy(module(_batch(4.8, offsets=True)), torch.tensor([3, 10]))
    loss.backward()
    opt.step()
    after = module.net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("vproj.", "aproj.", "transformer.")) for k in changed)


def test_stage2_toy_options_centre_features_and_take_stage1_projections(tmp_path):
    torch.manual_seed(0)
    stage1 = SynchformerStage1Module(arch="synchformer_toy", num_segments=3, input_overrides=TOY_INPUTS)
    torch.save({"state_dict": stage1.state_dict()}, tmp_path / "stage1.ckpt")
    module = SynchformerStage2Module(arch="synchformer_toy", init_from=str(tmp_path / "stage1.ckpt"),
                                     center_features=True, projections_from_stage1=True).eval()
    assert torch.equal(module.net.vproj.weight, stage1.segment_vproj.weight)
    assert torch.equal(module.net.aproj.bias, stage1.segment_aproj.bias)
    g = torch.Generator().manual_seed(1)
    vis, aud = torch.randn(2, 14, 8, 64, generator=g), torch.randn(2, 14, 6, 64, generator=g)
    shifted = {"vis_feats": vis + torch.randn(2, 1, 1, 64, generator=g), "aud_feats": aud + 2.0}
    with torch.no_grad():   # what a clip shares over time does not reach the sync module
        torch.testing.assert_close(module({"vis_feats": vis, "aud_feats": aud}), module(shifted))
        module.center_features = False
        assert not torch.allclose(module({"vis_feats": vis, "aud_feats": aud}), module(shifted))
    with pytest.raises(ValueError, match="segment_vproj"):   # a stage-II checkpoint has no segment heads
        torch.save({"state_dict": {f"net.{k}": v for k, v in module.net.state_dict().items()}}, tmp_path / "s2.ckpt")
        SynchformerStage2Module(arch="synchformer_toy", init_from=str(tmp_path / "s2.ckpt"),
                                projections_from_stage1=True)


def test_stage2_reads_extractors_of_an_official_segment_avclip_checkpoint(tmp_path):
    torch.manual_seed(0)
    src = Synchformer(SYNCHFORMER_CONFIGS["synchformer_toy"]).state_dict()
    official = {f"module.{'v_encoder' if k.startswith('v') else 'a_encoder'}.{k.split('.', 1)[1]}": v
                for k, v in src.items() if k.startswith(("vfeat_extractor.", "afeat_extractor."))}
    official["module.v_encoder_m.cls_token"] = torch.zeros(1, 1, 64)      # momentum copy: not ours
    official["module.segment_logit_scale"] = torch.tensor(0.07)
    torch.save({"state_dict": official, "epoch": 1}, tmp_path / "avclip.pt")
    module = SynchformerStage2Module(arch="synchformer_toy", extractors_from=str(tmp_path / "avclip.pt"))
    key = "afeat_extractor.ast.encoder.layer.1.output.dense.weight"
    assert torch.equal(module.net.state_dict()[key], src[key])
    del official["module.a_encoder.freq_attn_agg.norm2.bias"]
    torch.save({"state_dict": official}, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="norm2.bias"):
        SynchformerStage2Module(arch="synchformer_toy", extractors_from=str(tmp_path / "broken.pt"))


def test_stage2_cached_features_give_the_same_logits():
    torch.manual_seed(0)
    module = SynchformerStage2Module(arch="synchformer_toy", input_overrides=TOY_INPUTS).eval()
    batch = _batch(4.8)
    with torch.no_grad():
        vis, aud = module.segment_features(batch)
        torch.testing.assert_close(module(batch), module({"vis_feats": vis, "aud_feats": aud}))


# -- official checkpoints ---------------------------------------------------------------------------
def test_converter_loads_a_state_dict_built_from_the_manifest():
    if not MANIFEST.is_file():
        pytest.fail(f"manifest not found at {MANIFEST} (set AVSYNC_SHARED)")
    manifest = json.loads(MANIFEST.read_text())["state_dict"]
    state = {k: torch.empty(shape) for k, shape in manifest.items()}  # names and shapes are what is tested
    state["vfeat_extractor.head.weight"] = torch.zeros(174, 768)   # unused by the sync model: dropped
    converter = get_converter("synchformer")
    model = converter.load_official({"model": {f"module.{k}": v for k, v in state.items()}})
    loaded = model.state_dict()
    assert set(loaded) == set(manifest)
    assert all(loaded[k].data_ptr() == state[k].data_ptr() for k in manifest)  # each tensor went to its own key
    assert model.cfg.num_segments == 14 and model.cfg.num_classes == 21 and model.cfg.depth == 3
    del state["transformer.ln_f.bias"]
    with pytest.raises(ValueError, match="ln_f.bias"):
        converter.load_official(state)


def test_convert_cli_round_trip_into_stage2(tmp_path):
    torch.manual_seed(0)
    official = Synchformer(SYNCHFORMER_CONFIGS["synchformer_toy"]).state_dict()
    torch.save({"model": official, "epoch": 3}, tmp_path / "official.pt")
    assert convert_main(["--model", "synchformer", "--arch", "synchformer_toy",
                         "--src", str(tmp_path / "official.pt"), "--dst", str(tmp_path / "conv.ckpt")]) == 0
    ckpt = torch.load(tmp_path / "conv.ckpt", map_location="cpu", weights_only=True)
    module = SynchformerStage2Module(arch="synchformer_toy", init_from=str(tmp_path / "conv.ckpt"))
    assert all(torch.equal(module.net.state_dict()[k], v) for k, v in official.items())
    assert ckpt["hyper_parameters"]["arch"] == "synchformer_toy"
    restored = SynchformerStage2Module.load_from_checkpoint(tmp_path / "conv.ckpt")  # strict: only net.* tensors
    assert torch.equal(restored.net.transformer.off_head.weight, official["transformer.off_head.weight"])


# -- the command line ------------------------------------------------------------------------------
TINY = cli_overrides(data={**TINY_SPLITS, "batch_size": 2}, trainer=TWO_STEP_FIT)


@pytest.mark.slow
def test_two_step_fit_stage1_then_stage2(tmp_path, repo_root_cwd):
    toy = str(tmp_path / "toy")
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    main(["fit", "--config", "experiments/synchformer_toy_stage1.yaml", *TINY, "--data.init_args.root", toy,
          "--trainer.default_root_dir", str(s1), "--trainer.logger.init_args.save_dir", str(s1)])
    ckpt1 = sorted(s1.rglob("last.ckpt"))[0]
    state1 = torch.load(ckpt1, map_location="cpu", weights_only=True)
    assert state1["global_step"] == 2
    main(["fit", "--config", "experiments/synchformer_toy_stage2.yaml", *TINY, "--data.init_args.root", toy,
          "--trainer.default_root_dir", str(s2), "--trainer.logger.init_args.save_dir", str(s2),
          "--model.init_args.extractors_from", str(ckpt1)])
    state2 = torch.load(sorted(s2.rglob("last.ckpt"))[0], map_location="cpu", weights_only=True)
    assert state2["global_step"] == 2
    key = "net.afeat_extractor.freq_attn_agg.linear1.weight"
    assert torch.equal(state1["state_dict"][key], state2["state_dict"][key])  # frozen, read from stage I


# -- the loss can be optimised -----------------------------------------------------------------------
def test_stage2_fits_one_batch_from_cached_features():
    torch.manual_seed(0)
    module = SynchformerStage2Module(arch="synchformer_toy", input_overrides=TOY_INPUTS)
    with torch.no_grad():
        vis, aud = module.segment_features(_batch(4.8, b=2))
    batch = {"vis_feats": vis, "aud_feats": aud, "target": torch.tensor([3, 17])}
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    module.train()
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(module(batch), batch["target"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]

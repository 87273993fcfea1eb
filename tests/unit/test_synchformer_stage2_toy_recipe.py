"""Synchformer stage II's toy recipe (issue 6): one token per segment and modality, Xavier-initialised
sync transformer (``synchformer_toy_mean_tokens``) and centred features; the paper's layout stays the
default and the full-scale configs keep it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from avsync.papers.synchformer.network import Synchformer, get_config
from avsync.reproduce import read_config

CONFIGS = Path(__file__).resolve().parents[2] / "reproductions" / "synchformer" / "configs"


def _features(b: int = 2, s: int = 14, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, s, 8, 64, generator=g), torch.randn(b, s, 6, 64, generator=g)


def test_the_paper_layout_is_the_default():
    cfg = get_config("synchformer")
    assert (cfg.sync_init, cfg.segment_tokens) == ("reference", "all")
    assert cfg.num_positions == 198
    toy = get_config("synchformer_toy")
    assert (toy.sync_init, toy.segment_tokens) == ("reference", "all")   # stage I and the appendix layout
    recipe = get_config("synchformer_toy_mean_tokens")
    assert (recipe.sync_init, recipe.segment_tokens) == ("xavier", "mean")
    assert (recipe.motionformer, recipe.ast) == (toy.motionformer, toy.ast)   # the same extractors


def test_mean_tokens_feed_one_token_per_segment_and_modality():
    torch.manual_seed(0)
    net = Synchformer(get_config("synchformer_toy", {"segment_tokens": "mean", "num_classes": 3})).eval()
    assert net.cfg.num_positions == 2 + 2 * 14 == net.transformer.pos_emb_cfg.pos_emb.shape[1]
    vis, aud = _features()
    # tokens that differ within a segment but share its mean give the same logits ...
    wiggle = torch.randn(2, 14, 8, 64)
    wiggle = wiggle - wiggle.mean(2, keepdim=True)
    with torch.no_grad():
        logits = net.sync(vis, aud)
        torch.testing.assert_close(logits, net.sync(vis + wiggle, aud))
        torch.testing.assert_close(logits, net.sync(vis.mean(2, keepdim=True), aud.mean(2, keepdim=True)))
        # ... while swapping two segments' means does not (positions still count)
        assert not torch.allclose(logits, net.sync(vis[:, [1, 0, *range(2, 14)]], aud))
    paper = Synchformer(get_config("synchformer_toy", {"num_classes": 3})).eval()
    with torch.no_grad():
        assert not torch.allclose(paper.sync(vis, aud), paper.sync(vis + wiggle, aud))


def test_xavier_sync_init_changes_only_the_sync_transformer():
    torch.manual_seed(0)
    reference = Synchformer(get_config("synchformer_toy")).state_dict()
    torch.manual_seed(0)
    xavier = Synchformer(get_config("synchformer_toy", {"sync_init": "xavier"})).state_dict()
    changed = {k for k in reference if not torch.equal(reference[k], xavier[k])}
    # the extractors draw the same numbers, so stage-I checkpoints and feature caches stay valid
    assert changed and all(k.startswith("transformer.") for k in changed)
    q = "transformer.blocks.0.attn.query.weight"
    assert reference[q].std() < 0.03 < 0.1 < xavier[q].std()       # N(0, 0.02) vs Xavier-uniform (0.125 at 64)
    assert torch.equal(reference["transformer.pos_emb_cfg.pos_emb"], xavier["transformer.pos_emb_cfg.pos_emb"])


@pytest.mark.parametrize("field", ["sync_init", "segment_tokens"])
def test_unknown_values_raise(field):
    with pytest.raises(ValueError, match=field):
        Synchformer(get_config("synchformer_toy", {field: "bogus"}))
    net = Synchformer(get_config("synchformer_toy", {"segment_tokens": "mean"}))
    with pytest.raises(ValueError, match=r"\(B, S, t, D\)"):
        net.sync(torch.randn(2, 14, 64), torch.randn(2, 14, 64))


def test_toy_plan_stage2_uses_the_recipe_and_the_full_plan_does_not():
    for name in ("model.yaml#toy_stage2", "data.yaml#toy_synchronizability"):
        toy = read_config(name, CONFIGS)["model"]["init_args"]
        cfg = get_config(toy["arch"], toy.get("arch_overrides"))
        assert (cfg.segment_tokens, cfg.sync_init, toy["center_features"]) == ("mean", "xavier", True), name
    full = read_config("model.yaml#full_stage2", CONFIGS)["model"]["init_args"]
    cfg = get_config(full["arch"], full.get("arch_overrides"))
    assert (cfg.segment_tokens, cfg.sync_init) == ("all", "reference") and not full.get("center_features")


def test_stage2_from_a_stage1_checkpoint_takes_only_the_extractors(tmp_path):
    """Stage I never trains the sync module; its untrained (reference-initialised) copy must not replace
    the stage-II configuration's own init, while a stage-II checkpoint (3 -> 21 classes) still passes it on."""
    from avsync.papers.synchformer.stage1 import SynchformerStage1Module
    from avsync.papers.synchformer.stage2 import SynchformerStage2Module

    torch.manual_seed(0)
    stage1 = SynchformerStage1Module(arch="synchformer_toy", num_segments=3, input_overrides={"resize_short_side": 32})
    torch.save({"state_dict": stage1.state_dict()}, tmp_path / "stage1.ckpt")
    torch.manual_seed(1)
    fresh = SynchformerStage2Module(arch="synchformer_toy_mean_tokens").net.state_dict()
    torch.manual_seed(1)
    module = SynchformerStage2Module(arch="synchformer_toy_mean_tokens", init_from=str(tmp_path / "stage1.ckpt"))
    ours, theirs = module.net.state_dict(), stage1.net.state_dict()
    for key, value in ours.items():
        assert torch.equal(value, theirs[key] if key.startswith(("vfeat_extractor.", "afeat_extractor.")) else fresh[key]), key
    q = "transformer.blocks.0.attn.query.weight"
    assert ours[q].std() > 0.1     # still Xavier, not stage I's N(0, 0.02)
    torch.save({"state_dict": module.state_dict()}, tmp_path / "stage2.ckpt")
    torch.manual_seed(2)
    again = SynchformerStage2Module(arch="synchformer_toy_mean_tokens", init_from=str(tmp_path / "stage2.ckpt"))
    assert torch.equal(again.net.state_dict()[q], ours[q])

"""The toy recipe's stage 0 (contrastive pre-training of SparseSync's extractors and selectors).

What decides whether the stage leaves its own plateau in time (see the module docstring) is that
segment tokens are centred over time within each clip; the selector loss may optionally be kept
out of the extractors. These tests pin both switches, and that the stage trains the same
architecture the sync stages load.
"""
from __future__ import annotations

import torch

from avsync.papers.sparsesync.selector_pretraining import SelectorContrastivePretraining
from avsync.papers.sparsesync.module import SparseSyncModule


def _batch(n: int = 3, seconds: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"video": torch.randint(0, 256, (n, 25 * seconds, 32, 32, 3), dtype=torch.uint8, generator=g),
            "audio": torch.randn(n, 16000 * seconds, generator=g)}


def _module(**kw) -> SelectorContrastivePretraining:
    torch.manual_seed(0)
    return SelectorContrastivePretraining(arch="sparsesync_toy", **kw).train()


def test_segment_tokens_are_centred_over_time_within_each_clip():
    emb = _module().embeddings(_batch())
    for key in ("tok_v", "tok_a"):
        assert emb[key].abs().mean() > 1e-3  # not trivially zero ...
        torch.testing.assert_close(emb[key].mean(1), torch.zeros_like(emb[key].mean(1)), atol=1e-5, rtol=0)
    raw = _module(center_segments=False).embeddings(_batch())
    assert raw["tok_v"].mean(1).abs().max() > 1e-3  # ... and the switch really switches


def _extractor_grad(module: SelectorContrastivePretraining, key: str) -> float:
    """Gradient norm reaching the extractors from the selector outputs alone."""
    emb = module.embeddings(_batch())
    emb[key].square().sum().backward()
    extractors = [*module.net.vfeat_extractor.parameters(), *module.net.afeat_extractor.parameters()]
    return sum(float(p.grad.norm()) for p in extractors if p.grad is not None)


def test_selector_loss_reaches_the_extractors_unless_detached():
    assert _extractor_grad(_module(), "sel_v") > 0.0
    assert _extractor_grad(_module(), "sel_a") > 0.0
    assert _extractor_grad(_module(detach_selector_inputs=True), "sel_v") == 0.0
    assert _extractor_grad(_module(detach_selector_inputs=True), "sel_a") == 0.0


def test_the_loss_trains_extractors_and_selectors_and_the_checkpoint_feeds_the_sync_stage(tmp_path):
    module = _module()
    out = module.losses(_batch())
    assert 0.0 <= float(out["segment_acc"]) <= 1.0 and 0.0 <= float(out["selector_acc"]) <= 1.0
    out["loss"].backward()
    trained = {n for n, p in module.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any(n.startswith("net.vfeat_extractor") for n in trained)
    assert any(n.startswith("net.afeat_extractor") for n in trained)
    assert any(n.startswith("net.transformer.v_selector") for n in trained)
    assert not any(n.startswith("net.transformer.off_head") for n in trained)  # no classifier in stage 0

    ckpt = tmp_path / "stage0.ckpt"
    torch.save({"state_dict": module.state_dict()}, ckpt)
    sync = SparseSyncModule(arch="sparsesync_toy", init_from=str(ckpt), freeze_extractors=True, log_figures=False)
    torch.testing.assert_close(sync.net.transformer.v_selector.state_dict(),
                               module.net.transformer.v_selector.state_dict())

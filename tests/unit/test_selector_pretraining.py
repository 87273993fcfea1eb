"""The toy recipe's stage 0 (contrastive pre-training of SparseSync's extractors and selectors).

What decides whether the stage leaves its own plateau in time (see the module docstring) is that
segment tokens are centred over time within each clip; the selector loss may optionally be kept
out of the extractors. These tests pin both switches, the sparse set's switches (segment negatives
within the clip, the window-end margin, the audio-onset teacher), and that the stage trains the
same architecture the sync stages load.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avsync.papers.sparsesync.selector_pretraining import SelectorContrastivePretraining, audio_onset_strength
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


def test_segment_negatives_within_the_clip_and_the_margin_leave_out_the_padded_ends():
    """``segment_negatives="clip"`` contrasts a segment with its own clip's other time steps only, and
    ``segment_margin`` drops the window's ends (marked by the extractors' padding) before centring."""
    batch = _batch(n=3, seconds=5)
    full = _module().eval().embeddings(batch)  # eval: no dropout, so two passes agree
    cut = _module(segment_margin=4).eval().embeddings(batch)
    t = full["tok_v"].shape[1]
    assert cut["tok_v"].shape[1] == cut["tok_a"].shape[1] == t - 8
    torch.testing.assert_close(cut["tok_v"].mean(1), torch.zeros_like(cut["tok_v"].mean(1)), atol=1e-5, rtol=0)
    raw = _module(center_segments=False, segment_margin=4).eval().embeddings(batch)["tok_v"]
    torch.testing.assert_close(cut["tok_v"], raw - raw.mean(1, keepdim=True))

    module = _module(segment_negatives="clip").eval()
    emb = module.embeddings(batch)
    per_clip = [module._nce(emb["tok_v"][i], emb["tok_a"][i])[0] for i in range(3)]
    seg_loss = module._nce(emb["tok_v"], emb["tok_a"])[0]
    torch.testing.assert_close(seg_loss, torch.stack(per_clip).mean())
    out = module.losses(batch)
    sel_loss = module._nce(emb["sel_v"].flatten(0, 1), emb["sel_a"].flatten(0, 1))[0]
    torch.testing.assert_close(out["loss"], seg_loss + sel_loss)
    batch_wide = _module().eval().losses(batch)["loss"]
    assert not torch.isclose(out["loss"], batch_wide)  # the switch really switches
    with pytest.raises(ValueError, match="segment_negatives"):
        _module(segment_negatives="everything")


def test_audio_onset_strength_peaks_in_the_step_of_an_impact():
    sr, steps = 16000, 16
    audio = 0.01 * torch.randn(2, 5 * sr, generator=torch.Generator().manual_seed(1))
    for clip, t in enumerate((1.1, 3.7)):  # an impact decaying over ~50 ms
        i = int(t * sr)
        audio[clip, i:i + 800] += torch.exp(-torch.arange(800) / 160.0)
    onset = audio_onset_strength(audio, sr, steps)
    assert onset.shape == (2, steps)
    assert onset.argmax(-1).tolist() == [int(1.1 / 5 * steps), int(3.7 / 5 * steps)]
    torch.testing.assert_close(onset.mean(-1), torch.zeros(2), atol=1e-5, rtol=0)


def test_onset_teacher_adds_its_loss_only_when_weighted():
    batch = _batch(n=2, seconds=5)
    assert _module().onset_head is None and "onset_loss" not in _module().eval().losses(batch)
    module = _module(onset_weight=2.0).eval()
    out = module.losses(batch)
    emb = module.embeddings(batch)
    target = audio_onset_strength(batch["audio"], 16000, emb["raw_v"].shape[1])
    torch.testing.assert_close(out["onset_loss"], F.mse_loss(module.onset_head(emb["raw_v"])[..., 0], target))
    base = module._nce(emb["tok_v"].flatten(0, 1), emb["tok_a"].flatten(0, 1))[0] \
        + module._nce(emb["sel_v"].flatten(0, 1), emb["sel_a"].flatten(0, 1))[0]
    torch.testing.assert_close(out["loss"], base + 2.0 * out["onset_loss"])
    assert not any(k.startswith("net.onset") for k in module.state_dict())  # the sync stages load net.* only


def test_segment_scale_per_clip_keeps_the_tokens_relative_lengths():
    batch = _batch(n=2, seconds=5)
    module = _module(segment_negatives="clip", segment_scale="clip").eval()
    emb = module.embeddings(batch)
    scaled = [x / x.square().sum(-1).mean(1, keepdim=True).sqrt()[..., None] for x in (emb["tok_v"], emb["tok_a"])]
    assert torch.allclose(scaled[0].square().sum(-1).mean(1), torch.ones(2))
    logits = scaled[0] @ scaled[1].transpose(-1, -2) / module.temperature  # dot products, not cosines
    target = torch.arange(logits.shape[-1]).expand(logits.shape[:-1]).flatten()
    expected = (F.cross_entropy(logits.flatten(0, -2), target)
                + F.cross_entropy(logits.transpose(-1, -2).flatten(0, -2), target)) / 2
    seg = module.losses(batch)["loss"] - module._nce(emb["sel_v"].flatten(0, 1), emb["sel_a"].flatten(0, 1))[0]
    torch.testing.assert_close(seg, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="segment_scale"):
        _module(segment_scale="batch")

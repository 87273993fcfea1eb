"""The paper's ablation without selectors: the sync transformer attends over every token (issue 22)."""
import torch

from avsync.lit.sparsesync import build_sparsesync


def test_no_selector_model_attends_over_all_tokens():
    torch.manual_seed(0)
    with_sel = build_sparsesync("sparsesync_toy")
    without = build_sparsesync("sparsesync_toy", {"selectors": False})
    names = {n for n, _ in without.named_parameters()}
    assert not any("selector" in n for n in names)
    assert any("v_selector" in n for n, _ in with_sel.named_parameters())
    vfeat, afeat = torch.randn(2, 128, 4, 1, 1), torch.randn(2, 64, 9, 5)
    seen = {}
    hook = without.transformer.global_transformer.register_forward_hook(
        lambda m, inp, out: seen.update(tokens=out.shape[1]))
    logits = without.forward_extracted(vfeat, afeat)
    hook.remove()
    assert logits.shape == (2, 21)
    assert seen["tokens"] == 2 + 4 * 1 * 1 + 9 * 5  # OFF + MOD + every visual and audio token
    # the tokens reach the output: changing one audio token changes the logits
    afeat2 = afeat.clone()
    afeat2[:, :, 3, 2] += 5 * torch.randn(2, 64)
    assert not torch.allclose(without.forward_extracted(vfeat, afeat2), logits)

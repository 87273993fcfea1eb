"""The paper's ablation without selectors: the sync transformer attends over every token (issue 22)."""
import torch

from avsync.papers.sparsesync.module import build_sparsesync


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


def test_pretraining_continues_from_a_checkpoint(tmp_path):
    """Stage 0b (pre-training continued on sparse clips) starts from stage 0's weights."""
    from avsync.papers.sparsesync.selector_pretraining import SelectorContrastivePretraining

    torch.manual_seed(0)
    first = SelectorContrastivePretraining(arch="sparsesync_toy")
    path = tmp_path / "stage0.ckpt"
    torch.save({"state_dict": first.state_dict()}, path)
    torch.manual_seed(1)
    second = SelectorContrastivePretraining(arch="sparsesync_toy", init_from=str(path))
    for (name, a), b in zip(first.net.state_dict().items(), second.net.state_dict().values()):
        assert torch.equal(a, b), name
    torch.save({"state_dict": {k: v for k, v in first.state_dict().items() if "v_selector" not in k}}, path)
    try:
        SelectorContrastivePretraining(arch="sparsesync_toy", init_from=str(path))
    except ValueError as err:
        assert "missing" in str(err)
    else:
        raise AssertionError("a checkpoint without the selectors must not pass as stage 0")

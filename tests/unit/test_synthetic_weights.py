"""avsync.convert.synthetic_weights: the parity goldens' weights must regenerate exactly, from names and shapes alone."""
import torch

from avsync.convert.synthetic_weights import key_seed, read_layout, synthetic_state_dict, write_layout

LAYOUT = {
    "blocks.0.norm1.weight": [8], "blocks.0.norm1.bias": [8], "blocks.0.attn.qkv.weight": [24, 8],
    "bn.running_mean": [8], "bn.running_var": [8], "bn.num_batches_tracked": [], "cls_token": [1, 1, 8],
    "pos_embed": [1, 5, 8], "conv.weight": [8, 3, 1, 7, 7],
}


def test_values_depend_only_on_the_key_and_its_shape(tmp_path):
    a = synthetic_state_dict(LAYOUT)
    b = synthetic_state_dict(dict(reversed(list(LAYOUT.items()))))  # another order
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    write_layout(a, tmp_path / "layout.json")
    assert read_layout(tmp_path / "layout.json") == LAYOUT
    # fixed values: a change of the generator would invalidate every committed golden
    assert key_seed("conv.weight") == 8030178361211956326
    assert torch.allclose(a["blocks.0.norm1.bias"][:2], torch.tensor([0.4115807, 0.0618126]), atol=1e-6)


def test_constant_tensors_of_the_authors_init_are_random_here():
    s = synthetic_state_dict(LAYOUT)
    assert s["bn.num_batches_tracked"].dtype == torch.int64
    assert (s["bn.running_var"] > 0.4).all()                      # positive variances
    for key in ("blocks.0.norm1.weight", "blocks.0.norm1.bias", "bn.running_mean", "cls_token", "pos_embed"):
        assert s[key].std() > 0.05, key                            # no constant left
    assert s["conv.weight"].std().item() < 0.3                     # N(0, 1) / sqrt(fan_in = 147)

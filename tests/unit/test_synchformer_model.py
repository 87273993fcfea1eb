"""Synchformer (Iashin et al., ICASSP 2024): extractors, sync module, inputs, against the paper and official code.

docs/models.md: AST on 66x128 log-mel segments (16x16 patches, stride 10 -> 12x6), Motionformer with divided
space-time attention on 16x224x224 segments (tubelet 2 -> 8x14x14), AGG-token aggregation to 6 audio /
8 visual tokens per segment, 198-position sync transformer; official parameter counts.
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from avsync.papers.synchformer.ast import AST, ASTConfig
from avsync.papers.synchformer.motionformer import DividedAttention, Motionformer, MotionformerConfig
from avsync.papers.synchformer.network import SYNCHFORMER_CONFIGS, SegmentInputs, Synchformer, get_config
from conftest import SHARED

MANIFEST = SHARED / "spec" / "official_state_dicts" / "synchformer.json"
TOY = SYNCHFORMER_CONFIGS["synchformer_toy"]


def n_state(module: torch.nn.Module) -> int:
    return sum(v.numel() for v in module.state_dict().values())


@pytest.fixture(scope="module")
def full_on_meta() -> Synchformer:
    with torch.device("meta"):
        return Synchformer(get_config("synchformer"))


def test_parameter_counts_equal_the_official_ones(full_on_meta):
    m = full_on_meta
    assert n_state(m.vfeat_extractor) == 122_440_704
    assert n_state(m.afeat_extractor) == 92_400_384
    assert n_state(m.vproj) == n_state(m.aproj) == 590_592
    assert n_state(m.transformer) == 21_437_973
    assert m.transformer.pos_emb_cfg.pos_emb.shape[1] == 198 == m.cfg.num_positions


def test_layout_is_the_official_state_dict(full_on_meta):
    if not MANIFEST.is_file():
        pytest.fail(f"manifest not found at {MANIFEST} (set AVSYNC_SHARED)")
    manifest = json.loads(MANIFEST.read_text())["state_dict"]
    ours = {k: list(v.shape) for k, v in full_on_meta.state_dict().items()}
    assert ours == manifest


def _reference_divided_attention(attn: DividedAttention, x: torch.Tensor, frames: int, axis: str) -> torch.Tensor:
    """The official DividedAttention written out with explicit loops (CLS attends to all; each patch to
    its own frame (space) or its own spatial position (time), plus CLS)."""
    b, n, d = x.shape
    h, c = attn.heads, d // attn.heads
    q, k, v = (t.view(b, n, h, c) for t in attn.qkv(x).chunk(3, dim=-1))
    p = (n - 1) // frames
    out = torch.zeros(b, n, h, c)
    for i in range(n):
        if i == 0:
            keys = list(range(n))
        else:
            f, s = divmod(i - 1, p)
            group = [1 + f * p + j for j in range(p)] if axis == "space" else [1 + g * p + s for g in range(frames)]
            keys = [0] + group
        w = torch.einsum("bhc,bkhc->bhk", q[:, i], k[:, keys]) * c ** -0.5
        out[:, i] = torch.einsum("bhk,bkhc->bhc", w.softmax(-1), v[:, keys])
    return attn.proj(out.reshape(b, n, d))


@pytest.mark.parametrize("axis", ["space", "time"])
def test_divided_attention_matches_the_reference_computation(axis):
    torch.manual_seed(0)
    attn = DividedAttention(16, 4)
    frames, patches = 3, 4
    x = torch.randn(2, 1 + frames * patches, 16)
    torch.testing.assert_close(attn(x, frames, axis), _reference_divided_attention(attn, x, frames, axis),
                               atol=1e-5, rtol=1e-5)


def test_token_grids_per_segment():
    assert (ASTConfig().freq_tokens, ASTConfig().time_tokens) == (12, 6)
    assert (MotionformerConfig().time_tokens, MotionformerConfig().grid) == (8, 14)
    torch.manual_seed(0)
    m = Synchformer(TOY).eval()
    inputs = SegmentInputs(TOY)
    frames = torch.randint(0, 256, (2, 120, 32, 32, 3), dtype=torch.uint8)
    wav = torch.randn(2, 76_800)
    vis, aud = m.features(inputs.video(frames, 14, 0.5), inputs.audio(wav, 14, 0.5))
    assert vis.shape == (2, 14, 8, 64) and aud.shape == (2, 14, 6, 64)
    assert m.sync(vis, aud).shape == (2, 21)


def test_segments_are_cut_where_the_paper_says():
    inputs = SegmentInputs(TOY)
    frames = torch.arange(120).view(1, 120, 1, 1, 1).expand(1, 120, 2, 2, 3).to(torch.uint8)
    segs = inputs.video(frames, 14, 0.5)                    # half-overlapping: starts every 8 frames
    assert segs.shape == (1, 14, 3, 16, 2, 2)
    first_frame = ((segs[0, :, 0, 0, 0, 0] * 0.5 + 0.5) * 255).round().long()
    assert first_frame.tolist() == [8 * k for k in range(14)]
    assert torch.allclose(segs.amin(), torch.tensor(-1.0)) and segs.amax() <= 1.0  # mean = std = 0.5
    adjacent = inputs.video(frames[:, :112], 7, 1.0)
    assert ((adjacent[0, :, 0, 0, 0, 0] * 0.5 + 0.5) * 255).round().long().tolist() == [16 * k for k in range(7)]
    spec = inputs.audio(torch.randn(1, 10_240 * 7), 7, 1.0)
    assert spec.shape == (1, 7, 66, 64)                     # 65 STFT frames padded to 66, (time, mel)


def test_log_mel_normalisation_matches_the_official_pipeline():
    cfg = get_config("synchformer")
    inputs = SegmentInputs(cfg)
    wav = torch.randn(1, 10_240) * 0.1
    spec = inputs.audio(wav, 1, 1.0)[0, 0]                  # (66, 128)
    mel = torch.log(inputs.mel(wav)[0] + 1e-6)             # (128, 65)
    expected = (F.pad(mel, (0, 1)) + 4.2677393) / (2 * 4.5689974)
    torch.testing.assert_close(spec, expected.t())


def test_bad_inputs_raise_clear_errors():
    inputs = SegmentInputs(TOY)
    with pytest.raises(ValueError, match="need 120 frames"):
        inputs.video(torch.zeros(1, 100, 32, 32, 3, dtype=torch.uint8), 14, 0.5)
    with pytest.raises(ValueError, match="samples"):
        inputs.audio(torch.zeros(1, 1000), 14, 0.5)
    m = Synchformer(TOY)
    with pytest.raises(ValueError, match="Motionformer expects"):
        m.vfeat_extractor(torch.zeros(1, 2, 3, 16, 64, 64))
    with pytest.raises(ValueError, match="AST expects"):
        m.afeat_extractor(torch.zeros(1, 2, 66, 128))
    with pytest.raises(ValueError, match="unknown Synchformer arch"):
        get_config("synchformer_huge")


def test_motionformer_loads_original_checkpoint_layout(tmp_path):
    """An SSv2 Motionformer checkpoint ({'model_state': ...} with a classifier head) initialises the backbone."""
    torch.manual_seed(0)
    src = Motionformer(TOY.motionformer)
    state = {k: torch.randn_like(v) for k, v in src.state_dict().items() if not k.startswith("spatial_attn_agg.")}
    state["head.weight"], state["head.bias"] = torch.randn(174, 64), torch.randn(174)
    torch.save({"model_state": state, "epoch": 35}, tmp_path / "ssv2_divided.pyth")
    dst = Motionformer(TOY.motionformer)
    agg_before = dst.spatial_attn_agg.linear1.weight.clone()
    dst.load_motionformer_weights(tmp_path / "ssv2_divided.pyth")
    for k, v in state.items():
        if not k.startswith("head."):
            assert torch.equal(dst.state_dict()[k], v), k
    assert torch.equal(dst.spatial_attn_agg.linear1.weight, agg_before)
    del state["blocks.0.timeattn.qkv.weight"]
    torch.save({"model_state": state}, tmp_path / "broken.pyth")
    with pytest.raises(ValueError, match="timeattn"):
        dst.load_motionformer_weights(tmp_path / "broken.pyth")


def test_ast_loads_huggingface_audioset_layout(tmp_path):
    """ASTForAudioClassification keys (audio_spectrogram_transformer.*, classifier.*) with the 1024-frame
    position table: the table keeps its first 2 + f*t rows, as the official code does."""
    torch.manual_seed(0)
    src = AST(TOY.ast)
    state = {f"audio_spectrogram_transformer.{k}": torch.randn_like(v) for k, v in src.ast.state_dict().items()}
    pos = "audio_spectrogram_transformer.embeddings.position_embeddings"
    state[pos] = torch.randn(1, 2 + 5 * 101, 64)            # pre-trained for 1024 frames
    state["classifier.dense.weight"], state["classifier.dense.bias"] = torch.randn(527, 64), torch.randn(527)
    torch.save(state, tmp_path / "ast_audioset.bin")
    dst = AST(TOY.ast)
    dst.load_ast_weights(tmp_path / "ast_audioset.bin")
    assert torch.equal(dst.ast.embeddings.position_embeddings, state[pos][:, : 2 + 5 * 6])
    key = "encoder.layer.1.attention.attention.query.weight"
    assert torch.equal(dst.ast.state_dict()[key], state[f"audio_spectrogram_transformer.{key}"])

"""VocaLiST: size and layout of the official network, its computation rules, inputs, converter."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from avsync.registry import get_converter
from avsync.convert.cli import main as convert_main
from avsync.papers.vocalist.module import VocaLiSTModule
from avsync.papers.vocalist.network import (VOCALIST_CONFIGS, MultiheadAttention, VocaLiST, build_vocalist, future_mask,
                                    sinusoidal_positions)
from avsync.papers.vocalist.inputs import MouthFrames, VocaLiSTMel

from conftest import SHARED

MANIFEST = SHARED / "spec" / "official_state_dicts" / "vocalist.json"


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def manifest() -> dict[str, list[int]]:
    if not MANIFEST.is_file():
        pytest.fail(f"official state-dict manifest not found at {MANIFEST} (set AVSYNC_SHARED)")
    return json.loads(MANIFEST.read_text())["state_dict"]


@pytest.fixture(scope="module")
def official_state(manifest) -> dict[str, torch.Tensor]:
    """Random tensors with the official names and shapes (buffers as a real checkpoint has them)."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in manifest.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(77, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) / math.sqrt(max(1, math.prod(shape[1:])))
    return state


@pytest.fixture(scope="module")
def full_model():
    return VocaLiST()


# -- size and layout -------------------------------------------------------------------------------
def test_parameter_count_equals_official_code(full_model):
    assert n_params(full_model) == 80_106_561
    assert 38.5e6 < n_params(full_model.vid_prenet) < 38.7e6   # paper: visual encoder 38.6M
    assert 3.3e6 < n_params(full_model.aud_prenet) < 3.5e6     # paper: audio encoder 3.4M


def test_layout_is_the_official_one_minus_two_meaningless_buffers(full_model, manifest):
    own = {k: list(v.shape) for k, v in full_model.state_dict().items()}
    dropped = {k for k in manifest if k not in own}
    assert dropped == {f"{t}.{b}" for t in ("av_transformer", "va_transformer", "mem_transformer")
                       for b in ("version", "embed_positions._float_tensor")}
    assert own == {k: v for k, v in manifest.items() if k not in dropped}


def test_converter_loads_strict_and_keeps_every_value(official_state):
    conv = get_converter("vocalist")
    model = conv.load_official({"state_dict": official_state, "optimizer": {"lr": [5e-5]}, "global_step": 3})
    own = model.state_dict()
    for key, value in conv.checkpoint_filter_fn(official_state, model).items():
        assert torch.equal(own[key], value), key
    assert conv.checkpoint_filter_fn(conv.checkpoint_filter_fn(official_state)) == conv.checkpoint_filter_fn(official_state)


def test_converter_infers_a_narrow_config_and_rejects_foreign_weights():
    conv = get_converter("vocalist")
    toy = build_vocalist("vocalist_toy")
    loaded = conv.load_official(toy.state_dict(), arch="vocalist_toy")
    assert loaded.cfg == toy.cfg
    with pytest.raises(ValueError, match="not a VocaLiST"):
        conv.load_official({"fc.weight": torch.zeros(2, 2)})
    state = toy.state_dict()
    state["classifier.weight"] = torch.zeros(1, 7)
    with pytest.raises(ValueError, match="shape mismatches"):
        conv.load_official(state, arch="vocalist_toy")


def test_convert_cli_round_trip(official_state, tmp_path):
    src, dst = tmp_path / "vocalist_5f_lrs2.pth", tmp_path / "vocalist.ckpt"
    torch.save({"state_dict": official_state, "optimizer": None, "global_step": 10, "global_epoch": 1}, src)
    assert convert_main(["--model", "vocalist", "--src", str(src), "--dst", str(dst)]) == 0
    ckpt = torch.load(dst, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"] == {"arch": "vocalist", "arch_overrides": {}}
    head = official_state["classifier.weight"]
    module = VocaLiSTModule.load_from_checkpoint(dst, map_location="cpu", weights_only=True)
    assert torch.equal(module.net.classifier.weight, head)
    assert torch.equal(module.net.vid_prenet[16].conv_block[1].running_var,
                       official_state["vid_prenet.16.conv_block.1.running_var"])
    assert torch.equal(VocaLiSTModule(init_from=str(dst)).net.mem_transformer.layers[3].fc2.bias,
                       official_state["mem_transformer.layers.3.fc2.bias"])


# -- computation -------------------------------------------------------------------------------------
def test_full_size_shapes_any_length(full_model):
    full_model.eval()
    with torch.no_grad():
        vis = full_model.encode_visual(torch.rand(1, 5, 3, 48, 96))
        aud = full_model.encode_audio(torch.rand(1, 1, 80, 16))
    assert vis.shape == (1, 5, 512) and aud.shape == (1, 16, 512)


@pytest.mark.parametrize("frames", [1, 5, 9])
def test_toy_model_takes_any_length_and_the_reference_layout(frames):
    torch.manual_seed(0)
    net = build_vocalist("vocalist_toy").eval()
    x, mel = torch.rand(2, frames, 3, 48, 96), torch.rand(2, 1, 80, int(3.2 * frames) or 1)
    with torch.no_grad():
        out = net(x, mel)
        ref_layout = net(x.flatten(1, 2), mel)                        # (B, 3T, 48, 96) as the official code
    assert out.shape == (2,) and torch.isfinite(out).all()
    assert torch.equal(out, ref_layout)


def test_bad_inputs_raise_clear_errors():
    net = build_vocalist("vocalist_toy")
    with pytest.raises(ValueError, match="48, 96"):
        net(torch.rand(1, 5, 3, 96, 96), torch.rand(1, 1, 80, 16))
    with pytest.raises(ValueError, match="80"):
        net(torch.rand(1, 5, 3, 48, 96), torch.rand(1, 1, 64, 16))


def test_future_mask_is_the_references_offset_triangle():
    mask = future_mask(3, 5, "cpu", torch.float32)
    # query i sees keys j < i + 1 + |5 - 3|
    assert torch.equal(torch.isinf(mask), torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]).bool())
    assert not torch.isinf(future_mask(16, 5, "cpu", torch.float32)).all(-1).any()  # every query sees a key


def test_positions_skip_tokens_whose_first_channel_is_zero():
    x = torch.ones(1, 4, 8)
    x[0, 1, 0] = 0.0
    pe = sinusoidal_positions(x)
    assert torch.equal(pe[0, 1], torch.zeros(8))
    # positions count from 1 (fairseq, padding_idx 0): sin(1 * freq_0) in channel 0
    assert pe[0, 0, 0] == pytest.approx(math.sin(1.0)) and pe[0, 2, 0] == pytest.approx(math.sin(3.0))


def test_attention_equals_explicit_softmax_with_mask():
    torch.manual_seed(0)
    attn = MultiheadAttention(16, 4).eval()
    q, k = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    mask = future_mask(3, 5, "cpu", torch.float32)
    w, b = attn.in_proj_weight, attn.in_proj_bias
    heads = lambda t: t.unflatten(-1, (4, 4)).transpose(1, 2)  # noqa: E731
    qh, kh, vh = heads(F.linear(q, w[:16], b[:16])), heads(F.linear(k, w[16:32], b[16:32])), heads(F.linear(k, w[32:], b[32:]))
    weights = torch.softmax(qh * 4 ** -0.5 @ kh.transpose(-1, -2) + mask, -1)
    expected = attn.out_proj((weights @ vh).transpose(1, 2).flatten(2))
    assert torch.allclose(attn(q, k, k, mask), expected, atol=1e-6)


# -- inputs ------------------------------------------------------------------------------------------------
def test_mel_has_16_frames_per_5_video_frames_in_the_official_range():
    wav = torch.randn(3, 3200) * 0.1
    mel = VocaLiSTMel()(wav)
    assert mel.shape == (3, 1, 80, 16)
    assert mel.min() >= -4 and mel.max() <= 4 and mel.std() > 0.1
    # the official script's formula, with torchaudio's MelScale as it calls it
    from torchaudio.transforms import MelScale
    spec = torch.stft(wav, 800, 200, 800, window=torch.hann_window(800), return_complex=True).abs()
    ref = MelScale(n_mels=80, sample_rate=16000, f_min=55, f_max=7600, n_stft=401, norm="slaney",
                   mel_scale="slaney")(spec)
    ref = (8 * ((20 * torch.log10(ref.clamp(min=1e-5)) - 20 + 100) / 100) - 4).clip(-4, 4)[:, :, :-1]
    assert torch.allclose(mel[:, 0], ref, atol=1e-5)
    silent = VocaLiSTMel()(torch.zeros(1, 3200))
    assert torch.equal(silent, torch.full_like(silent, -4.0))  # -100 dB floor -> -4


def test_mouth_frames_are_bgr_in_unit_range_and_resized():
    frames = torch.zeros(1, 2, 32, 32, 3, dtype=torch.uint8)
    frames[..., 0] = 255                                  # pure red in RGB
    out = MouthFrames()(frames)
    assert out.shape == (1, 2, 3, 48, 96)
    assert torch.allclose(out[:, :, 2], torch.ones(1, 2, 48, 96)) and out[:, :, :2].abs().max() == 0


def test_variable_length_training_draws_a_window_per_batch_and_backpropagates(monkeypatch):
    torch.manual_seed(0)
    module = VocaLiSTModule(arch="vocalist_toy", input_overrides={"crop": "full", "frame_size": 32},
                            clip_frames=39, train_window_frames=[5, 9], eval_contexts=[5])
    monkeypatch.setattr(module, "log", lambda *a, **k: None)
    batch = {"video": torch.randint(0, 256, (2, 39, 32, 32, 3), dtype=torch.uint8),
             "audio": torch.randn(2, 39 * 640) * 0.1, "target": torch.tensor([0, 0])}
    seen = set()
    original = module.draw_pairs

    def spy(batch, window):
        seen.add(window)
        return original(batch, window)

    monkeypatch.setattr(module, "draw_pairs", spy)
    for _ in range(8):
        loss = module.training_step(batch, 0)
        loss.backward()
    assert seen == {5, 9}
    assert module.net.vid_prenet[0].conv_block[0].weight.grad.abs().sum() > 0
    assert module.input_spec.num_frames == 39 and module.input_spec.max_frame_shift == 0
    with pytest.raises(ValueError, match="cannot hold"):
        VocaLiSTModule(arch="vocalist_toy", clip_frames=40, train_window_frames=[15])

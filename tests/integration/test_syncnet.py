"""SyncNet: the official two-stream network, its MFCC front end, the contrastive loss, the converter."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from avsync.registry import get_converter
from avsync.convert.cli import main as convert_main
from avsync.papers.syncnet.module import SyncNetFrames, SyncNetModule
from avsync.papers.syncnet.network import MFCC, SyncNet, build_syncnet, contrastive_loss

from conftest import SHARED

MANIFEST = SHARED / "spec" / "official_state_dicts" / "syncnet.json"


@pytest.fixture(scope="module")
def manifest() -> dict[str, list[int]]:
    if not MANIFEST.is_file():
        pytest.fail(f"official state-dict manifest not found at {MANIFEST} (set AVSYNC_SHARED)")
    return json.loads(MANIFEST.read_text())["state_dict"]


@pytest.fixture(scope="module")
def official_state(manifest) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in manifest.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(5, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) / math.sqrt(max(1, math.prod(shape[1:])))
    return state


def test_parameter_count_and_layout_equal_the_official_code(manifest):
    net = SyncNet()
    assert sum(p.numel() for p in net.parameters()) == 13_631_616
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == manifest


def test_converter_loads_strict_and_keeps_every_value(official_state):
    conv = get_converter("syncnet")
    model = conv.load_official(official_state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, official_state[key]), key
    toy = build_syncnet("syncnet_toy")
    assert conv.load_official(toy.state_dict(), arch="syncnet_toy").cfg == toy.cfg
    with pytest.raises(ValueError, match="not a SyncNet"):
        conv.load_official({"netcnnaud.0.weight": torch.zeros(64, 1, 3, 3)})


def test_convert_cli_round_trip(official_state, tmp_path):
    src, dst = tmp_path / "syncnet_v2.model", tmp_path / "syncnet.ckpt"
    torch.save(official_state, src)
    assert convert_main(["--model", "syncnet", "--src", str(src), "--dst", str(dst)]) == 0
    ckpt = torch.load(dst, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"] == {"arch": "syncnet", "arch_overrides": {}}
    module = SyncNetModule.load_from_checkpoint(dst, map_location="cpu", weights_only=True)
    assert torch.equal(module.net.netfclip[3].weight, official_state["netfclip.3.weight"])
    assert torch.equal(module.net.netcnnlip[19].running_mean, official_state["netcnnlip.19.running_mean"])


def test_full_size_streams_embed_a_5_frame_window(official_state):
    net = get_converter("syncnet").load_official(official_state).eval()
    with torch.no_grad():
        lip = net.forward_lip(torch.rand(2, 3, 5, 224, 224) * 255)
        aud = net.forward_aud(torch.randn(2, 1, 13, 20))
    assert lip.shape == aud.shape == (2, 1024)
    with pytest.raises(ValueError, match="224"):
        net.forward_lip(torch.rand(1, 3, 5, 112, 112))
    with pytest.raises(ValueError, match="13, 20"):
        net.forward_aud(torch.randn(1, 1, 13, 16))


def test_mfcc_gives_4_cepstra_per_video_frame_and_log_energy_first():
    mfcc = MFCC()
    wav = torch.randn(2, 3200) * 0.1
    out = mfcc(wav, num_frames=20)
    assert out.shape == (2, 1, 13, 20)
    # c0 is the log energy of the pre-emphasised, int16-scaled first frame (400 samples, 512-point FFT)
    x = wav[0] * 32768
    x = torch.cat([x[:1], x[1:] - 0.97 * x[:-1]])[:400]
    energy = (torch.fft.rfft(x, n=512).abs() ** 2 / 512).sum()
    assert out[0, 0, 0, 0] == pytest.approx(float(torch.log(energy)), rel=1e-4)
    # without num_frames: python_speech_features' count, 1 + ceil((S - 400) / 160)
    assert mfcc(torch.randn(1, 3440)).shape[-1] == 20 and mfcc(torch.randn(1, 3200)).shape[-1] == 19


def test_contrastive_loss_pulls_in_sync_pairs_and_pushes_others_to_the_margin():
    d = torch.tensor([1.0, 3.0, 25.0])
    y = torch.tensor([1.0, 0.0, 0.0])
    # in sync: d^2; shifted: max(20 - d, 0)^2; halved mean
    assert contrastive_loss(d, y, margin=20.0).item() == pytest.approx(0.5 * (1 + 17 ** 2 + 0) / 3)


def test_module_scores_are_negative_distances_and_frames_are_bgr_0_255():
    torch.manual_seed(0)
    module = SyncNetModule(arch="syncnet_toy", clip_frames=36, eval_contexts=[5]).eval()
    frames = torch.randint(0, 256, (3, 5, 32, 32, 3), dtype=torch.uint8)
    wav = torch.randn(3, 3200) * 0.1
    with torch.no_grad():
        assert torch.allclose(module.pair_scores(frames, wav), -module(frames, wav), atol=1e-5)
    x = SyncNetFrames()(torch.full((1, 5, 224, 224, 3), 0, dtype=torch.uint8).index_fill_(-1, torch.tensor([2]), 200))
    assert x.shape == (1, 3, 5, 224, 224) and x[0, 0].eq(200).all() and x[0, 1:].eq(0).all()


def test_frames_are_antialiased_only_when_shrunk():
    """Upscaling small (toy) frames skips the antialiasing kernel: same values within 1e-3 of 255;
    a larger frame is shrunk with antialiasing, as before."""
    def reference(frames):
        x = frames.permute(0, 1, 4, 2, 3).float().flip(2)
        y = F.interpolate(x.flatten(0, 1), size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
        return y.unflatten(0, x.shape[:2]).transpose(1, 2)

    torch.manual_seed(0)
    for side in (64, 320):
        frames = torch.randint(0, 256, (2, 5, side, side, 3), dtype=torch.uint8)
        assert (SyncNetFrames()(frames) - reference(frames)).abs().max() < 1e-3, side

"""DiVAS network: parameter counts, variable frame/sample rates in one batch, time-aware positions."""
import pytest
import torch

from avsync.papers.divas.network import (
    DIVAS_CONFIGS, DiVAS, DiVASConfig, audio_positions, pad_windows, sinusoid_1d, sinusoid_3d, video_positions,
)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("arch, paper", [("divas_face", 4.8e6), ("divas_frame", 17e6)])
def test_parameter_count_matches_paper(arch, paper):
    count = n_params(DiVAS(DIVAS_CONFIGS[arch]))
    assert abs(count - paper) / paper < 0.10, f"{arch}: {count:,} parameters, paper {paper:,.0f}"


def test_paper_topology_in_every_registered_config():
    for cfg in DIVAS_CONFIGS.values():
        assert (cfg.depth, cfg.heads, cfg.patch_hw, cfg.patch_frames, cfg.audio_patch) == (3, 3, 16, 1, 128)
    assert DIVAS_CONFIGS["divas_face"].mlp_dim == DIVAS_CONFIGS["divas_frame"].mlp_dim == 1024
    assert (DIVAS_CONFIGS["divas_face"].frame_size, DIVAS_CONFIGS["divas_frame"].frame_size) == (96, 240)


@pytest.mark.parametrize("fps, frames, sr, samples", [(25, 5, 16000, 3200), (30, 6, 16000, 3200),
                                                        (60, 12, 48000, 9600)])
def test_window_of_0_2_s_at_own_rates(fps, frames, sr, samples):
    torch.manual_seed(0)
    net = DiVAS(DIVAS_CONFIGS["divas_face"]).eval()
    z_v, z_a = net(torch.randn(2, frames, 3, 96, 96), torch.randn(2, samples), fps, sr)
    assert z_v.shape == z_a.shape == (2, 246)
    assert net.distance(z_v, z_a).shape == (2,)


def test_mixed_rates_in_one_padded_batch_equal_separate_runs():
    torch.manual_seed(0)
    net = DiVAS(DIVAS_CONFIGS["divas_toy"]).eval()
    v25, v60 = torch.randn(5, 3, 32, 32), torch.randn(12, 3, 32, 32)
    a16, a48 = torch.randn(3200), torch.randn(9600)
    video, audio, n_f, n_s = pad_windows([v25, v60], [a16, a48])
    assert video.shape == (2, 12, 3, 32, 32) and audio.shape == (2, 9600)
    with torch.no_grad():
        z_v, z_a = net(video, audio, torch.tensor([25.0, 60.0]), torch.tensor([16000, 48000]), n_f, n_s)
        alone_v25, alone_a16 = net(v25[None], a16[None], 25, 16000)
        alone_v60, alone_a48 = net(v60[None], a48[None], 60, 48000)
    torch.testing.assert_close(z_v[0], alone_v25[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(z_a[0], alone_a16[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(z_v[1], alone_v60[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(z_a[1], alone_a48[0], atol=1e-5, rtol=1e-4)
    # padding really is masked: garbage in the padded frames changes nothing
    video[0, 5:] = 100.0
    with torch.no_grad():
        z_v_garbage, _ = net(video, audio, torch.tensor([25.0, 60.0]), 16000, n_f)
    torch.testing.assert_close(z_v_garbage[0], alone_v25[0], atol=1e-5, rtol=1e-4)


def test_same_instants_get_same_time_positions_at_25_and_50_fps():
    z25 = video_positions(5, 25.0)
    z50 = video_positions(10, 50.0)
    torch.testing.assert_close(z50[::2], z25)  # frame 2k at 50 fps is shown when frame k at 25 fps is
    torch.testing.assert_close(z25, torch.tensor([0.0, 4.0, 8.0, 12.0, 16.0], dtype=torch.float64))
    grid = torch.arange(6, dtype=torch.float64)
    torch.testing.assert_close(sinusoid_3d(grid, grid, z50, 246)[::2], sinusoid_3d(grid, grid, z25, 246))
    # audio: 128-sample patch 3k at 48 kHz starts when patch k at 16 kHz does
    torch.testing.assert_close(audio_positions(75, 48000)[::3], audio_positions(25, 16000))
    torch.testing.assert_close(sinusoid_1d(audio_positions(75, 48000), 48)[::3],
                               sinusoid_1d(audio_positions(25, 16000), 48))
    # audio and video share the time scale: 0.04 s is position 4 in both
    assert float(audio_positions(26, 16000)[5]) == pytest.approx(4.0)


def test_plain_encoding_counts_frames_instead():
    z25 = video_positions(5, 25.0, time_aware=False)
    z50 = video_positions(10, 50.0, time_aware=False)
    assert not torch.equal(z50[::2], z25)
    torch.testing.assert_close(z50[:5], z25)  # the "Base" model sees frame indices only
    torch.testing.assert_close(audio_positions(4, 48000, time_aware=False), torch.arange(4.0, dtype=torch.float64))


def test_time_aware_switch_changes_the_network_input():
    torch.manual_seed(0)
    aware = DiVAS(DIVAS_CONFIGS["divas_toy"]).eval()
    base = DiVAS(DiVASConfig(**{**DIVAS_CONFIGS["divas_toy"].__dict__, "time_aware": False})).eval()
    base.load_state_dict(aware.state_dict())  # same weights: only the positions differ
    frames = torch.randn(1, 5, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(aware.encode_video(frames, 25), base.encode_video(frames, 25))


def test_sinusoid_3d_layout_follows_eq_2():
    x, y, z = (torch.tensor([float(v)]) for v in (2, 3, 5))
    pe = sinusoid_3d(x, y, z, 12)[0, 0, 0]  # D = 12: each third has 2 frequencies (i = 0, 1)
    freqs = torch.tensor([1.0, 10000.0 ** (-6 / 12)], dtype=torch.float64)
    expected = []
    for pos in (2.0, 3.0, 5.0):
        expected += [torch.sin(pos * freqs[0]), torch.cos(pos * freqs[0]), torch.sin(pos * freqs[1]),
                     torch.cos(pos * freqs[1])]
    torch.testing.assert_close(pe, torch.stack(expected))


def test_bad_inputs_are_rejected_clearly():
    net = DiVAS(DIVAS_CONFIGS["divas_toy"])
    with pytest.raises(ValueError, match="multiple of 6"):
        DiVASConfig(dim=50)
    with pytest.raises(ValueError, match=r"\(B, F, 3, H, W\)"):
        net.encode_video(torch.zeros(1, 5, 32, 32, 3), 25)
    with pytest.raises(ValueError, match="patches"):
        net.encode_video(torch.zeros(1, 5, 3, 30, 30), 25)
    with pytest.raises(ValueError, match="mono"):
        net.encode_audio(torch.zeros(1, 2, 3200), 16000)
    with pytest.raises(ValueError, match="per-item"):
        net.encode_audio(torch.zeros(2, 3200), torch.tensor([16000, 16000, 16000]))

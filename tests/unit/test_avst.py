"""AVST architecture: the paper's parameter counts, shapes, variable length, variants, clear errors."""
import pytest
import torch

from avsync.papers.avst.network import AVST, AVST_CONFIGS, AudioSpectrogram, AVSTConfig, LightVGGM, ResNet18TwoPlusThreeD

PAPER_PARAMS = {"avst_enc": 42.6e6, "avst_dec": 44.5e6, "avst_enc_mp": 42.4e6}  # Table 2


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("arch", sorted(PAPER_PARAMS))
def test_parameter_counts_within_3_percent_of_the_paper(arch):
    with torch.device("meta"):
        n = _count(AVST(AVST_CONFIGS[arch]))
    assert abs(n / PAPER_PARAMS[arch] - 1) <= 0.03, f"{arch}: {n:,} parameters vs {PAPER_PARAMS[arch]:,.0f}"


def test_variants_differ_where_the_paper_says():
    with torch.device("meta"):
        enc, mp, dec = (AVST(AVST_CONFIGS[a]) for a in ("avst_enc", "avst_enc_mp", "avst_dec"))
    assert _count(mp) < _count(enc) < _count(dec)          # enc-mp drops E_s, dec adds cross-attention
    assert _count(enc.visual) == _count(dec.visual) and _count(enc.audio) == _count(dec.audio)
    assert enc.cfg.depth == 3 and enc.cfg.heads == 4 and enc.cfg.dim == 512


def test_full_size_feature_shapes():
    """224x224 frames -> 512x14x14 per frame; 16 spectrogram columns (window 320, hop 40) per frame."""
    cfg = AVST_CONFIGS["avst_enc"]
    visual = ResNet18TwoPlusThreeD(cfg.visual_widths).eval()
    with torch.no_grad():
        assert visual(torch.randn(1, 2, 3, 224, 224)).shape == (1, 2, 512, 14, 14)
    spec = AudioSpectrogram(320, 40)(torch.randn(2, 5 * 640))
    assert spec.shape == (2, 1, 161, 80)
    audio = LightVGGM(cfg.freq_bins, cfg.audio_widths, 512).eval()
    with torch.no_grad():
        assert audio(spec).shape == (2, 5, 512)


@pytest.mark.parametrize("arch", ["avst_enc_toy", "avst_enc_mp_toy", "avst_dec_toy"])
@pytest.mark.parametrize("frames", [5, 9, 15])
def test_variable_length_scores(arch, frames):
    net = AVST(AVST_CONFIGS[arch]).eval()
    video = torch.randn(2, frames, 3, 64, 64)
    spec = AudioSpectrogram()(torch.randn(2, frames * 640))
    with torch.no_grad():
        scores = net(video, spec)
        matrix = net.score_matrix(video, spec)
    assert scores.shape == (2,) and torch.isfinite(scores).all()
    assert matrix.shape == (2, 2)
    torch.testing.assert_close(matrix.diagonal(), scores, rtol=1e-4, atol=1e-5)  # s_ii = score of pair i


def test_score_matrix_pairs_visual_i_with_audio_j():
    net = AVST(AVST_CONFIGS["avst_enc_mp_toy"]).eval()
    video, spec = torch.randn(3, 5, 3, 64, 64), AudioSpectrogram()(torch.randn(3, 3200))
    with torch.no_grad():
        matrix = net.score_matrix(video, spec)
        s_02 = net(video[:1], spec[2:3])
    torch.testing.assert_close(matrix[0, 2:3], s_02, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(matrix[0, 1], matrix[1, 0])


def test_low_frame_rate_audio_is_averaged_to_one_token_per_frame():
    """VGG-Sound Sync: 5 fps frames, audio at its own rate (5 tokens per frame) averaged per frame."""
    net = AVST(AVST_CONFIGS["avst_dec_toy"]).eval()
    spec = AudioSpectrogram()(torch.randn(1, 10 * 3200))  # 2 s of audio, 10 frames at 5 fps
    with torch.no_grad():
        assert net.audio_features(spec, 10).shape == (1, 10, 64)
        assert net(torch.randn(1, 10, 3, 64, 64), spec).shape == (1,)


def test_dec_attention_covers_the_visual_grid():
    net = AVST(AVST_CONFIGS["avst_dec_toy"]).eval()
    net.sync.record_attention(True)
    with torch.no_grad():
        net(torch.randn(1, 5, 3, 64, 64), AudioSpectrogram()(torch.randn(1, 3200)))
    att = net.sync.last_attention
    assert att.shape == (1, 4, 1 + 5, 5 * 4 * 4)  # heads, [CLS; 5 audio] queries, 5 frames x 4x4 grid
    torch.testing.assert_close(att.sum(-1), torch.ones(1, 4, 6))


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown AVST variant"):
        AVSTConfig(variant="encoder")
    net = AVST(AVST_CONFIGS["avst_enc_toy"]).eval()
    spec = AudioSpectrogram()(torch.randn(1, 3200))
    with pytest.raises(ValueError, match="16 x the config's grid"):
        net(torch.randn(1, 5, 3, 96, 96), spec)
    with pytest.raises(ValueError, match="max_frames"):
        net(torch.randn(1, 31, 3, 64, 64), AudioSpectrogram()(torch.randn(1, 31 * 640)))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        net(torch.randn(1, 5, 64, 64, 3), spec)
    with pytest.raises(ValueError, match="multiple of the hop"):
        AudioSpectrogram()(torch.randn(1, 3201))

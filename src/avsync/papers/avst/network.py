"""AVST (Chen et al., BMVC 2021): a transformer that scores how well a visual and an audio clip are in sync.

    frames (B, T, 3, 224, 224) --ResNet18 2D+3D--> (B, T, 512, 14, 14) ┐  + modality / temporal /
    spectrogram (B, 1, 161, 16T) --light VGG-M--> (B, T, 512)          ┘    spatial encodings
        enc     [CLS; T·14·14 visual tokens; T audio tokens] -> 3 encoder layers
        enc-mp  [CLS; T spatially max-pooled visual tokens; T audio tokens] -> 3 encoder layers
        dec     queries [CLS; T audio tokens], keys/values the dense visual tokens -> 3 decoder layers
    -> MLP head on [CLS] -> one synchronisation score s_ij (higher = more in sync)

The paper gives no code; the layout below is the reading of its text (§3.1, App. A) that also
meets its parameter counts (Table 2: enc 42.6M, dec 44.5M, enc-mp 42.4M; see ``tests/unit/test_avst.py``):

* visual, "ResNet18 2D+3D": a 3D convolutional stem (5x7x7, as the lip-reading front-ends of the
  same group), the 2D ResNet18 stages 1-3, and stage 4 with 3x3x3 (3D) convolutions and spatial
  stride 1, so 224x224 frames give 512x14x14 per frame with temporal context;
* audio, "light VGG-M": the SyncNet/AVobjects audio VGG-M (64-192-384-256-256 3x3 convolutions)
  on a log-spectrogram (FFT window 320, hop 40 at 16 kHz: 16 spectrogram columns per 25 fps
  frame), fc6 spanning the remaining frequencies, fc7 over neighbouring frames: one 512-d token
  per 40 ms; at lower frame rates (VGG-Sound Sync at 5 fps) the tokens are averaged to one per
  video frame;
* transformer: 3 pre-norm layers, 4 heads, 512 dims, MLP 2048 (``transformer_blocks``); the
  decoder layers have self-attention among the queries, cross-attention to the visual tokens
  and an MLP. With these the counts are enc 42.07M, enc-mp 41.97M, dec 45.22M: within 1.3 %,
  1.0 % and 1.7 % of the paper (its dec − enc = 1.9M is less than one cross-attention per layer,
  3 x 1.05M, so no layout with standard decoder layers meets all three exactly).

Variable length: every input of 1 to ``max_frames`` frames is accepted (5-15 at 25 fps, 5-30 at
5 fps in the paper); temporal encodings are tables of ``max_frames`` rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock

from avsync.nn.transformer_blocks import Block, CrossBlock

__all__ = ["AVSTConfig", "AVST_CONFIGS", "AVST", "ResNet18TwoPlusThreeD", "LightVGGM", "AudioSpectrogram"]

VARIANTS = ("enc", "enc-mp", "dec")


@dataclass
class AVSTConfig:
    """Every size AVST depends on; ``AVST_CONFIGS`` names the paper's variants and the toy ones."""

    variant: str = "enc-mp"             # "enc" | "enc-mp" | "dec"
    dim: int = 512                      # c: feature channels = transformer width
    depth: int = 3                      # transformer layers (Table 3: 1, 2, 3)
    heads: int = 4
    mlp_ratio: int = 4                  # transformer MLP width = mlp_ratio * dim
    max_frames: int = 30                # longest input (frames) -> temporal encoding rows
    grid: int = 14                      # h = w of the visual feature map (224 / 16)
    visual_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    audio_widths: tuple[int, int, int, int, int] = (64, 192, 384, 256, 256)
    n_fft: int = 320                    # spectrogram FFT window (App. A)
    hop_length: int = 40                # spectrogram hop (App. A): 16 columns per 25 fps frame
    sample_rate: int = 16000
    dropout: float = 0.1
    encoding_std: float = 0.02          # N(0, std) init of [CLS] and the encoding tables

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown AVST variant {self.variant!r}; choose one of {VARIANTS}")
        if self.visual_widths[-1] != self.dim:
            raise ValueError(f"visual features are {self.visual_widths[-1]}-d, the transformer {self.dim}-d")

    @property
    def freq_bins(self) -> int:
        return self.n_fft // 2 + 1


AVST_CONFIGS: dict[str, AVSTConfig] = {
    "avst_enc": AVSTConfig(variant="enc"),
    "avst_enc_mp": AVSTConfig(variant="enc-mp"),
    "avst_dec": AVSTConfig(variant="dec"),
    **{f"avst_enc_mp_depth{d}": AVSTConfig(variant="enc-mp", depth=d) for d in (1, 2, 3)},
    # toy scale: the same topology, 1/8 width (64-d transformer), for 64 px frames (4x4 grid) on a CPU
    **{f"avst_{name}_toy": AVSTConfig(variant=v, dim=64, depth=2, heads=4, grid=4,
                                      visual_widths=(8, 16, 32, 64), audio_widths=(8, 24, 48, 32, 32),
                                      dropout=0.0, encoding_std=1.0)
       for name, v in (("enc", "enc"), ("enc_mp", "enc-mp"), ("dec", "dec"))},
}


# --------------------------------------------------------------------------------------------
# Backbones
# --------------------------------------------------------------------------------------------
class BasicBlock3D(nn.Module):
    """ResNet basic block with 3x3x3 convolutions (temporal padding keeps the frame count)."""

    def __init__(self, inplanes: int, planes: int):
        super().__init__()
        self.conv1 = nn.Conv3d(inplanes, planes, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv3d(inplanes, planes, 1, bias=False), nn.BatchNorm3d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18TwoPlusThreeD(nn.Module):
    """(B, T, 3, H, W) normalised frames -> (B, T, C, H/16, W/16): 3D stem, 2D stages 1-3, 3D stage 4."""

    def __init__(self, widths: tuple[int, int, int, int] = (64, 128, 256, 512)):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(
            nn.Conv3d(3, w1, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(w1), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.layer1 = _layer2d(w1, w1, stride=1)
        self.layer2 = _layer2d(w1, w2, stride=2)
        self.layer3 = _layer2d(w2, w3, stride=2)
        self.layer4 = nn.Sequential(BasicBlock3D(w3, w4), BasicBlock3D(w4, w4))
        self.out_channels = w4
        _init_convs(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        x = self.stem(x.transpose(1, 2))                       # (B, C, T, H/4, W/4)
        c, h, w = x.shape[1], x.shape[3], x.shape[4]
        x = x.transpose(1, 2).reshape(b * t, c, h, w)          # frames through the 2D stages
        x = self.layer3(self.layer2(self.layer1(x)))
        x = x.reshape(b, t, *x.shape[1:]).transpose(1, 2)      # (B, C, T, h, w)
        return self.layer4(x).transpose(1, 2)                  # (B, T, C, h, w)


def _layer2d(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
    return nn.Sequential(BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes))


class LightVGGM(nn.Module):
    """(B, 1, F, 16·T) log-spectrogram -> (B, T, C): SyncNet-style audio VGG-M, one token per 16 columns.

    conv1-5 as the SyncNet/AVobjects audio stream; fc6 spans every remaining frequency row (one
    column wide), a max-pool over 4 columns leaves one position per video frame (16 columns =
    40 ms at hop 2.5 ms), and fc7 mixes each token with its neighbours (kernel 3 over frames).
    """

    def __init__(self, freq_bins: int, widths: tuple[int, int, int, int, int] = (64, 192, 384, 256, 256),
                 out_channels: int = 512):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.features = nn.Sequential(
            _conv_bn(1, c1, stride=(2, 1)), nn.MaxPool2d((3, 1), stride=(2, 1), padding=(1, 0)),
            _conv_bn(c1, c2), nn.MaxPool2d(3, stride=2, padding=1),
            _conv_bn(c2, c3), _conv_bn(c3, c4), _conv_bn(c4, c5), nn.MaxPool2d(3, stride=2, padding=1),
        )
        with torch.no_grad():
            f_out = self.features(torch.zeros(1, 1, freq_bins, 16)).shape[2]
        self.fc6 = nn.Sequential(nn.Conv2d(c5, out_channels, (f_out, 1)), nn.BatchNorm2d(out_channels),
                                 nn.ReLU(inplace=True), nn.MaxPool2d((1, 4)))
        self.fc7 = nn.Sequential(nn.Conv2d(out_channels, out_channels, (1, 3), padding=(0, 1)),
                                 nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        self.out_channels = out_channels
        _init_convs(self)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if spec.ndim != 4 or spec.shape[1] != 1:
            raise ValueError(f"the spectrogram must be (B, 1, F, columns), got {tuple(spec.shape)}")
        if spec.shape[-1] % 16:
            raise ValueError(f"the spectrogram has {spec.shape[-1]} columns; 16 columns make one token")
        return self.fc7(self.fc6(self.features(spec))).squeeze(2).transpose(1, 2)


def _conv_bn(cin: int, cout: int, stride: tuple[int, int] | int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _init_convs(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class AudioSpectrogram(nn.Module):
    """Waveform (B, S) -> (B, 1, n_fft/2+1, S/hop): log power STFT, standardised per frequency over time.

    ``center=True`` framing minus the last column gives exactly ``S / hop`` columns, so a window
    of T frames at 25 fps (T·640 samples) gives 16·T columns.
    """

    def __init__(self, n_fft: int = 320, hop_length: int = 40, eps: float = 1e-6):
        super().__init__()
        self.n_fft, self.hop_length, self.eps = n_fft, hop_length, eps
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.ndim != 2:
            raise ValueError(f"waveforms must be (B, S), got {tuple(wav.shape)}")
        if wav.shape[1] % self.hop_length:
            raise ValueError(f"{wav.shape[1]} samples is not a multiple of the hop {self.hop_length}")
        spec = torch.stft(wav.float(), self.n_fft, self.hop_length, window=self.window, return_complex=True)
        spec = torch.log(spec[..., :-1].abs().pow(2) + self.eps)
        mean, std = spec.mean(-1, keepdim=True), spec.std(-1, keepdim=True)
        return ((spec - mean) / (std + self.eps)).unsqueeze(1)


# --------------------------------------------------------------------------------------------
# Synchronisation module
# --------------------------------------------------------------------------------------------
class SyncEncodings(nn.Module):
    """[CLS], modality (2), temporal (visual and audio) and spatial encodings (Eq. 3-5)."""

    def __init__(self, cfg: AVSTConfig):
        super().__init__()
        d, std = cfg.dim, cfg.encoding_std
        self.cls = nn.Parameter(torch.randn(1, 1, d) * std)
        self.modality = nn.Parameter(torch.randn(2, d) * std)                       # E_m: visual, audio
        self.time_visual = nn.Parameter(torch.randn(cfg.max_frames, d) * std)       # E_tv
        self.time_audio = nn.Parameter(torch.randn(cfg.max_frames, d) * std)        # E_ta
        # E_s only where spatial positions survive (enc, dec); enc-mp max-pools them away
        self.space = (nn.Parameter(torch.randn(cfg.grid * cfg.grid, d) * std)
                      if cfg.variant != "enc-mp" else None)
        self.max_frames = cfg.max_frames

    def visual(self, v: torch.Tensor) -> torch.Tensor:
        """(B, T, P, d) visual tokens (P = h·w, or 1 after max-pooling) -> (B, T·P, d) encoded."""
        b, t, p, d = v.shape
        v = v + self.modality[0] + self.time_visual[:t, None]
        if self.space is not None:
            if p != self.space.shape[0]:
                raise ValueError(f"the visual map has {p} positions, the spatial encoding {self.space.shape[0]}: "
                                 "frame_size must be 16 x the config's grid")
            v = v + self.space
        return v.reshape(b, t * p, d)

    def audio(self, a: torch.Tensor) -> torch.Tensor:
        """(B, Ta, d) audio tokens -> [CLS; encoded audio] (B, 1 + Ta, d)."""
        a = a + self.modality[1] + self.time_audio[: a.shape[1]]
        return torch.cat([self.cls.expand(a.shape[0], -1, -1), a], dim=1)


class AVSTSync(nn.Module):
    """Backbone features of a visual clip and an audio clip -> one synchronisation score per pair."""

    def __init__(self, cfg: AVSTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.encodings = SyncEncodings(cfg)
        block = CrossBlock if cfg.variant == "dec" else Block
        self.blocks = nn.ModuleList(block(d, cfg.heads, cfg.dropout, cfg.dropout) for _ in range(cfg.depth))
        self.visual_norm = nn.LayerNorm(d) if cfg.variant == "dec" else None  # keys/values of every layer
        self.norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))  # h(.; theta_3)
        for m in [*self.blocks.modules(), *self.head.modules()]:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        """vis (B, T, d, h, w), aud (B, Ta, d) -> scores (B,)."""
        if vis.shape[0] != aud.shape[0]:
            raise ValueError(f"{vis.shape[0]} visual and {aud.shape[0]} audio clips: pairs must match")
        b, t, d = vis.shape[:3]
        if t > self.cfg.max_frames or aud.shape[1] > self.cfg.max_frames:
            raise ValueError(f"{t} frames / {aud.shape[1]} audio tokens exceed max_frames={self.cfg.max_frames}")
        if self.cfg.variant == "enc-mp":
            tokens = vis.amax(dim=(-2, -1))[:, :, None]                 # GMP per frame (Eq. 7)
        else:
            tokens = vis.flatten(3).transpose(2, 3)                     # (B, T, h·w, d) (Eq. 3)
        visual = self.encodings.visual(tokens)
        queries = self.encodings.audio(aud)                             # [CLS; A]
        if self.cfg.variant == "dec":                                   # Eq. 8-9
            x, context = queries, self.visual_norm(visual)
            for blk in self.blocks:
                x = blk(x, context)
        else:                                                           # Eq. 5-6: [CLS; V; A]
            x = torch.cat([queries[:, :1], visual, queries[:, 1:]], dim=1)
            for blk in self.blocks:
                x = blk(x)
        return self.head(self.norm(x[:, 0])).squeeze(-1)

    def record_attention(self, on: bool = True) -> None:
        """Keep the attention weights of the last layer (``last_attention``) for visualisation."""
        last = self.blocks[-1]
        (last.xattn if self.cfg.variant == "dec" else last.attn).record_attention = on

    @property
    def last_attention(self) -> torch.Tensor | None:
        """(B, heads, queries, keys) weights of the last layer's (cross-)attention, if recorded."""
        last = self.blocks[-1]
        return (last.xattn if self.cfg.variant == "dec" else last.attn).last_attention


class AVST(nn.Module):
    """Normalised frames (B, T, 3, H, W) + log-spectrogram (B, 1, F, 16·T') -> scores (B,).

    ``features`` and ``sync`` are separate so that a k x k score matrix runs the backbones on k
    clips only and the synchronisation module on the k² pairs (:meth:`score_matrix`).
    """

    def __init__(self, cfg: AVSTConfig | None = None):
        super().__init__()
        cfg = cfg or AVSTConfig()
        self.cfg = cfg
        self.visual = ResNet18TwoPlusThreeD(cfg.visual_widths)
        self.audio = LightVGGM(cfg.freq_bins, cfg.audio_widths, cfg.dim)
        self.sync = AVSTSync(cfg)

    def visual_features(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        return self.visual(frames)

    def audio_features(self, spec: torch.Tensor, num_frames: int) -> torch.Tensor:
        """(B, Ta, d) audio tokens, averaged to ``num_frames`` tokens when there are more (low fps)."""
        tokens = self.audio(spec)
        if tokens.shape[1] != num_frames:
            if tokens.shape[1] % num_frames:
                raise ValueError(f"{tokens.shape[1]} audio tokens do not divide into {num_frames} frames: "
                                 "is the audio as long as the video?")
            tokens = F.avg_pool1d(tokens.transpose(1, 2), tokens.shape[1] // num_frames).transpose(1, 2)
        return tokens

    def forward(self, frames: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        vis = self.visual_features(frames)
        return self.sync(vis, self.audio_features(spec, vis.shape[1]))

    def score_matrix(self, frames: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """(k, k) scores s_ij of visual clip i with audio clip j (the InfoNCE logits, §3.2)."""
        vis = self.visual_features(frames)
        aud = self.audio_features(spec, vis.shape[1])
        k = vis.shape[0]
        return self.sync(vis.repeat_interleave(k, dim=0), aud.repeat(k, 1, 1)).view(k, k)

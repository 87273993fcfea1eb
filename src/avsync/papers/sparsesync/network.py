"""SparseSync (Iashin et al., BMVC 2022): audio-visual offset classification with feature selectors.

    log-spectrogram --ResNet18--> 9x20x512 ┐                         ┌ 16 audio selectors ┐
                                           ├ LayerNorm + learned PE ─┤                    ├─ [CLS; q_v; MOD; q_a] ─ 3-layer
    RGB 125x224x224 --S3D--> 16x7x7x1024 ──┘                         └ 16 visual selectors┘   transformer ─ linear ─ 21 offsets
       (visual bridge: 1x1x1 conv to 512, then GELU)

Module names mirror the official code (afeat_extractor, vfeat_extractor, v_bridge, transformer.{
pre_lnorm_*, *_pos_emb, *_selector, global_transformer, off_head}) so that its checkpoints map
onto this layout with ``avsync.papers.sparsesync.convert``. The parameter count at selector/transformer
depths 1, 2, 3 and 6 equals the official one exactly (31,227,756 / 42,788,204 / 54,348,652 /
89,029,996).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avsync.papers.sparsesync.resnet_audio import ResNetAudio
from avsync.papers.sparsesync.s3d import S3D
from avsync.nn.transformer_blocks import Block, CrossBlock, init_gpt_weights, init_xavier_weights


@dataclass
class SparseSyncConfig:
    """Every size the architecture depends on; ``SPARSESYNC_CONFIGS`` names the paper's and the toy ones."""

    num_classes: int = 21
    depth: int = 3                      # selector stacks and sync transformer (varied together, Table 6)
    dim: int = 512
    heads: int = 8
    num_selectors: int = 16             # k_a = k_v
    visual_block: tuple[int, int, int] = (16, 7, 7)   # max (t, h, w) of visual features -> PE sizes
    audio_block: tuple[int, int] = (9, 20)            # max (f, t) of audio features
    s3d_width: float = 1.0
    s3d_bn_momentum: float = 0.001      # torchvision/official S3D; 0.1 when training from scratch
    audio_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    dropout: float = 0.1                # embd / resid / attn dropout of the official config
    # "gpt": N(0, 0.02) for every linear/embedding, as the reference code; "xavier": Xavier-uniform
    # linears and N(0, 1) positional tables. At the toy width (64) N(0, 0.02) leaves attention
    # uniform, MLPs linear and positions invisible next to layer-normalised features for hundreds
    # of steps; "xavier" starts them in their working range. Parameters and computation are the same.
    init: str = "gpt"
    # False: the paper's ablation without selectors: the synchronisation transformer attends over
    # every visual and audio token (Eq. 4 with q_v, q_a replaced by the flattened feature maps)
    selectors: bool = True


SPARSESYNC_CONFIGS: dict[str, SparseSyncConfig] = {
    "sparsesync": SparseSyncConfig(),
    **{f"sparsesync_depth{d}": SparseSyncConfig(depth=d) for d in (1, 2, 3, 6)},
    # toy scale: the same topology, narrow (S3D x1/8, ResNet18 8-64 channels, 64-d transformer),
    # for 32-64 px frames on a CPU; positional tables long enough for 7 s inputs (Table 4)
    "sparsesync_toy": SparseSyncConfig(depth=2, dim=64, heads=4, visual_block=(22, 2, 2), audio_block=(9, 28),
                                       s3d_width=0.125, s3d_bn_momentum=0.1,
                                       audio_widths=(8, 16, 32, 64), dropout=0.0, init="xavier"),
}


class LearnedPE3D(nn.Module):
    """Learned PE for (t, h, w) visual tokens: per-axis tables concatenated along channels.

    The remainder of dim/3 goes to time; channels are concatenated as [t, w, h] like the reference.
    """

    def __init__(self, block: tuple[int, int, int], dim: int):
        super().__init__()
        self.n_h = self.n_w = dim // 3
        self.n_t = dim // 3 + dim % 3
        self.time_embed = nn.Embedding(block[0], self.n_t)
        self.height_embed = nn.Embedding(block[1], self.n_h)
        self.width_embed = nn.Embedding(block[2], self.n_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, t, h, w, d)
        _, t, h, w, _ = x.shape
        dev = x.device
        te = self.time_embed(torch.arange(t, device=dev)).view(t, 1, 1, -1).expand(t, h, w, -1)
        we = self.width_embed(torch.arange(w, device=dev)).view(1, 1, w, -1).expand(t, h, w, -1)
        he = self.height_embed(torch.arange(h, device=dev)).view(1, h, 1, -1).expand(t, h, w, -1)
        return x + torch.cat([te, we, he], dim=-1)


class LearnedPE2D(nn.Module):
    """Learned PE for (f, t) audio tokens: [freq, time] tables concatenated along channels."""

    def __init__(self, block: tuple[int, int], dim: int):
        super().__init__()
        self.n_f = dim // 2
        self.n_t = dim // 2 + dim % 2
        self.freq_embed = nn.Embedding(block[0], self.n_f)
        self.time_embed = nn.Embedding(block[1], self.n_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, f, t, d)
        _, f, t, _ = x.shape
        dev = x.device
        fe = self.freq_embed(torch.arange(f, device=dev)).view(f, 1, -1).expand(f, t, -1)
        te = self.time_embed(torch.arange(t, device=dev)).view(1, t, -1).expand(f, t, -1)
        return x + torch.cat([fe, te], dim=-1)


class SelectorPE(nn.Module):
    def __init__(self, num: int, dim: int):
        super().__init__()
        self.time_embed = nn.Embedding(num, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, S, d)
        return x + self.time_embed(torch.arange(x.shape[1], device=x.device))


class FeatureSelector(nn.Module):
    """k learnable queries that cross-attend to a flattened feature map ("selectors", Eq. 3)."""

    def __init__(self, num_selectors: int, depth: int, dim: int, heads: int, dropout: float):
        super().__init__()
        self.selectors = nn.Parameter(torch.randn(num_selectors, dim))
        self.selectors_pos_emb = SelectorPE(num_selectors, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(CrossBlock(dim, heads, dropout, dropout) for _ in range(depth))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        b, d = context.shape[0], context.shape[-1]
        context = self.drop(context.reshape(b, -1, d))
        q = self.drop(self.selectors_pos_emb(self.selectors.expand(b, -1, -1)))
        for block in self.blocks:
            q = block(q, context)
        return q


class GlobalTransformer(nn.Module):
    """The synchronisation transformer over [OFF; q_v; MOD; q_a] (Eq. 4)."""

    def __init__(self, depth: int, dim: int, heads: int, dropout: float):
        super().__init__()
        self.OFF_tok = nn.Parameter(torch.randn(1, 1, dim))
        self.MOD_tok = nn.Parameter(torch.randn(1, 1, dim))
        self.vis_in_lnorm = nn.LayerNorm(dim)
        self.aud_in_lnorm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(dim, heads, dropout, dropout) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(dim)

    def forward(self, q_v: torch.Tensor, q_a: torch.Tensor) -> torch.Tensor:
        b = q_v.shape[0]
        x = torch.cat([self.OFF_tok.expand(b, -1, -1), self.vis_in_lnorm(q_v),
                       self.MOD_tok.expand(b, -1, -1), self.aud_in_lnorm(q_a)], dim=1)
        return self.ln_f(self.blocks(self.drop(x)))


class SelectorSyncTransformer(nn.Module):
    """Everything after the feature extractors: norms, PEs, the two selector stacks, the sync transformer, head."""

    def __init__(self, cfg: SparseSyncConfig):
        super().__init__()
        d = cfg.dim
        self.pre_lnorm_vis = nn.LayerNorm(d)
        self.pre_lnorm_aud = nn.LayerNorm(d)
        self.vis_pos_emb = LearnedPE3D(cfg.visual_block, d)
        self.aud_pos_emb = LearnedPE2D(cfg.audio_block, d)
        self.use_selectors = cfg.selectors
        if cfg.selectors:
            self.v_selector = FeatureSelector(cfg.num_selectors, cfg.depth, d, cfg.heads, cfg.dropout)
            self.a_selector = FeatureSelector(cfg.num_selectors, cfg.depth, d, cfg.heads, cfg.dropout)
        self.global_transformer = GlobalTransformer(cfg.depth, d, cfg.heads, cfg.dropout)
        self.off_head = nn.Linear(d, cfg.num_classes, bias=False)
        if cfg.init not in ("gpt", "xavier"):
            raise ValueError(f"init must be 'gpt' or 'xavier', got {cfg.init!r}")
        self.apply(init_gpt_weights if cfg.init == "gpt" else init_xavier_weights)

    def forward(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        """vis (B, t, h, w, d), aud (B, f, t, d) -> logits (B, num_classes)."""
        vis = self.vis_pos_emb(self.pre_lnorm_vis(vis))
        aud = self.aud_pos_emb(self.pre_lnorm_aud(aud))
        if self.use_selectors:
            x = self.global_transformer(self.v_selector(vis), self.a_selector(aud))
        else:  # all tokens
            x = self.global_transformer(vis.reshape(len(vis), -1, vis.shape[-1]), aud.reshape(len(aud), -1, aud.shape[-1]))
        return self.off_head(x[:, 0])


class VisualBridge(nn.Module):
    """1x1x1 convolution from the S3D width to the transformer width, followed by a GELU.

    The authors' bridge (``ConvBridgeVisual``) is ``Sequential(Conv3d, GELU)``; the GELU has no
    weights, so only a forward comparison with their code shows it (``tests/integration/test_parity_sparsesync.py``).
    The conv stays at index 0, the key the official checkpoints use (``v_bridge.bridge.0.*``).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.bridge = nn.Sequential(nn.Conv3d(in_channels, out_channels, kernel_size=1, bias=True), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bridge(x)


class SparseSync(nn.Module):
    """Full model: normalised frames (B, T, 3, H, W) + log-spectrogram (B, 1, F, Ta) -> offset logits."""

    def __init__(self, cfg: SparseSyncConfig | None = None):
        super().__init__()
        cfg = cfg or SparseSyncConfig()
        self.cfg = cfg
        self.vfeat_extractor = S3D(width=cfg.s3d_width, bn_momentum=cfg.s3d_bn_momentum)
        self.afeat_extractor = ResNetAudio(widths=cfg.audio_widths)
        if self.afeat_extractor.out_channels != cfg.dim:
            raise ValueError(f"audio features are {self.afeat_extractor.out_channels}-d but the transformer is "
                             f"{cfg.dim}-d: the official model has no audio bridge, so the widths must agree")
        self.v_bridge = VisualBridge(self.vfeat_extractor.out_channels, cfg.dim)
        self.transformer = SelectorSyncTransformer(cfg)

    def features(self, video: torch.Tensor, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token maps before the selectors: visual (B, t, h, w, d), audio (B, f, t, d)."""
        return self.tokens(self.vfeat_extractor(video.transpose(1, 2)), self.afeat_extractor(spec))

    def tokens(self, vfeat: torch.Tensor, afeat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Extractor outputs, visual (B, c, t, h, w) and audio (B, d, f, t), -> transformer tokens.

        Split from :meth:`features` so that frozen-extractor training can start from cached
        extractor outputs (:mod:`avsync.data_modules.feature_bank`); the bridge still trains.
        """
        return self.v_bridge(vfeat).permute(0, 2, 3, 4, 1), afeat.permute(0, 2, 3, 1)

    def forward(self, video: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        return self.transformer(*self.features(video, spec))

    def forward_extracted(self, vfeat: torch.Tensor, afeat: torch.Tensor) -> torch.Tensor:
        """Logits from extractor outputs (see :meth:`tokens`)."""
        return self.transformer(*self.tokens(vfeat, afeat))

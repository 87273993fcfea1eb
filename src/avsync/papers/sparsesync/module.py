"""SparseSync as a LightningModule: the paper's recipe around the plain ``SparseSync`` network.

Adam (betas 0.9/0.999, lr 5e-6 per GPU in the paper) with a 1k-iteration warm-up from lr/100,
cross-entropy over the offset grid, gradient-norm clip 1 (Trainer), 5 s inputs at 25 fps and
16 kHz. ``arch`` names a registered configuration (timm style) and ``arch_overrides`` changes
single fields, so a YAML config can ask for the paper's model or a narrow toy one.
"""
from __future__ import annotations

import dataclasses
import logging

import torch

from avsync.inputs import FrameNormalize, InputSpec, LogSpectrogram, SpecAugment
from avsync.modules.offset_classification import OffsetClassificationModule, load_matching_weights
from avsync.papers.sparsesync.network import SPARSESYNC_CONFIGS, SparseSync

log = logging.getLogger(__name__)


def build_sparsesync(arch: str = "sparsesync", overrides: dict | None = None) -> SparseSync:
    if arch not in SPARSESYNC_CONFIGS:
        raise ValueError(f"unknown SparseSync arch {arch!r}; registered: {sorted(SPARSESYNC_CONFIGS)}")
    cfg = dataclasses.replace(SPARSESYNC_CONFIGS[arch], **{k: tuple(v) if isinstance(v, list) else v
                                                          for k, v in (overrides or {}).items()})
    return SparseSync(cfg)


class SparseSyncModule(OffsetClassificationModule):
    """Offset classification with SparseSync.

    Args:
        arch: registered configuration (``sparsesync``, ``sparsesync_depth{1,2,3,6}``, ``sparsesync_toy``).
        arch_overrides: fields of :class:`~avsync.papers.sparsesync.network.SparseSyncConfig` to change.
        input_overrides: fields of the :class:`~avsync.inputs.InputSpec` to change (clip length, frame size).
        init_from: checkpoint whose matching tensors initialise the network (pre-trained extractors,
            a 3-class model for the 21-class stage, a dense model before sparse fine-tuning).
        s3d_weights, audio_weights: local files of pre-trained extractors (torchvision S3D on
            Kinetics-400; a ResNet18 audio state dict) - the paper starts from both.
        freeze_extractors: keep the audio and visual feature extractors fixed (SparseSync Table 3 row).
        spec_augment: arguments of :class:`~avsync.inputs.SpecAugment` (training only; the paper's
            VGGSound-Sparse fine-tuning: ``{p: 0.2, freq_mask_param: 64, time_mask_param: 200}``);
            None: no masking.
        lr_per_device: multiply ``lr`` by the number of devices (the authors' rule: 5e-6 per GPU).
        eps: Adam's epsilon (the authors' 1e-7 in half precision).
    """

    def __init__(self, arch: str = "sparsesync", arch_overrides: dict | None = None,
                 input_overrides: dict | None = None, lr: float = 5e-6,
                 betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
                 warmup_steps: int = 1000, init_from: str | None = None, freeze_extractors: bool = False,
                 s3d_weights: str | None = None, audio_weights: str | None = None, log_figures: bool = True,
                 spec_augment: dict | None = None, lr_per_device: bool = False, eps: float = 1e-8):
        self.save_hyperparameters()
        net = build_sparsesync(arch, arch_overrides)
        super().__init__(net.cfg.num_classes, lr, betas, weight_decay, warmup_steps, log_figures=log_figures,
                         lr_per_device=lr_per_device, eps=eps)
        self.net = net
        self.input_spec = dataclasses.replace(InputSpec(offset_classes=net.cfg.num_classes),
                                              **(input_overrides or {}))
        self.frames = FrameNormalize()
        self.spectrogram = LogSpectrogram(n_fft=512, hop_length=128,
                                          augment=SpecAugment(**spec_augment) if spec_augment else None)
        if s3d_weights:  # torchvision S3D Kinetics-400 weights saved to a local file
            self.net.vfeat_extractor.load_torchvision_weights(s3d_weights)
        if audio_weights:  # a ResNet18 audio state dict (conv1 .. layer4; an fc head is ignored)
            missing = load_matching_weights(self.net.afeat_extractor, audio_weights)
            if missing:
                raise ValueError(f"{audio_weights} does not match the audio ResNet: missing {missing[:5]}")
        if init_from:
            missing = load_matching_weights(self.net, init_from, prefix="net.")
            log.info("initialised SparseSync from %s; %d tensors kept their init: %s", init_from, len(missing),
                     ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
        self.freeze_extractors = freeze_extractors
        if freeze_extractors:
            self.freeze(self.net.vfeat_extractor, self.net.afeat_extractor)

    def model_inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return self.frames(batch["video"]), self.spectrogram(batch["audio"])

    def forward(self, batch: dict) -> torch.Tensor:
        """Logits from decoded clips, or from cached extractor outputs (``vfeat``/``afeat``, what
        :class:`~avsync.data_modules.feature_bank.FeatureBankDataModule` delivers)."""
        if "vfeat" in batch:
            if not self.freeze_extractors:
                raise RuntimeError("cached extractor features only stand in for frozen extractors: "
                                   "set freeze_extractors=True or train on decoded clips")
            return self.net.forward_extracted(batch["vfeat"].float(), batch["afeat"].float())
        return self.net(*self.model_inputs(batch))

    # state-dict prefixes of the frozen extractors (a feature bank is keyed by these weights)
    frozen_prefixes = ("net.vfeat_extractor.", "net.afeat_extractor.")

    def frozen_encoders(self):
        """(video, audio) functions from a decoded window — uint8 frames (N, T, H, W, 3) and
        waveforms (N, S) — to the frozen extractors' outputs, for feature banks."""
        if not self.freeze_extractors:
            raise RuntimeError("a feature bank needs freeze_extractors=True: trained extractors change "
                               "their outputs every step")

        @torch.no_grad()
        def video(frames: torch.Tensor) -> torch.Tensor:
            return self.net.vfeat_extractor.eval()(self.frames(frames).transpose(1, 2))

        @torch.no_grad()
        def audio(wav: torch.Tensor) -> torch.Tensor:
            return self.net.afeat_extractor.eval()(self.spectrogram(wav))

        return video, audio

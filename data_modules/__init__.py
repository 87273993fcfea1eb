"""Data modules: one per dataset over a shared base (``avsync.data_modules``)."""
from .base import AVClipDataset, AVSyncDataModule, BadMediaEntry, BadMediaReport, ClipRecord
from .lrs3 import LRS3DataModule
from .toy import ToyAVDataModule
from .vggsound import VGGSoundDataModule, VGGSoundSparseDataModule

__all__ = [
    "AVClipDataset",
    "AVSyncDataModule",
    "BadMediaEntry",
    "BadMediaReport",
    "ClipRecord",
    "LRS3DataModule",
    "ToyAVDataModule",
    "VGGSoundDataModule",
    "VGGSoundSparseDataModule",
]

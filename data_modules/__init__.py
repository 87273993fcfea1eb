"""Data modules: one per dataset over a shared base (``avsync.data_modules``)."""
from .acappella import AcappellaDataModule
from .audioset import AudioSetDataModule
from .bad_media import BadMediaEntry, BadMediaReport
from .base import AVSyncDataModule
from .clip_dataset import AVClipDataset
from .records import ClipRecord
from .lrs2 import LRS2DataModule
from .lrs3 import LRS3DataModule
from .toy import ToyAVDataModule
from .vggsound import VGGSoundDataModule, VGGSoundSparseDataModule, VGGSoundSyncDataModule

__all__ = [
    "AVClipDataset",
    "AVSyncDataModule",
    "AcappellaDataModule",
    "AudioSetDataModule",
    "BadMediaEntry",
    "BadMediaReport",
    "ClipRecord",
    "LRS2DataModule",
    "LRS3DataModule",
    "ToyAVDataModule",
    "VGGSoundDataModule",
    "VGGSoundSparseDataModule",
    "VGGSoundSyncDataModule",
]

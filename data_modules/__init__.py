"""Data modules: one per dataset over a shared base (``avsync.data_modules``)."""
from .base import AVClipDataset, AVSyncDataModule, BadMediaEntry, BadMediaReport, ClipRecord
from .toy import ToyAVDataModule

__all__ = [
    "AVClipDataset",
    "AVSyncDataModule",
    "BadMediaEntry",
    "BadMediaReport",
    "ClipRecord",
    "ToyAVDataModule",
]

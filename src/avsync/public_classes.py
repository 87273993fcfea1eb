"""The LightningModules and data modules a user names in a config, listed without importing them.

The models come from :mod:`avsync.registry`; the data modules are listed here.

``avsync --help`` must answer in well under two seconds, and importing Lightning plus every model
takes several. So the help reads this table; ``tests/integration/test_cli.py`` imports every module and checks
that the table names exactly the public, concrete classes found there (bases and private rate
buckets excluded), so it cannot drift from the code.
"""
from __future__ import annotations


def models() -> dict[str, str]:
    """LightningModule class path -> what it is: the public names of :mod:`avsync.registry`."""
    from avsync.registry import get_model, list_models
    out: dict[str, str] = {}
    for name in list_models(public_only=True):
        entry = get_model(name)
        out.setdefault(entry.module, f"{entry.summary} [{name}]")
    return out


DATA_MODULES: dict[str, str] = {
    "avsync.data_modules.toy.ToyAVDataModule": "the embedded toy set (generated, real H.264/AAC files)",
    "avsync.data_modules.lrs2.LRS2DataModule": "LRS2",
    "avsync.data_modules.lrs3.LRS3DataModule": "LRS3",
    "avsync.data_modules.lrs3_multirate.MultiRateLRS3DataModule": "LRS3 at several frame rates (DiVAS)",
    "avsync.data_modules.multirate.MultiRateToyDataModule": "toy set at several frame rates (DiVAS)",
    "avsync.data_modules.vggsound.VGGSoundDataModule": "VGGSound",
    "avsync.data_modules.vggsound.VGGSoundSyncDataModule": "VGGSound-Sync",
    "avsync.data_modules.vggsound.VGGSoundSparseDataModule": "VGGSound-Sparse",
    "avsync.data_modules.audioset.AudioSetDataModule": "AudioSet",
    "avsync.data_modules.acappella.AcappellaDataModule": "Acappella (singing)",
    "avsync.data_modules.sync_curriculum.ToySyncCurriculumDataModule": "toy set, same-clip curriculum batches",
    "avsync.data_modules.sync_curriculum.LRS2SyncCurriculumDataModule": "LRS2, same-clip curriculum batches",
    "avsync.data_modules.sync_curriculum.LRS3SyncCurriculumDataModule": "LRS3, same-clip curriculum batches",
    "avsync.data_modules.sync_curriculum.VGGSoundSyncCurriculumDataModule": "VGGSound-Sync, curriculum batches",
    "avsync.data_modules.sync_curriculum.VGGSoundSyncClassesCurriculumDataModule": "VGGSound-Sync with classes, curriculum",
    "avsync.data_modules.feature_bank.FeatureBankDataModule": "frozen-extractor features (SparseSync toy stages)",
    "avsync.data_modules.synchformer_features.SynchformerFeatureDataModule": "cached Synchformer segment features",
    "avsync.data_modules.synchronizability.SynchronizabilityDataModule": "synchronizability labels (Synchformer)",
}

#: bases a config never names directly: they are shared parents of the classes above
BASES: frozenset[str] = frozenset({
    "avsync.modules.offset_classification.OffsetClassificationModule",
    "avsync.modules.pair_scoring.PairScoringModule",
    "avsync.data_modules.base.AVSyncDataModule",
    "avsync.data_modules.multirate.MultiRateDataModule",
})


def listing(table: dict[str, str]) -> str:
    """The help text's block for one table: class path, then what it is, aligned."""
    width = max(map(len, table))
    return "\n".join(f"  {path:<{width}}  {what}" for path, what in table.items())

"""LRS2 (BBC, face tracks): the data of AVST's and VocaLiST's lip-sync experiments.

Layout as distributed (``root`` holds ``mvlrs_v1/`` and the file lists, or is ``mvlrs_v1``)::

    <root>/mvlrs_v1/pretrain/<video_id>/<utt>.mp4     160x160 face crops, 25 fps, 16 kHz audio
    <root>/mvlrs_v1/main/<video_id>/<utt>.mp4
    <root>/pretrain.txt  train.txt  val.txt  test.txt     one ``<video_id>/<utt>`` per line
                                                       (+ an optional tag such as ``NF`` / ``MV``)

Splits: ``train`` is the list named by ``train_list`` (``"pretrain"``: AVST and VocaLiST train on
the pretrain set; ``"train"``: the main train list), ``valid`` is ``val.txt``, ``test`` is
``test.txt``; the clips of ``pretrain.txt`` live in ``pretrain/``, the others in ``main/`` (a
listed clip is looked up in the other folder too).
``split_files`` overrides a list. Clip keys are ``<video_id>/<utt>`` (:func:`avsync.offsets.key_for`),
as in the lists. Listed clips that are not on disk are counted in ``missing`` and logged once.

The clips are already face crops: ``InputSpec(crop="face")`` takes them whole (centre crop),
``crop="mouth"`` their lower half (VocaLiST's 48x96 from a 96 px crop).
"""
from __future__ import annotations

from pathlib import Path

from .base import AVSyncDataModule, ClipRecord
from .listing import SPLITS, check_split_files, read_split_file

__all__ = ["LRS2DataModule", "LRS2_LISTS"]

LRS2_DIR = "mvlrs_v1"
LRS2_LISTS = {"pretrain": "pretrain.txt", "train": "train.txt", "valid": "val.txt", "test": "test.txt"}


class LRS2DataModule(AVSyncDataModule):
    """LRS2 from its file lists; see the module docstring.

    Args:
        root: folder holding ``mvlrs_v1/`` (and the lists), or ``mvlrs_v1`` itself.
        train_list: ``"pretrain"`` or ``"train"``: the list that forms the training split.
        list_dir: folder of the lists (default: ``root``, then the folder holding ``mvlrs_v1``).
        split_files: ``{split: file}`` overriding a split's list.
        **kwargs: :class:`AVSyncDataModule`'s. LRS2 clips are short: ``max_source_sec`` caps
            nothing by default here (None).
    """

    def __init__(
        self,
        root: str | None = None,
        train_list: str = "pretrain",
        list_dir: str | None = None,
        split_files: dict[str, str] | None = None,
        max_source_sec: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(root=root, max_source_sec=max_source_sec, **kwargs)
        if train_list not in ("pretrain", "train"):
            raise ValueError(f"train_list must be 'pretrain' or 'train', got {train_list!r}")
        self.train_list = train_list
        self.list_dir = list_dir
        self.split_files = check_split_files(split_files)

    @property
    def base_dir(self) -> Path:
        """The folder that holds ``mvlrs_v1/``."""
        if not self.root:
            raise ValueError(f"LRS2DataModule needs root= (the folder holding {LRS2_DIR}/)")
        root = Path(self.root).expanduser()
        if (root / LRS2_DIR).is_dir():
            return root
        if root.name == LRS2_DIR and root.is_dir():
            return root.parent
        raise FileNotFoundError(f"no {LRS2_DIR}/ under {root} (LRS2 as distributed: {LRS2_DIR}/{{pretrain,main}}/)")

    def list_file(self, split: str) -> Path:
        if split in self.split_files:
            return Path(self.split_files[split])
        name = LRS2_LISTS[self.train_list if split == "train" else split]
        folders = [Path(self.list_dir).expanduser()] if self.list_dir else [self.base_dir, self.base_dir / LRS2_DIR]
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
        raise FileNotFoundError(f"LRS2 list {name} not found in {', '.join(map(str, folders))}; "
                                "pass list_dir= or split_files=")

    def list_records(self, split: str) -> list[ClipRecord]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use {SPLITS}")
        path = self.list_file(split)
        preferred = "pretrain" if split == "train" and self.train_list == "pretrain" else "main"
        order = (preferred, "main" if preferred == "pretrain" else "pretrain")
        base, present, missing = self.base_dir, [], []
        for key in read_split_file(path):
            found = [f"{LRS2_DIR}/{sub}/{key}.mp4" for sub in order if (base / LRS2_DIR / sub / f"{key}.mp4").is_file()]
            if found:
                present.append(found[0])
            else:
                missing.append(key)
        return self.records_under(split, base, present, missing, str(path))

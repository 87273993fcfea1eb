"""The authors' published checkpoints, by name: where each file lives, how it is checked, what reads it.

One :class:`OfficialWeights` per named configuration. The URLs, file names and checksums are the
ones the authors publish (Synchformer's and SparseSync's READMEs and their ``utils/utils.py``
download tables, VocaLiST's README, syncnet_python's ``download_model.sh``); none of them was
fetched when this table was written (the machine it was written on has no internet), so a moved
file shows up as an HTTP error at ``avsync weights fetch`` time, not here.

Checksums, honestly:

* Synchformer and SparseSync publish **the first 7 hex digits of each file's md5** (``md5:
  4415276...`` in their READMEs), never the full digest. :class:`Checksum` keeps exactly those digits
  and the download checks that the file's md5 starts with them (28 bits: it catches a truncated,
  corrupted or swapped file, not a deliberate forgery).
* syncnet_python (SyncNet v2, S3FD) and VocaLiST publish **no checksum**; ``checksum`` is None and
  the download can only check that it received every byte the server announced. The size is not
  recorded either: no one here has measured it (``size_bytes`` stays None rather than a guess).
* VocaLiST's weights are in a Google Drive *folder* (no per-file URL, no file name in the README
  beyond the training scripts' default ``vocalist_5f_lrs2.pth``); ``url`` is None and the entry is
  for manual download + ``avsync detect --weights PATH``.

``model`` names the :mod:`avsync.registry` configuration whose converter turns the file into this
suite's checkpoint (its arch is where the converter starts; sizes the tensors reveal are inferred
by the converter). The registry lists a model's official weights from this table. ``model`` is None
where avsync has no converter for the file
(the S3FD face detector, whose official state dict is loaded as is by ``avsync.faces.s3fd.S3FD``).

:func:`get` and :func:`names` are its lookup; :meth:`avsync.registry.ModelEntry.weights` reads it by model.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Checksum", "OfficialWeights", "OFFICIAL_WEIGHTS", "get", "names"]

# the file server of v-iashin's SparseSync and Synchformer (their utils/utils.py PARENT_LINK)
_IASHIN = "https://a3s.fi/swift/v1/AUTH_a235c0f452d648828f745589cde1219a/sync/sync_models"
_SYNCNET_DATA = "https://www.robots.ox.ac.uk/~vgg/software/lipsync/data"

SYNCHFORMER_PAPER = "Synchformer (Iashin et al., ICASSP 2024)"
SPARSESYNC_PAPER = "SparseSync (Iashin et al., BMVC 2022)"


@dataclass(frozen=True)
class Checksum:
    """A published digest: ``algorithm`` ("md5" or "sha256") and the hex digits the authors give.

    ``prefix`` is True when they give only the leading digits (then a file matches when its digest
    starts with them)."""

    algorithm: str
    hexdigest: str
    prefix: bool = False

    def matches(self, digest: str) -> bool:
        want = self.hexdigest.lower()
        return digest.lower().startswith(want) if self.prefix else digest.lower() == want

    def describe(self) -> str:
        return f"{self.algorithm} {self.hexdigest}{'... (prefix published)' if self.prefix else ''}"


@dataclass(frozen=True)
class OfficialWeights:
    """One published checkpoint of one named configuration."""

    name: str
    paper: str
    dataset: str  # what it was trained on (the authors' wording)
    filename: str  # the authors' file name; the cache keeps it
    url: str | None  # a direct download, or None when the authors publish none (see ``page``)
    checksum: Checksum | None  # None: the authors publish none
    model: str | None  # the avsync.registry name whose converter reads it, or None (see ``notes``)
    source: str  # where the URL and checksum were read
    size_bytes: int | None = None  # only where measured; None: not known here
    page: str | None = None  # a page to download it by hand, when there is no direct URL
    notes: str = ""
    arch: str | None = None  # where the converter starts when not the registered model's arch (tests: toy sizes)

    @property
    def checksum_status(self) -> str:
        return self.checksum.describe() if self.checksum else "no published checksum"


def _iashin(name: str, paper: str, dataset: str, run: str, md5_prefix: str, model: str | None,
            source: str, notes: str = "") -> OfficialWeights:
    return OfficialWeights(name=name, paper=paper, dataset=dataset, filename=f"{run}.pt",
                           url=f"{_IASHIN}/{run}/{run}.pt", checksum=Checksum("md5", md5_prefix, prefix=True),
                           model=model, source=source, notes=notes)


_SF_README = "v-iashin/Synchformer README.md, 'Pre-trained Models'"
_SS_README = "v-iashin/SparseSync README.md, 'Pre-trained Model Checkpoints'"

_ENTRIES = (
    # Synchformer: the three synchronisation models (stage II over the stage-I extractors of the same data)
    _iashin("synchformer-lrs3", SYNCHFORMER_PAPER, "LRS3 ('Full Scene'), stage I and II", "23-12-23T18-33-57",
            "4415276", "synchformer", _SF_README, "tested on LRS3 ('Full Scene'): Acc@1 86.6 / ±1 99.6"),
    _iashin("synchformer-vggsound", SYNCHFORMER_PAPER, "VGGSound, stage I and II", "24-01-02T10-00-53",
            "19592ed", "synchformer", _SF_README, "tested on VGGSound-Sparse: Acc@1 43.8 / ±1 60.2"),
    _iashin("synchformer-audioset", SYNCHFORMER_PAPER, "AudioSet, stage I and II", "24-01-04T16-39-21",
            "54037d2", "synchformer", _SF_README, "tested on VGGSound-Sparse: Acc@1 47.2 / ±1 67.4"),
    _iashin("synchformer-synchronizability", SYNCHFORMER_PAPER, "AudioSet (fine-tuned from the AudioSet sync model)",
            "24-01-22T20-34-52", "b1cb346", "synchformer_synchronizability", _SF_README,
            "converts to SynchformerSynchronizabilityModule (13 segments; the 2-way head as one logit l1 - l0). "
            "The file has no offset head: detect's offsets from it are flat (all zero logits); use "
            "synchformer-audioset for offsets. Tested on VGGSound-Sparse: Acc@1 73.5, AUROC 0.83"),
    # SparseSync: LRS3 ('No Face Crop') pre-training, then fine-tuned on VGGSound(-Sparse) / AudioSet
    _iashin("sparsesync-lrs3", SPARSESYNC_PAPER, "LRS3 ('No Face Crop'), 21 classes", "22-07-13T22-25-49",
            "63f883e", "sparsesync", _SS_README, "tested on LRS3 ('No Face Crop'): accuracy 96.9"),
    _iashin("sparsesync-lrs3-3cls", SPARSESYNC_PAPER, "LRS3 ('No Face Crop'), 3 classes", "22-07-18T08-00-00",
            "56876db", "sparsesync", _SS_README, "offsets -1 / 0 / +1 s; tested on LRS3: accuracy 95.5"),
    _iashin("sparsesync-vggsound-sparse", SPARSESYNC_PAPER, "VGGSound-Sparse (from LRS3), 21 classes",
            "22-07-28T15-49-45", "a26f207", "sparsesync", _SS_README,
            "tested on VGGSound-Sparse: accuracy 44.3"),
    _iashin("sparsesync-vggsound-sparse-3cls", SPARSESYNC_PAPER, "VGGSound-Sparse (from LRS3), 3 classes",
            "22-08-13T21-55-03", "08bb68a", "sparsesync", _SS_README,
            "offsets -1 / 0 / +1 s; tested on VGGSound-Sparse: accuracy 60.3"),
    _iashin("sparsesync-vggsound", SPARSESYNC_PAPER, "VGGSound (from LRS3), 21 classes", "22-09-21T21-00-52",
            "83fba5f", "sparsesync", _SS_README, "tested on VGGSound-Sparse: accuracy 51.2"),
    _iashin("sparsesync-audioset", SPARSESYNC_PAPER, "AudioSet (from LRS3), 21 classes", "23-02-26T22-31-22",
            "d3c40b4", "sparsesync", _SS_README, "tested on VGGSound-Sparse: accuracy 56.7"),
    OfficialWeights(
        name="vocalist-lrs2", paper="VocaLiST (Kadandale et al., INTERSPEECH 2022)", dataset="LRS2, 5-frame context",
        filename="vocalist_5f_lrs2.pth", url=None, checksum=None, model="vocalist",
        source="vskadandale/vocalist README.md ('[Weights]' link); file name from test_lrs2.py's default",
        page="https://drive.google.com/drive/folders/1-g4qHUNNcCZpmSqEflKMxPMvwnn9e88N",
        notes="a Google Drive folder, no direct file URL: download by hand, then "
              "`avsync detect --model vocalist-lrs2 --weights PATH`"),
    OfficialWeights(
        name="syncnet-v2", paper="SyncNet (Chung & Zisserman, ACCV 2016 Workshops)", dataset="not stated by the authors",
        filename="syncnet_v2.model", url=f"{_SYNCNET_DATA}/syncnet_v2.model",
        checksum=None, model="syncnet", source="joonson/syncnet_python download_model.sh",
        notes="the authors' script fetches it over plain http://; https:// is used here (the same "
              "script fetches sfd_face.pth from the same host over https)"),
    OfficialWeights(
        name="s3fd", paper="S3FD face detector (Zhang et al., ICCV 2017)",
        dataset="WIDER FACE", filename="sfd_face.pth", url=f"{_SYNCNET_DATA}/sfd_face.pth", checksum=None,
        model=None, source="joonson/syncnet_python download_model.sh",
        notes="not a sync model: the face detector syncnet_python runs before SyncNet; its state dict is "
              "loaded as is by avsync.faces.s3fd.S3FD"),
)

#: name -> entry
OFFICIAL_WEIGHTS: dict[str, OfficialWeights] = {w.name: w for w in _ENTRIES}


def names() -> list[str]:
    return list(OFFICIAL_WEIGHTS)


def get(name: str) -> OfficialWeights:
    """The entry called ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return OFFICIAL_WEIGHTS[name]
    except KeyError:
        raise KeyError(f"no official weights called {name!r}; known: {', '.join(OFFICIAL_WEIGHTS)}") from None

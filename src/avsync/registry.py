"""One registry of the suite's named model configurations (timm style): ``register_model``,
``create_model(name)``, ``list_models()``.

Each paper's package (``avsync.papers.<paper>``) registers its named configurations in its
``__init__``: for each name, the LightningModule that trains it, the network's configuration
table and arch key, the converter of the authors' checkpoints, the detector protocol that runs it
on a file (``avsync detect``, ``avsync score``) and the official weights published for it
(:mod:`avsync.weights.catalog`). ``avsync --help``, ``avsync detect``, ``avsync convert``, the
checkpoint loader and ``avsync weights`` read this table and nothing else. Adding a paper is one
package and one registration.

Everything here is named by dotted path and imported on use, so listing the registry (e.g. for
``avsync --help``) imports neither torch nor any model.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelEntry", "register_model", "get_model", "list_models", "create_model", "entry_for_module",
           "entry_for_checkpoint", "converter_names", "get_converter", "import_path", "LEGACY_CLASS_PATHS"]

#: detector protocols (the factories live in :mod:`avsync.detect.detectors`)
DETECTOR_PROTOCOLS = ("grid", "pair_scoring", "syncnet", "vocalist", "divas", "avst")


@dataclass(frozen=True)
class ModelEntry:
    """One named configuration of one paper's model."""

    name: str
    paper: str  # the package under avsync.papers
    summary: str  # one line for listings
    module: str  # LightningModule class path
    arch: str  # key in the family's configuration table (the module's ``arch`` argument)
    configs: str | None = None  # "module.path:TABLE" of the network configurations (None: no network of its own)
    converter: str | None = None  # module path of the official-checkpoint converter (timm's checkpoint_filter_fn & co)
    detector: str | None = None  # one of DETECTOR_PROTOCOLS; None: the module does not predict offsets
    public: bool = True  # listed in ``avsync --help`` (False: a second name of a listed module)

    @property
    def weights(self) -> tuple[str, ...]:
        """The official weights published for this configuration (:mod:`avsync.weights.catalog`)."""
        from avsync.weights.catalog import OFFICIAL_WEIGHTS
        return tuple(w.name for w in OFFICIAL_WEIGHTS.values() if w.model == self.name)

    def module_class(self):
        return import_path(self.module)

    def config(self):
        """The network configuration dataclass of this name (imports the network module)."""
        if self.configs is None:
            raise ValueError(f"{self.name}: no network configuration table registered")
        module, _, table = self.configs.partition(":")
        return getattr(importlib.import_module(module), table)[self.arch]

    def input_spec(self):
        """The model's input contract (:class:`avsync.inputs.InputSpec`), as its module states it."""
        return create_model(self.name).input_spec


_REGISTRY: dict[str, ModelEntry] = {}
_LOADED = False

#: class paths of the suite before the per-paper packages (checkpoints written then still load)
LEGACY_CLASS_PATHS: dict[str, str] = {
    "avsync.lit.avst.AVSTModule": "avsync.papers.avst.module.AVSTModule",
    "avsync.lit.sparsesync.SparseSyncModule": "avsync.papers.sparsesync.module.SparseSyncModule",
    "avsync.lit.selector_pretraining.SelectorContrastivePretraining":
        "avsync.papers.sparsesync.selector_pretraining.SelectorContrastivePretraining",
    "avsync.lit.synchformer_stage1.SynchformerStage1Module": "avsync.papers.synchformer.stage1.SynchformerStage1Module",
    "avsync.lit.synchformer_stage2.SynchformerStage2Module": "avsync.papers.synchformer.stage2.SynchformerStage2Module",
    "avsync.lit.synchformer_synchronizability.SynchformerSynchronizabilityModule":
        "avsync.papers.synchformer.synchronizability.SynchformerSynchronizabilityModule",
    "avsync.lit.vocalist.VocaLiSTModule": "avsync.papers.vocalist.module.VocaLiSTModule",
    "avsync.lit.divas.DiVASModule": "avsync.papers.divas.module.DiVASModule",
    "avsync.lit.syncnet.SyncNetModule": "avsync.papers.syncnet.module.SyncNetModule",
}


def register_model(name: str, **fields: Any) -> ModelEntry:
    """Register a named configuration (called from the paper package's ``__init__``)."""
    entry = ModelEntry(name=name, **fields)
    if entry.detector is not None and entry.detector not in DETECTOR_PROTOCOLS:
        raise ValueError(f"{name}: unknown detector protocol {entry.detector!r}; one of {DETECTOR_PROTOCOLS}")
    old = _REGISTRY.get(name)
    if old is not None and old != entry:
        raise ValueError(f"model name {name!r} registered twice, differently ({old.module} / {entry.module})")
    _REGISTRY[name] = entry
    return entry


def _load() -> None:
    """Import every paper package once (their ``__init__`` registers; cheap: no torch)."""
    global _LOADED
    if _LOADED:
        return
    import avsync.papers
    for info in pkgutil.iter_modules(avsync.papers.__path__, "avsync.papers."):
        if info.ispkg:
            importlib.import_module(info.name)
    _LOADED = True


def list_models(paper: str | None = None, public_only: bool = False) -> list[str]:
    _load()
    return [n for n, e in _REGISTRY.items() if (paper is None or e.paper == paper) and (e.public or not public_only)]


def get_model(name: str) -> ModelEntry:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no model called {name!r}; registered: {', '.join(_REGISTRY)}") from None


def create_model(name: str, **kwargs: Any):
    """A fresh (untrained) LightningModule of the named configuration."""
    entry = get_model(name)
    return entry.module_class()(**{"arch": entry.arch, **kwargs})


def import_path(path: str):
    """``pkg.module.Name`` -> the object (legacy class paths resolved)."""
    path = LEGACY_CLASS_PATHS.get(path, path)
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def entry_for_module(module: Any) -> ModelEntry | None:
    """The entry of a LightningModule instance: its class (or the nearest registered base) and its arch."""
    _load()
    for cls in type(module).__mro__:
        path = f"{cls.__module__}.{cls.__qualname__}"
        candidates = [e for e in _REGISTRY.values() if e.module == path]
        if candidates:
            arch = getattr(module, "hparams", {}).get("arch")
            return next((e for e in candidates if e.arch == arch), candidates[0])
    return None


def entry_for_checkpoint(hparams: dict) -> ModelEntry | None:
    """The entry whose module and arch a checkpoint's hyper-parameters name (class path first)."""
    _load()
    class_path = hparams.get("_class_path")
    class_path = LEGACY_CLASS_PATHS.get(class_path, class_path)
    arch = hparams.get("arch")
    matches = [e for e in _REGISTRY.values() if (class_path is None or e.module == class_path)
               and (arch is None or e.arch == arch)]
    # without a class path, an arch alone means the offset predictor (not a pre-training stage of the arch)
    matches.sort(key=lambda e: e.detector is None)
    return matches[0] if matches else None


def converter_names() -> list[str]:
    """Names whose authors' checkpoints ``avsync convert`` reads."""
    _load()
    return [n for n, e in _REGISTRY.items() if e.converter]


_CONVERTER_FUNCTIONS = ("checkpoint_filter_fn", "load_official", "lightning_checkpoint")


def get_converter(name: str):
    """The converter module of the named configuration (checked for the three converter functions)."""
    _load()
    entry = _REGISTRY.get(name)
    if entry is None or entry.converter is None:
        raise ValueError(f"no converter for {name!r}; available: {converter_names()}")
    module = importlib.import_module(entry.converter)
    missing = [f for f in _CONVERTER_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise TypeError(f"converter module {module.__name__} lacks {missing}")
    return module


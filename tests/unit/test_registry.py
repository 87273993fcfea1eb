"""The one model registry: every named configuration of every paper, and what reads it."""
import importlib

import pytest

from avsync.registry import create_model, entry_for_checkpoint, get_converter, get_model, list_models
from avsync.weights.catalog import OFFICIAL_WEIGHTS


def test_every_network_configuration_is_a_registered_name():
    """A configuration added to a paper's table without registering it would be invisible to
    detect, convert and the checkpoint loader."""
    tables = {e.configs for e in map(get_model, list_models()) if e.configs}
    registered = {get_model(n).arch for n in list_models()}
    for configs in tables:
        module, _, table = configs.partition(":")
        missing = set(getattr(importlib.import_module(module), table)) - registered
        assert not missing, f"{configs}: not registered: {sorted(missing)}"


def test_every_entry_points_at_real_code():
    for name in list_models():
        entry = get_model(name)
        assert entry.module_class().__name__ == entry.module.rsplit(".", 1)[1]
        if entry.configs:
            assert type(entry.config()).__name__.endswith("Config"), name
        if entry.converter:
            assert get_converter(name).__name__ == entry.converter


def test_official_weights_name_a_model_with_a_converter():
    for weights in OFFICIAL_WEIGHTS.values():
        if weights.model is not None:
            entry = get_model(weights.model)
            assert entry.converter and weights.name in entry.weights


def test_a_checkpoint_without_class_path_is_found_by_arch_and_prefers_the_offset_model():
    assert get_model("sparsesync_toy").module.endswith("SparseSyncModule")
    assert entry_for_checkpoint({"arch": "sparsesync_toy"}).name == "sparsesync_toy"
    assert entry_for_checkpoint({"arch": "no_such_arch"}) is None
    legacy = entry_for_checkpoint({"_class_path": "avsync.lit.vocalist.VocaLiSTModule", "arch": "vocalist_toy"})
    assert legacy.name == "vocalist_toy"


def test_create_model_builds_the_named_configuration():
    module = create_model("syncnet_toy")
    assert type(module).__name__ == "SyncNetModule" and module.hparams["arch"] == "syncnet_toy"
    assert get_model("syncnet_toy").input_spec() == module.input_spec


def test_unknown_names_are_clear_errors():
    with pytest.raises(KeyError, match="registered: .*sparsesync"):
        get_model("sparsync")
    with pytest.raises(ValueError, match="no converter for 'divas_toy'"):
        get_converter("divas_toy")

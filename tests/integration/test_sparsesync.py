"""SparseSync (Iashin et al., BMVC 2022): the architecture against the paper and the official code.

The paper's numbers: §7.3 (125x224x224 frames -> S3D 16x7x7x1024; 5 s at 16 kHz -> 257x626
log-spectrogram -> ResNet18 9x20x512), §3 (16 selectors per modality; the synchronisation
transformer sees [OFF; q_v; MOD; q_a]); parameter counts are those of the official code
(docs/models.md). The official checkpoint layout is ``shared/spec/official_state_dicts/sparsesync.json``.
"""
from __future__ import annotations

import json
import math
import pickle
import sys
import types

import pytest
import torch
import torch.nn.functional as F
import torchvision

from avsync.convert import read_state_dict
from avsync.registry import get_converter
from avsync.convert.cli import main as convert_main
from avsync.papers.sparsesync.convert import checkpoint_filter_fn, convert_s3d_key, load_official
from avsync.inputs import LogSpectrogram
from avsync.papers.sparsesync.module import SparseSyncModule, build_sparsesync
from avsync.papers.sparsesync.s3d import S3D
from avsync.papers.sparsesync.network import SPARSESYNC_CONFIGS, SparseSync
from conftest import SHARED

MANIFEST = SHARED / "spec" / "official_state_dicts" / "sparsesync.json"
OFFICIAL_PARAMS = {1: 31_227_756, 2: 42_788_204, 3: 54_348_652, 6: 89_029_996}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def manifest() -> dict[str, list[int]]:
    if not MANIFEST.is_file():
        pytest.fail(f"official state-dict manifest not found at {MANIFEST} (set AVSYNC_SHARED)")
    return json.loads(MANIFEST.read_text())["state_dict"]


@pytest.fixture(scope="module")
def official_state(manifest) -> dict[str, torch.Tensor]:
    """A random state dict with the official names and shapes (depth 3, 21 classes).

    Values are scaled so that activations stay O(1) through the network; running variances are
    positive; ``num_batches_tracked`` are int64 scalars as in a real checkpoint.
    """
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in manifest.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1234, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) / math.sqrt(max(1, math.prod(shape[1:])))
    return state


# -- size --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", sorted(OFFICIAL_PARAMS))
def test_parameter_count_equals_official_code(depth):
    with torch.device("meta"):
        model = SparseSync(SPARSESYNC_CONFIGS[f"sparsesync_depth{depth}"])
    assert n_params(model) == OFFICIAL_PARAMS[depth]


def test_full_size_shapes_follow_paper_section_7_3():
    """5 s at 25 fps / 16 kHz, batch 1: every intermediate map has the size §7.3 gives."""
    torch.manual_seed(0)
    model = SparseSync(SPARSESYNC_CONFIGS["sparsesync"]).eval()
    spec = LogSpectrogram(n_fft=512, hop_length=128)(torch.randn(1, 5 * 16000))
    assert spec.shape == (1, 1, 257, 626)

    seen = {}
    hooks = [getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o.shape))
             for name in ("vfeat_extractor", "v_bridge", "afeat_extractor")]
    with torch.no_grad():
        logits = model(torch.randn(1, 125, 3, 224, 224), spec)
    for h in hooks:
        h.remove()
    assert seen["vfeat_extractor"] == (1, 1024, 16, 7, 7)   # S3D: 16x7x7x1024
    assert seen["v_bridge"] == (1, 512, 16, 7, 7)           # 1x1x1 conv to the transformer width
    assert seen["afeat_extractor"] == (1, 512, 9, 20)       # ResNet18: 9x20x512
    assert logits.shape == (1, 21)
    assert torch.isfinite(logits).all()


def test_s3d_at_width_1_is_torchvisions_s3d_features():
    with torch.device("meta"):
        ours = S3D(width=1.0).state_dict()
        # torchvision's full-model keys, so that its Kinetics-400 checkpoint loads as it is
        theirs = {k: v for k, v in torchvision.models.video.s3d().state_dict().items() if k.startswith("features.")}
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


# -- converter -----------------------------------------------------------------------------------------
def test_converted_keys_match_model_one_to_one(manifest):
    converted = {("vfeat_extractor." + convert_s3d_key(k[len("vfeat_extractor."):])
                  if k.startswith("vfeat_extractor.") else k): shape for k, shape in manifest.items()}
    assert len(converted) == len(manifest)                  # the rename is injective
    with torch.device("meta"):
        own = SparseSync(SPARSESYNC_CONFIGS["sparsesync"]).state_dict()
    assert set(converted) == set(own)
    assert all(list(own[k].shape) == shape for k, shape in converted.items())
    # the official visual extractor was the only part named differently
    assert {k for k in manifest if k not in own} == {k for k in manifest if k.startswith("vfeat_extractor.")}


def test_converter_loads_strict_and_keeps_every_value(official_state):
    # as the official training script saves it: {'model': ...}, here with a DDP prefix as well
    wrapped = {"model": {f"module.{k}": v for k, v in official_state.items()}, "epoch": 7}
    model = SparseSync(SPARSESYNC_CONFIGS["sparsesync"])
    converted = checkpoint_filter_fn(wrapped, model)
    model.load_state_dict(converted, strict=True)

    own = model.state_dict()
    for key, value in official_state.items():
        new_key = ("vfeat_extractor." + convert_s3d_key(key[len("vfeat_extractor."):])
                   if key.startswith("vfeat_extractor.") else key)
        assert torch.equal(own[new_key], value), key
    assert own["vfeat_extractor.features.0.0.1.num_batches_tracked"].dtype == torch.int64
    # idempotent: an already converted dict passes through unchanged
    again = checkpoint_filter_fn(converted)
    assert again.keys() == converted.keys() and all(again[k] is converted[k] for k in converted)


def test_load_official_infers_depth_and_classes(official_state):
    model = load_official({"model": official_state})
    assert (model.cfg.depth, model.cfg.num_classes) == (3, 21)
    assert n_params(model) == OFFICIAL_PARAMS[3]

    # a shallower 3-class checkpoint: drop selector/sync blocks 1, 2 and head rows
    shallow = {k: v for k, v in official_state.items() if not any(f"blocks.{i}." in k for i in (1, 2))}
    shallow["transformer.off_head.weight"] = official_state["transformer.off_head.weight"][:3]
    model = load_official(shallow)
    assert (model.cfg.depth, model.cfg.num_classes) == (1, 3)


def test_converted_s3d_computes_like_the_official_s3d(official_state):
    """Our S3D with converted weights vs the official computation, written out from its definition.

    kylemin's S3D: SepConv3d = (1,k,k) conv -> BN -> ReLU -> (k,1,1) conv -> BN -> ReLU; BasicConv3d =
    conv -> BN -> ReLU; all convs bias-free, BN eps 1e-3; branch 3 max-pools 3x3x3 before its conv;
    branches concatenated 0..3. Random BN statistics make a swapped bn_s/bn_t (same shapes) visible.
    """
    w = {k[len("vfeat_extractor."):]: v for k, v in official_state.items() if k.startswith("vfeat_extractor.")}

    def bn_relu(x, p):
        return F.relu(F.batch_norm(x, w[f"{p}.running_mean"], w[f"{p}.running_var"], w[f"{p}.weight"],
                                   w[f"{p}.bias"], training=False, eps=1e-3))

    def basic(x, p):
        return bn_relu(F.conv3d(x, w[f"{p}.conv.weight"]), f"{p}.bn")

    def sep(x, p, stride=1, pad=1):
        x = F.conv3d(x, w[f"{p}.conv_s.weight"], stride=(1, stride, stride), padding=(0, pad, pad))
        x = bn_relu(x, f"{p}.bn_s")
        return bn_relu(F.conv3d(x, w[f"{p}.conv_t.weight"], stride=(stride, 1, 1), padding=(pad, 0, 0)), f"{p}.bn_t")

    def mixed(x, p):
        return torch.cat([basic(x, f"{p}.branch0.0"),
                          sep(basic(x, f"{p}.branch1.0"), f"{p}.branch1.1"),
                          sep(basic(x, f"{p}.branch2.0"), f"{p}.branch2.1"),
                          basic(F.max_pool3d(x, 3, 1, 1), f"{p}.branch3.1")], dim=1)

    pools = {1: ((1, 3, 3), (1, 2, 2), (0, 1, 1)), 4: ((1, 3, 3), (1, 2, 2), (0, 1, 1)),
             7: ((3, 3, 3), (2, 2, 2), (1, 1, 1)), 13: ((2, 2, 2), (2, 2, 2), (0, 0, 0))}

    def official_s3d(x):
        x = sep(x, "base.0", stride=2, pad=3)
        for i in range(1, 16):
            if i in pools:
                x = F.max_pool3d(x, *pools[i])
            elif i == 2:
                x = basic(x, "base.2")
            elif i == 3:
                x = sep(x, "base.3")
            else:
                x = mixed(x, f"base.{i}")
        return x

    model = load_official(official_state).eval()
    x = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, ref = model.vfeat_extractor(x), official_s3d(x)
    assert ours.shape == ref.shape == (1, 1024, 1, 1, 1)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_convert_cli_writes_a_checkpoint_the_module_loads(official_state, tmp_path, monkeypatch):
    """``avsync convert``: an official-style pickle in, a weights_only-loadable Lightning checkpoint out."""
    # the official checkpoints also pickle the training config (an OmegaConf object); imitate that with
    # an object whose module exists while saving and is gone when loading
    fake = types.ModuleType("official_only_cfg")

    class DictConfig:
        def __init__(self, content):
            self.content = content

    DictConfig.__module__, DictConfig.__qualname__ = fake.__name__, "DictConfig"
    fake.DictConfig = DictConfig
    src, dst = tmp_path / "official.pt", tmp_path / "converted.ckpt"
    with monkeypatch.context() as m:
        m.setitem(sys.modules, fake.__name__, fake)
        torch.save({"model": official_state, "args": DictConfig({"lr": 5e-6}), "epoch": 3}, src)
    assert fake.__name__ not in sys.modules
    with pytest.raises(pickle.UnpicklingError):  # what the converter has to get around, without unpickling code
        torch.load(src, weights_only=True)

    assert get_converter("sparsesync").__name__ == "avsync.papers.sparsesync.convert"
    assert convert_main(["--model", "sparsesync", "--src", str(src), "--dst", str(dst)]) == 0

    ckpt = torch.load(dst, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"] == {"arch": "sparsesync", "arch_overrides": {}}
    head = official_state["transformer.off_head.weight"]
    assert torch.equal(ckpt["state_dict"]["net.transformer.off_head.weight"], head)
    assert torch.equal(read_state_dict(dst)["net.transformer.off_head.weight"], head)

    module = SparseSyncModule.load_from_checkpoint(dst, map_location="cpu", weights_only=True)
    assert torch.equal(module.net.transformer.off_head.weight, head)
    s3d_key = "vfeat_extractor.base.15.branch2.1.bn_t.running_var"
    assert torch.equal(module.net.vfeat_extractor.features[15].branch2[1][1][1].running_var, official_state[s3d_key])

    module = SparseSyncModule(init_from=str(dst))
    assert torch.equal(module.net.transformer.off_head.weight, head)


# -- behaviour --------------------------------------------------------------------------------------------
def test_toy_config_trains_end_to_end_through_the_module():
    torch.manual_seed(0)
    module = SparseSyncModule(arch="sparsesync_toy", log_figures=False).train()
    batch = {"video": torch.randint(0, 256, (2, 125, 32, 32, 3), dtype=torch.uint8),  # as data modules deliver
             "audio": torch.randn(2, 80000), "target": torch.tensor([3, 17])}
    video, spec = module.model_inputs(batch)
    assert video.shape == (2, 125, 3, 32, 32) and spec.shape == (2, 1, 257, 626)

    logits = module.net(video, spec)
    assert logits.shape == (2, 21)
    F.cross_entropy(logits, batch["target"]).backward()
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    assert trainable
    for name, p in trainable:
        assert p.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(p.grad).all(), name


def test_selectors_fix_the_sync_transformer_length():
    """Eq. 3-4: however long the input, the sync transformer sees [OFF; 16 q_v; MOD; 16 q_a]."""
    torch.manual_seed(0)
    # positional tables large enough for 7 s (22 visual steps, 28 audio frames)
    net = build_sparsesync("sparsesync_toy", {"visual_block": [24, 2, 2], "audio_block": [9, 32]}).eval()
    spectrogram = LogSpectrogram(n_fft=512, hop_length=128)
    seen = {}
    net.transformer.v_selector.register_forward_hook(lambda m, i, o: seen.__setitem__("vis", i[0].shape))
    net.transformer.a_selector.register_forward_hook(lambda m, i, o: seen.__setitem__("aud", i[0].shape))
    net.transformer.global_transformer.blocks[0].register_forward_hook(
        lambda m, i, o: seen.__setitem__("sync", i[0].shape))

    contexts = []
    for seconds in (2, 7):
        with torch.no_grad():
            logits = net(torch.randn(1, 25 * seconds, 3, 32, 32), spectrogram(torch.randn(1, 16000 * seconds)))
        assert logits.shape == (1, 21)
        assert seen["sync"] == (1, 1 + 16 + 1 + 16, 64)
        contexts.append((math.prod(seen["vis"][1:-1]), math.prod(seen["aud"][1:-1])))
    (v2, a2), (v7, a7) = contexts
    assert v7 > 3 * v2 and a7 > 3 * a2  # the selectors' context grows with the input, their output does not

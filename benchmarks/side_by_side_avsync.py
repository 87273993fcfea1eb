#!/usr/bin/env python
"""The avsync side of ``side_by_side.py``: one row of avsync, timed call by call.

Weights: avsync's converters loading ``avsync.convert.synthetic_weights`` of the authors' layouts
(``tests/goldens/*_layout.json``, the parity tests' files), so both sides hold the same numbers.
Training rows run avsync's model, its loss and its optimiser recipe (``avsync.training.optim``: Adam,
lr warm-up) on the authors'-shape inputs permuted into avsync's layout outside the timed call;
inference rows run what ``avsync detect`` runs per clip (decode, the model's procedure, decision).

``--levers`` switch on the speed-ups under test (each measured as its own column by the driver):

* ``foreach`` / ``fused``: the multi-tensor or fused Adam kernels (same update rule);
* ``channels_last``: 2D/3D convolution weights (hence activations) in channels-last order;
* ``compile``: ``torch.compile`` (inductor) of the network; its compile time is in the warm-up call;
* ``decode_needed``: VocaLiST's clip decoded only over the frames the procedure scores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from side_by_side_protocol import (FIXTURES, LRS3_FACE, LRS3_FULL, VGGSOUND, VOCALIST_FRAMES,  # noqa: E402
                                   serve, step_inputs, train_step)

GOLDENS = HERE.parent / "tests" / "goldens"
LAYOUTS = {"syncnet": GOLDENS / "syncnet" / "syncnet_layout.json",
           "vocalist": GOLDENS / "vocalist" / "vocalist_layout.json",
           "sparsesync": GOLDENS / "sparsesync_layout.json",
           "synchformer": GOLDENS / "synchformer_layout.json"}
LEVERS = ("foreach", "fused", "channels_last", "compile", "decode_needed")


def state(name: str) -> dict:
    from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict
    return synthetic_state_dict(read_layout(LAYOUTS[name]))


def net_of(name: str) -> torch.nn.Module:
    from avsync.registry import get_converter
    return get_converter(name).load_official(state(name))


def optimiser(params, lr: float, levers: set[str]) -> torch.optim.Optimizer:
    """avsync's recipe (``adam_with_warmup``); with a lever, the same Adam with another kernel."""
    from avsync.training.optim import adam_with_warmup

    if "foreach" in levers or "fused" in levers:
        return torch.optim.Adam([p for p in params if p.requires_grad], lr=lr,
                                foreach="foreach" in levers or None, fused="fused" in levers or None)
    return adam_with_warmup(params, lr, warmup_steps=1000)["optimizer"]


def prepared(net: torch.nn.Module, levers: set[str]):
    """The network with the layout/compile levers applied; returns (module to train, callable)."""
    if "channels_last" in levers:
        from bench_common import to_channels_last
        to_channels_last(net)
    return net, (torch.compile(net) if "compile" in levers else net)


# -- training rows ------------------------------------------------------------------------------
def syncnet_train(args, levers):
    from avsync.papers.syncnet.network import contrastive_loss

    net, run = prepared(net_of("syncnet").train(), levers)
    x = step_inputs("syncnet_train", args.batch)
    opt = optimiser(net.parameters(), 1e-4, levers)
    return train_step(net, opt, lambda: contrastive_loss(run(x["video"], x["mfcc"]), x["y"], 20.0)), {}


def vocalist_train(args, levers):
    from avsync.papers.vocalist.inputs import VocaLiSTMel

    net, run = prepared(net_of("vocalist").train(), levers)
    mel = VocaLiSTMel()
    x = step_inputs("vocalist_train", args.batch)
    video = x["video"].unflatten(1, (5, 3)).contiguous()  # avsync's (B, T, 3, 48, 96)
    opt = optimiser(net.parameters(), 5e-5, levers)
    return train_step(net, opt, lambda: F.binary_cross_entropy_with_logits(run(video, mel(x["wav"])),
                                                                           x["y"].squeeze(-1))), {}


def sparsesync_train(args, levers):
    net, run = prepared(net_of("sparsesync").train(), levers)
    x = step_inputs("sparsesync_train", args.batch)
    opt = optimiser(net.parameters(), 5e-6, levers)
    return train_step(net, opt, lambda: F.cross_entropy(run(x["video"], x["spec"]), x["target"])), {}


def synchformer_net(levers):
    net = net_of("synchformer").train()
    for extractor in (net.vfeat_extractor, net.afeat_extractor):  # stage II: frozen, as avsync trains it
        extractor.requires_grad_(False).eval()
    return prepared(net, levers)[0]


def synchformer_train(args, levers):
    net = synchformer_net(levers)
    x = step_inputs("synchformer_train", args.batch)
    video = x["video"].permute(0, 1, 3, 2, 4, 5).contiguous()        # (B, S, 3, 16, H, W)
    mel = x["mel"][:, :, 0].transpose(-1, -2).contiguous()             # (B, S, 66, 128)
    features = torch.compile(net.features) if "compile" in levers else net.features
    opt = optimiser(net.parameters(), 5e-6, levers)

    def loss():
        with torch.no_grad():
            vis, aud = features(video, mel)
        return F.cross_entropy(net.sync(vis, aud), x["target"])

    return train_step(net, opt, loss), {}


def synchformer_cached_train(args, levers):
    net = synchformer_net(levers)
    x = step_inputs("synchformer_cached_train", args.batch)
    sync = torch.compile(net.sync) if "compile" in levers else net.sync
    opt = optimiser(net.parameters(), 5e-6, levers)
    return train_step(net, opt, lambda: F.cross_entropy(sync(x["vfeat"], x["afeat"]), x["target"])), {}


# -- inference rows -----------------------------------------------------------------------------
def detector(name: str, levers: set[str]):
    from avsync.registry import get_converter
    from avsync.detect.detectors import detector_for
    from avsync.detect.loading import module_from_checkpoint

    module = module_from_checkpoint(get_converter(name).lightning_checkpoint(state(name))).eval()
    if "channels_last" in levers:
        from bench_common import to_channels_last
        to_channels_last(module)
    return detector_for(module)


def clip_call(det, path: Path, offset_from_index, **scores_kwargs):
    from avsync.detect.decoding import decode_for_detector

    def call():
        frames, wav = decode_for_detector(path, det)
        best, conf = det.file_prediction(det.scores(frames, wav, **scores_kwargs))
        return [offset_from_index(best), conf]

    return call


def syncnet_infer(args, levers):
    det = detector("syncnet", levers)
    return clip_call(det, FIXTURES / LRS3_FACE, lambda i: i - det.vshift), {}


def vocalist_infer(args, levers):
    from avsync.media import read_audio, read_frames

    det = detector("vocalist", levers)
    path = FIXTURES / LRS3_FACE

    def call():  # the procedure on the clip's first VOCALIST_FRAMES frames, as the authors' folder holds
        if "decode_needed" in levers:
            frames = torch.from_numpy(read_frames(path, 0.0, VOCALIST_FRAMES / 25.0, 25.0, None))
            wav = torch.from_numpy(read_audio(path, 0.0, None, 16000).copy())
        else:
            frames, wav = det.decode(path)
        best, conf = det.file_prediction(det.scores(frames[:VOCALIST_FRAMES], wav))
        return [best - det.vshift, conf]

    return call, {}


def grid_infer(name: str, clip: str, levers: set[str]):
    det = detector(name, levers)
    call = clip_call(det, FIXTURES / clip, float, max_crops=1)  # offset class, its probability
    return call, {}


def sparsesync_infer(args, levers):
    return grid_infer("sparsesync", VGGSOUND, levers)


def synchformer_infer(args, levers):
    return grid_infer("synchformer", LRS3_FULL, levers)


def test_item(datamodule) -> object:
    """The data module's test data set (its first item is the fixture clip at its fixed offset)."""
    datamodule.setup("test")
    return datamodule.test_dataloader().dataset


_means_given: list[int] = []


def first_means(video: torch.Tensor, audio: torch.Tensor) -> list[float] | None:
    """The input means (the numerics column) of the first call only, so no timed call pays them."""
    _means_given.append(1)
    return [float(video.double().mean()), float(audio.double().mean())] if len(_means_given) == 1 else None


def grid_spec():
    from avsync.inputs import InputSpec
    return InputSpec(fps=25.0, duration_sec=5.0, frame_size=224, resize_short_side=256, sample_rate=16000,
                     offset_classes=21)


def sparsesync_loader(args, levers):
    import csv
    import tempfile

    from avsync.data_modules.vggsound import VGGSoundDataModule
    from avsync.inputs import FrameNormalize, LogSpectrogram

    tmp = Path(tempfile.mkdtemp(prefix="sbs_vggsound_"))
    stem = Path(VGGSOUND).stem
    with open(tmp / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerow((stem[:11], int(stem.split("_")[1]) // 1000, "placeholder", "test"))
    data = test_item(VGGSoundDataModule(
        root=str(FIXTURES / "vggsound"), meta_csv=str(tmp / "vggsound.csv"),
        fixed_offsets_csv={"test": str(FIXTURES / "metadata" / "vggsound_test_fixed_offsets_size21_crop5.csv")},
        input_spec=grid_spec(), batch_size=1, num_workers=0, probe_cache_dir=str(tmp / "cache")))
    frames, spec = FrameNormalize(), LogSpectrogram(n_fft=512, hop_length=128)

    def call():
        item = data[0]
        video, audio = frames(torch.as_tensor(item["video"])[None]), spec(torch.as_tensor(item["audio"])[None])
        return first_means(video, audio)

    return call, {}


def synchformer_loader(args, levers):
    import tempfile

    from avsync.data_modules.lrs3 import LRS3DataModule
    from avsync.papers.synchformer.network import SYNCHFORMER_CONFIGS, SegmentInputs

    tmp = Path(tempfile.mkdtemp(prefix="sbs_lrs3_"))
    (tmp / "test.txt").write_text("pretrain/C8zY0oAdQrs/00018\n")
    data = test_item(LRS3DataModule(
        root=str(FIXTURES / "lrs3"), variant="full_frame", split_files={"test": str(tmp / "test.txt")},
        fixed_offsets_csv={"test": str(FIXTURES / "metadata" / "lrs3_test_fixed_offsets_size21_crop5.csv")},
        input_spec=grid_spec(), batch_size=1, num_workers=0, probe_cache_dir=str(tmp / "cache")))
    inputs = SegmentInputs(SYNCHFORMER_CONFIGS["synchformer"])

    def call():  # the 4.8 s the 14 segments cover sit in the middle of the 5 s crop, as the authors take them
        item = data[0]
        frames, audio = torch.as_tensor(item["video"])[None, 2:122], torch.as_tensor(item["audio"])[None, 1280:78080]
        video, mel = inputs.video(frames, 14, 0.5), inputs.audio(audio, 14, 0.5)
        return first_means(video, mel)

    return call, {}


BUILDERS = {f.__name__: f for f in [syncnet_train, syncnet_infer, vocalist_train, vocalist_infer, sparsesync_train,
                                    synchformer_train, synchformer_cached_train, sparsesync_infer,
                                    synchformer_infer, sparsesync_loader, synchformer_loader]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--row", required=True, choices=sorted(BUILDERS))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--levers", default="", help="comma-separated: " + ", ".join(LEVERS))
    args = p.parse_args()
    levers = {lever for lever in args.levers.split(",") if lever}
    unknown = levers - set(LEVERS)
    if unknown:
        raise SystemExit(f"unknown lever(s) {sorted(unknown)}; choose from {LEVERS}")
    serve(lambda: BUILDERS[args.row](args, levers), args.threads)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""The authors' side of ``side_by_side.py``: one row of the authors' code, timed call by call.

Runs in the authors' Python environment (torch + their requirements; ``/work/venvs/ref`` here)
and imports their modules from the checkouts under ``--authors-root`` (SparseSync, Synchformer,
vocalist, syncnet_python); nothing of theirs is copied. Weights: ``avsync.convert.synthetic_weights``
of each model's own state-dict layout, loaded strictly (the generator is loaded by file path, it
needs only torch). Started by the driver, which talks to it through
``side_by_side_protocol.serve``::

    python benchmarks/side_by_side_authors.py --authors-root /work/ref --row syncnet_train --batch 16

Where the authors' repository has no training loop (syncnet_python), the step is their network +
the paper's contrastive loss + Adam, as avsync's; otherwise the step is what their training loop
does per batch (forward, their loss, backward, their optimiser). Inference rows run their
inference path (``SyncNetInstance.evaluate``, ``test_lrs2``'s Dataset + ``eval_model``, the
``example.py`` path of SparseSync / Synchformer: ``read_video``, test transforms, forward).
"""
from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import os
import shlex
import sys
import tempfile
import types
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from side_by_side_protocol import (FIXTURES, LRS3_FACE, LRS3_FULL, VGGSOUND, VOCALIST_FRAMES,  # noqa: E402
                                   serve, step_inputs, train_step)

REPO = HERE.parent
WHEELS = {"SparseSync": "torchvision-0.12.0-*.whl", "Synchformer": "torchvision-0.15.0-*.whl"}


def synthetic():
    spec = importlib.util.spec_from_file_location("synthetic_weights", REPO / "src/avsync/convert/synthetic_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_synthetic(model: torch.nn.Module) -> torch.nn.Module:
    state = synthetic().synthetic_state_dict({k: v.shape for k, v in model.state_dict().items()})
    model.load_state_dict(state, strict=True)
    return model


def cpu_only() -> None:
    """Their code calls ``.cuda()`` unconditionally in places; on a CPU machine make it a no-op."""
    if not torch.cuda.is_available():
        torch.nn.Module.cuda = lambda self, *a, **k: self
        torch.Tensor.cuda = lambda self, *a, **k: self


def enter(root: Path, repo: str) -> Path:
    path = (root / repo).resolve()
    if not path.is_dir():
        raise SystemExit(f"no {repo} checkout under {root}")
    os.chdir(path)  # their modules import each other from the repository root
    sys.path.insert(0, str(path))
    return path


# -- SyncNet -------------------------------------------------------------------------------------
def syncnet_train(args):
    enter(args.authors_root, "syncnet_python")
    cpu_only()
    from SyncNetModel import S

    net = load_synthetic(S(num_layers_in_fc_layers=1024)).train()
    x = step_inputs("syncnet_train", args.batch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def loss():
        d = F.pairwise_distance(net.forward_lip(x["video"]), net.forward_aud(x["mfcc"]))
        y = x["y"].float()
        return 0.5 * (y * d.pow(2) + (1 - y) * F.relu(20.0 - d).pow(2)).mean()

    return train_step(net, opt, loss), {"note": "their S + contrastive loss + Adam (syncnet_python has no trainer)"}


def syncnet_infer(args):
    enter(args.authors_root, "syncnet_python")
    cpu_only()
    module = importlib.import_module("SyncNetInstance")
    tmp = Path(tempfile.mkdtemp(prefix="sbs_syncnet_"))
    weights = tmp / "synthetic.model"
    torch.save(synthetic().synthetic_state_dict(
        {k: v.shape for k, v in module.S(num_layers_in_fc_layers=1024).state_dict().items()}), weights)
    inst = module.SyncNetInstance()
    inst.loadParameters(str(weights))
    clip = shlex.quote(str(FIXTURES / LRS3_FACE))

    def call():
        opt = types.SimpleNamespace(tmp_dir=str(tmp / "work"), reference="clip", batch_size=20, vshift=15)
        offset, conf, _ = inst.evaluate(opt, videofile=clip)
        return [float(offset), float(conf)]

    return call, {"note": "SyncNetInstance.evaluate (batch 20, vshift 15)"}


# -- VocaLiST ------------------------------------------------------------------------------------
def vocalist_module(args):
    enter(args.authors_root, "vocalist")
    sys.argv = [sys.argv[0]]  # test_lrs2 parses the command line when imported
    authors = importlib.import_module("test_lrs2")
    authors.device = torch.device("cpu")
    return authors


def vocalist_train(args):
    authors = vocalist_module(args)
    hp = authors.hparams
    model = load_synthetic(authors.SyncTransformer()).train()
    x = step_inputs("vocalist_train", args.batch)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-5)
    window = torch.hann_window(hp.win_size)

    def loss():  # their train loop's per-batch mel (train_vocalist_lrs2.train), then the model and BCE
        spec = torch.stft(x["wav"], n_fft=hp.n_fft, hop_length=hp.hop_size, win_length=hp.win_size,
                          window=window, return_complex=True)
        mel = authors.melscale(torch.abs(spec.detach().clone()).float())
        db = 20 * torch.log10(torch.clamp(mel, min=authors.MIN_LEVEL)) - hp.ref_level_db
        norm = torch.clip((2 * hp.max_abs_value) * ((db + authors.TOP_DB) / authors.TOP_DB) - hp.max_abs_value,
                          -hp.max_abs_value, hp.max_abs_value)
        out = model(x["video"].clone().detach(), norm[:, :, :-1].unsqueeze(1).clone().detach())
        return authors.logloss(out, x["y"].squeeze(-1))

    return train_step(model, opt, loss), {"note": "train_vocalist_lrs2's step: stft + MelScale, model, BCE, Adam"}


def vocalist_folder(clip: Path, folder: Path) -> None:
    """The Wav2Lip-style folder the VocaLiST golden is made from (JPEG frames + ffmpeg's mono wav):
    ``tests/parity/make_goldens_vocalist.prepare_folder``, loaded by path (it needs only numpy/torch)."""
    spec = importlib.util.spec_from_file_location("make_goldens_vocalist",
                                                  REPO / "tests/parity/make_goldens_vocalist.py")
    goldens = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(goldens)
    assert goldens.FRAMES == VOCALIST_FRAMES, (goldens.FRAMES, VOCALIST_FRAMES)
    goldens.prepare_folder(clip, folder, lossless=False)


def vocalist_infer(args):
    authors = vocalist_module(args)
    folder = Path(tempfile.mkdtemp(prefix="sbs_vocalist_")) / "clip"
    vocalist_folder(FIXTURES / LRS3_FACE, folder)
    model = load_synthetic(authors.SyncTransformer()).eval()
    dataset = object.__new__(authors.Dataset)
    dataset.split, dataset.all_videos = "test", [str(folder)]
    seen = {}
    calc_pdist = authors.calc_pdist

    def recording(model, feat1, feat2, vshift=15):
        seen["dists"] = calc_pdist(model, feat1, feat2, vshift=vshift)
        return seen["dists"]

    authors.calc_pdist = recording

    def call():
        vid, mels, lastframe = dataset[0]
        authors.eval_model([(vid[None], mels[None], torch.tensor([lastframe]))], authors.device, model)
        rows = torch.stack(seen["dists"]).double()  # (windows, 31); column i is offset 15 - i
        rows[rows == -1000] = float("nan")            # their mark of a shift that leaves the clip
        curve = rows.nanmean(0)
        best = int(torch.where(torch.isnan(curve), -torch.inf, curve).argmax())
        return [float(15 - best), float(curve[best] - curve.nanmedian())]

    return call, {"note": f"test_lrs2 Dataset[0] + eval_model, {VOCALIST_FRAMES} frames"}


# -- SparseSync and Synchformer ------------------------------------------------------------------
def grid_model(args, repo: str, config: str):
    enter(args.authors_root, repo)
    from omegaconf import OmegaConf
    from scripts.train_utils import get_model

    cfg = OmegaConf.load(f"configs/{config}")
    cfg.model.params.afeat_extractor.params.ckpt_path = None
    cfg.model.params.vfeat_extractor.params.ckpt_path = None
    torch.manual_seed(0)
    _, model = get_model(cfg, torch.device("cpu"))  # freezes the extractors where the config says so
    return cfg, load_synthetic(model)


def adam(cfg, model):
    from scripts.train_utils import get_optimizer
    return get_optimizer(cfg, model, num_gpus=1)


def sparsesync_train(args):
    cfg, model = grid_model(args, "SparseSync", "sparse_sync.yaml")
    x = step_inputs("sparsesync_train", args.batch)
    opt = adam(cfg, model.train())
    return train_step(model, opt, lambda: model(x["video"], x["spec"], {"offset_target": x["target"]})[0]), \
        {"note": "configs/sparse_sync.yaml, get_model + get_optimizer"}


def synchformer_train(args):
    cfg, model = grid_model(args, "Synchformer", "sync.yaml")
    x = step_inputs("synchformer_train", args.batch)
    opt = adam(cfg, model.train())
    return train_step(model, opt, lambda: model(x["video"], x["mel"], x["target"])[0]), \
        {"note": "configs/sync.yaml (extractors frozen), get_model + get_optimizer"}


def synchformer_cached_train(args):
    cfg, model = grid_model(args, "Synchformer", "sync.yaml")
    x = step_inputs("synchformer_cached_train", args.batch)
    opt = adam(cfg, model.train())

    def loss():  # their forward after the extractors
        v, a = model.vproj(x["vfeat"]), model.aproj(x["afeat"])
        logits = model.transformer(v.flatten(1, 2), a.flatten(1, 2))
        return model.compute_loss(logits, x["target"])

    return train_step(model, opt, loss), {"note": "their forward after the extractors (vproj, aproj, transformer)"}


def fixed_offset(csv_name: str, key: str) -> tuple[float, float]:
    with open(FIXTURES / "metadata" / csv_name, newline="") as f:
        for row in csv.DictReader(f):
            if row["path"] == key:
                return float(row["offset_sec"]), float(row["vstart_sec"])
    raise SystemExit(f"{key} has no row in {csv_name}")


def legacy_read_video(args, repo: str) -> None:
    wheels = sorted(w for folder in args.wheels for w in folder.glob(WHEELS[repo]))
    if not wheels:
        raise SystemExit(f"{repo}'s read_video needs the torchvision wheel {WHEELS[repo]} under --wheels")
    sys.path.insert(0, str(REPO / "tests" / "parity"))
    import legacy_read_video

    legacy_read_video.install(wheels[0])


def grid_infer(args, repo: str, config: str, clip: str, csv_name: str, key: str):
    legacy_read_video(args, repo)
    cfg, model = grid_model(args, repo, config)
    model.eval()
    from dataset.dataset_utils import get_video_and_audio
    from scripts.train_utils import get_transforms, prepare_inputs

    transforms = get_transforms(cfg, ["test"])["test"] if repo == "Synchformer" else get_transforms(cfg)["test"]
    offset_sec, vstart_sec = fixed_offset(csv_name, key)
    path = str(FIXTURES / clip)

    def call():
        rgb, audio, meta = get_video_and_audio(path, get_meta=True)
        item = {"video": rgb, "audio": audio, "meta": meta, "path": path, "split": "test",
                "targets": {"v_start_i_sec": vstart_sec, "offset_sec": offset_sec,
                            "vggsound_target": 0, "vggsound_label": "PLACEHOLDER"}}
        batch = torch.utils.data.default_collate([transforms(item)])
        aud, vid, _ = prepare_inputs(batch, torch.device("cpu"))
        with torch.no_grad():
            _, logits = model(vid.float(), aud)[:2]
        probs = logits[0].softmax(-1)
        return [float(probs.argmax()), float(probs.max())]  # offset class, its probability

    return call, {"note": f"example.py path of {repo} (no_grad forward, fp32)"}


def sparsesync_infer(args):
    return grid_infer(args, "SparseSync", "sparse_sync.yaml", VGGSOUND,
                      "vggsound_test_fixed_offsets_size21_crop5.csv", Path(VGGSOUND).stem)


def synchformer_infer(args):
    return grid_infer(args, "Synchformer", "sync.yaml", LRS3_FULL,
                      "lrs3_test_fixed_offsets_size21_crop5.csv", "pretrain/C8zY0oAdQrs/00018")


def test_transforms(repo: str, config: str):
    from omegaconf import OmegaConf
    from scripts.train_utils import get_transforms

    cfg = OmegaConf.load(f"configs/{config}")
    return get_transforms(cfg, ["test"])["test"] if repo == "Synchformer" else get_transforms(cfg)["test"]


def item_call(data):
    """Their item; the input means (the numerics column) of the first call only, so no timed call pays them."""
    calls = []

    def call():
        item = data[0]
        calls.append(1)
        if len(calls) == 1:
            return [float(item["video"].double().mean()), float(item["audio"].double().mean())]

    return call


def sparsesync_loader(args):
    legacy_read_video(args, "SparseSync")
    enter(args.authors_root, "SparseSync")
    from dataset.vggsound import VGGSound

    path = FIXTURES / VGGSOUND
    offset_sec, vstart_sec = fixed_offset("vggsound_test_fixed_offsets_size21_crop5.csv", path.stem)
    data = object.__new__(VGGSound)  # their __getitem__ on the clip, without their split files
    data.__dict__.update(dataset=[str(path)], transforms=test_transforms("SparseSync", "sparse_sync.yaml"),
                         split="test", max_clip_len_sec=None, load_fixed_offsets_on_test=True,
                         video2target={path.stem[:11]: 0}, target2label={0: "placeholder"},
                         vid2offset_params={path.stem: {"offset_sec": offset_sec, "v_start_i_sec": vstart_sec}})

    return item_call(data), {"note": "dataset.vggsound.VGGSound.__getitem__ with transform_sequence_test"}


def synchformer_loader(args):
    legacy_read_video(args, "Synchformer")
    enter(args.authors_root, "Synchformer")
    from dataset.lrs import LRS3

    root = FIXTURES / "lrs3" / Path(LRS3_FULL).parts[1]
    key = "pretrain/C8zY0oAdQrs/00018"
    offset_sec, vstart_sec = fixed_offset("lrs3_test_fixed_offsets_size21_crop5.csv", key)
    data = object.__new__(LRS3)
    data.__dict__.update(dataset=[str(root / f"{key}.mp4")], transforms=test_transforms("Synchformer", "sync.yaml"),
                         split="test", max_clip_len_sec=11, load_fixed_offsets_on=["test"], vids_dir=str(root),
                         vid2offset_params={key: {"offset_sec": offset_sec, "v_start_i_sec": vstart_sec}})

    return item_call(data), {"note": "dataset.lrs.LRS3.__getitem__ with transform_sequence_test"}


BUILDERS = {f.__name__: f for f in [syncnet_train, syncnet_infer, vocalist_train, vocalist_infer, sparsesync_train,
                                    synchformer_train, synchformer_cached_train, sparsesync_infer,
                                    synchformer_infer, sparsesync_loader, synchformer_loader]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--authors-root", type=Path, required=True)
    p.add_argument("--row", required=True, choices=sorted(BUILDERS))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--wheels", type=Path, nargs="*", default=[],
                   help="folders holding the torchvision wheels their read_video needs (0.12.0, 0.15.0)")
    args = p.parse_args()
    args.authors_root = args.authors_root.resolve()
    serve(lambda: BUILDERS[args.row](args), args.threads)


if __name__ == "__main__":
    main()

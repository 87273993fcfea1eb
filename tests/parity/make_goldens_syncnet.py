#!/usr/bin/env python
"""Make SyncNet's golden parity files by running the authors' code (joonson/syncnet_python).

Not run by the tests; they read what it writes to ``tests/goldens/syncnet/``. Needs a Python with
the authors' requirements (torch, numpy, opencv, scipy, python_speech_features) and ``ffmpeg`` on
PATH, because ``SyncNetInstance.evaluate`` shells out to it::

    python tests/parity/make_goldens_syncnet.py --authors-repo /path/to/syncnet_python

What it does, all with the authors' code:

1. lists the key layout of their ``SyncNetModel.S`` -> ``syncnet_layout.json``;
2. fills it with :func:`avsync.convert.synthetic_weights.synthetic_state_dict` and loads
   it with their ``SyncNetInstance.loadParameters``;
3. runs their ``SyncNetInstance.evaluate`` (vshift 15, batch 20) on the face-crop LRS3 fixture
   clip: ffmpeg extracts JPEG frames and a 16 kHz int16 wav, OpenCV reads the frames,
   python_speech_features computes the MFCC, 5-frame windows are embedded and the ±15-frame
   distance search gives the offset, the confidence and the distance array. The two network
   streams are wrapped to record their inputs and outputs;
4. runs it a second time with the frames extracted losslessly (``-c:v png`` added to the
   authors' ffmpeg frame command; OpenCV reads the files by content), which isolates the JPEG
   round trip of their pipeline from everything else.

Written (float32 unless said): ``syncnet_layout.json``; ``syncnet_goldens.npz`` with the int16
wav ffmpeg extracted (``wav``), the MFCC the network saw (13, M), the first ``PREFIX_FRAMES`` BGR
frames of the lossless run (uint8; the JPEG run's differ from the video by JPEG's error), the
audio embeddings and, per variant, the video embeddings of the first ``PREFIX_WINDOWS`` windows,
the authors' ``calc_pdist`` of the JPEG run's prefix embeddings, and per variant the whole clip's
distance array (N, 31), offset, confidence and min distance (LSE-C / LSE-D); the last three
also in ``syncnet_lse.json``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_by_path import load_synthetic_weights  # noqa: E402
FIXTURE = (ROOT.parent / "shared/fixtures/real/lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain"
           "/C8zY0oAdQrs/00018.mp4")
OUT = ROOT / "tests/goldens/syncnet"
VSHIFT = 15
PREFIX_WINDOWS = 8
PREFIX_FRAMES = PREFIX_WINDOWS + 4


def cpu_only():
    """The authors' code calls ``.cuda()``; without a GPU make it a no-op."""
    if not torch.cuda.is_available():
        torch.nn.Module.cuda = lambda self, *a, **k: self
        torch.Tensor.cuda = lambda self, *a, **k: self


def record_streams(net, rec: dict):
    """Wrap the two embedding streams of the authors' network to keep what goes in and out."""
    lip, aud = net.forward_lip, net.forward_aud

    def forward_lip(x):
        y = lip(x)
        if not rec["lip_in"]:
            rec["lip_in"].append(x[:PREFIX_WINDOWS].clone())
        rec["lip_out"].append(y.detach().clone())
        return y

    def forward_aud(x):
        y = aud(x)
        rec["aud_in"].append(x.detach().clone())
        rec["aud_out"].append(y.detach().clone())
        return y

    net.forward_lip, net.forward_aud = forward_lip, forward_aud


def run_evaluate(module, weights_path: Path, clip: Path, lossless: bool) -> dict:
    inst = module.SyncNetInstance()
    inst.loadParameters(str(weights_path))
    rec = {"lip_in": [], "lip_out": [], "aud_in": [], "aud_out": []}
    record_streams(inst.__S__, rec)
    call = module.subprocess.call

    def ffmpeg(command, *args, **kwargs):
        if lossless and "-f image2" in command:
            command = command.replace("-f image2", "-f image2 -c:v png")
        return call(command, *args, **kwargs)

    module.subprocess.call = ffmpeg
    try:
        with tempfile.TemporaryDirectory() as tmp:
            opt = types.SimpleNamespace(tmp_dir=tmp, reference="clip", batch_size=20, vshift=VSHIFT)
            offset, conf, dists = inst.evaluate(opt, videofile=shlex.quote(str(clip)))
            _, wav = module.wavfile.read(str(Path(tmp) / "clip" / "audio.wav"))
    finally:
        module.subprocess.call = call
    # evaluate prints the min distance with 3 decimals; the same reduction of the same rows gives it
    mdist = torch.mean(torch.stack([torch.from_numpy(row) for row in dists], 1), 1)
    if not torch.equal(torch.median(mdist) - mdist.min(), torch.as_tensor(conf)):
        raise SystemExit("recomputed confidence differs from evaluate's")
    lip_in = rec["lip_in"][0]                                         # (8, 3, 5, 224, 224) BGR 0..255
    frames = [lip_in[min(t, PREFIX_WINDOWS - 1), :, t - min(t, PREFIX_WINDOWS - 1)] for t in range(PREFIX_FRAMES)]
    aud_in = torch.cat(rec["aud_in"])                                 # (N, 1, 13, 20)
    mfcc = torch.cat([aud_in[:, 0, :, :4].permute(1, 0, 2).reshape(13, -1), aud_in[-1, 0, :, 4:]], dim=1)
    return {
        "frames": torch.stack(frames).permute(0, 2, 3, 1).round().to(torch.uint8).numpy(),
        "mfcc": mfcc.numpy(),
        "lip_emb": torch.cat(rec["lip_out"]).numpy(),
        "aud_emb": torch.cat(rec["aud_out"]).numpy(),
        "dists": np.asarray(dists, dtype=np.float32),
        "offset": np.asarray(offset, dtype=np.int64),
        "conf": np.asarray(conf, dtype=np.float32),
        "minval": mdist.min().numpy().astype(np.float32),
        "wav": np.asarray(wav, dtype=np.int16),
    }


def write_summary(out_dir: Path, goldens: dict) -> None:
    """``syncnet_lse.json``: the clip-level answers of the authors' evaluate, readable at a glance."""
    summary = {"clip": "lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4",
               "weights": "avsync.convert.synthetic_weights of syncnet_layout.json (not trained weights)",
               "vshift": int(goldens["vshift"])}
    for run in ("png", "jpeg"):
        summary[f"frames_{run}"] = {"windows": len(goldens[f"dists_{run}"]),
                                    "offset_frames": int(goldens[f"offset_{run}"]),
                                    "lse_c": float(goldens[f"conf_{run}"]), "lse_d": float(goldens[f"minval_{run}"])}
    (out_dir / "syncnet_lse.json").write_text(json.dumps(summary, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-repo", required=True, type=Path, help="checkout of joonson/syncnet_python")
    parser.add_argument("--clip", type=Path, default=FIXTURE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    sys.path.insert(0, str(args.authors_repo.resolve()))
    cpu_only()
    module = importlib.import_module("SyncNetInstance")
    synthetic = load_synthetic_weights()

    authors_state = module.S(num_layers_in_fc_layers=1024).state_dict()
    args.out.mkdir(parents=True, exist_ok=True)
    synthetic.write_layout(authors_state, args.out / "syncnet_layout.json",
                           note="syncnet_python SyncNetModel.S(num_layers_in_fc_layers=1024).state_dict()")
    layout = synthetic.read_layout(args.out / "syncnet_layout.json")
    state = synthetic.synthetic_state_dict(layout)
    if any(state[k].dtype != v.dtype for k, v in authors_state.items()):
        raise SystemExit("a synthetic tensor has another dtype than the authors' one")

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "synthetic.model"
        torch.save(state, weights)
        runs = {name: run_evaluate(module, weights, args.clip, lossless=name == "png")
                for name in ("jpeg", "png")}

    # the authors' calc_pdist on the prefix embeddings: the distance array of a short clip
    jpeg = runs["jpeg"]
    lip = torch.from_numpy(jpeg["lip_emb"][:PREFIX_WINDOWS])
    aud = torch.from_numpy(jpeg["aud_emb"][:PREFIX_WINDOWS])
    prefix_dists = torch.stack(module.calc_pdist(lip, aud, vshift=VSHIFT)).numpy()
    if not np.array_equal(runs["png"]["mfcc"], jpeg["mfcc"]):
        raise SystemExit("the two runs saw different MFCCs")

    out = {"vshift": np.asarray(VSHIFT), "mfcc": jpeg["mfcc"],
           "prefix_dists_jpeg": prefix_dists}
    out["wav"] = jpeg["wav"]
    out["frames_png"] = runs["png"]["frames"]  # avsync's decode is compared with these (lossless)
    for name, run in runs.items():
        out[f"lip_emb_{name}"] = run["lip_emb"][:PREFIX_WINDOWS]
        out[f"dists_{name}"] = run["dists"]
        out[f"offset_{name}"] = run["offset"]
        out[f"conf_{name}"] = run["conf"]
        out[f"minval_{name}"] = run["minval"]
    out["aud_emb"] = jpeg["aud_emb"][:PREFIX_WINDOWS]
    np.savez_compressed(args.out / "syncnet_goldens.npz", **out)
    write_summary(args.out, out)
    for name, run in runs.items():
        print(f"{name}: windows {len(run['dists'])}, offset {int(run['offset'])}, "
              f"conf (LSE-C) {float(run['conf']):.6f}, min dist (LSE-D) {float(run['minval']):.6f}")
    print(f"wrote {args.out} ({sum(p.stat().st_size for p in args.out.iterdir())} bytes)")


if __name__ == "__main__":
    main()

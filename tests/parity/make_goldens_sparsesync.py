"""Make SparseSync's golden files with the AUTHORS' code (v-iashin/SparseSync); not run by the tests.

    /work/venvs/ref/bin/python tests/parity/make_goldens_sparsesync.py \
        --authors-repo /path/to/SparseSync --torchvision-wheel torchvision-0.12.0-cp310-...whl

It builds the authors' model from their ``configs/sparse_sync.yaml`` (depth 3, 21 classes;
extractor ``ckpt_path`` set to null, which leaves the architecture as it is), loads the synthetic
state dict of :mod:`avsync.convert.synthetic_weights` (every tensor random, seeded by its name),
prepares the real VGGSound fixture clip with the authors' own test transforms
(``transform_sequence_test`` of that config: ``read_video`` decoding, EqualifyFromRight, centre
crop 224, temporal crop at the clip's fixed test offset, /255 + ImageNet normalisation, torchaudio
spectrogram 512/128, log, per-frequency standardisation) and runs their forward pass in eval
mode. It writes, under ``tests/goldens/``:

* ``sparsesync_layout.json`` — the authors' state-dict keys and shapes (the test regenerates the
  weights from it without the authors' code);
* ``sparsesync_golden.npz`` — the inputs (a SHA-256 of the cropped uint8 frames, one of those
  frames, the audio window, the normalised spectrogram in float16), the outputs (offset logits,
  the selectors' outputs) and the clip's plan;
* ``sparsesync_golden.json`` — how they were made (versions, the authors' commit, the clip).

Only the authors' modules, torch, torchvision, torchaudio, numpy and omegaconf are used, plus
avsync's ``synthetic_weights`` (imported from this checkout's ``src/``; it needs only torch).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(HERE))
from avsync.convert.synthetic_weights import synthetic_state_dict, write_layout  # noqa: E402

import legacy_read_video  # noqa: E402

CLIP = "vggsound/h264_video_25fps_256side_16000hz_aac/3qesirWAGt4_20000_30000.mp4"
OFFSETS_CSV = "metadata/vggsound_test_fixed_offsets_size21_crop5.csv"  # the official test plan of the clip
FRAMES_KEPT = (62,)  # one frame in full; the SHA-256 and per-frame means cover the rest


def fixed_offset(fixtures: Path, key: str) -> tuple[float, float]:
    import csv

    with open(fixtures / OFFSETS_CSV, newline="") as f:
        for row in csv.DictReader(f):
            if row["path"] == key:
                return float(row["offset_sec"]), float(row["vstart_sec"])
    raise SystemExit(f"{key} has no row in {OFFSETS_CSV}")


def git_commit(path: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors-repo", type=Path, required=True, help="checkout of v-iashin/SparseSync")
    parser.add_argument("--authors-commit", help="commit of that checkout, if it is not a git work tree")
    parser.add_argument("--torchvision-wheel", type=Path, required=True,
                        help="the torchvision wheel of the authors' environment (0.12.0) for read_video")
    parser.add_argument("--fixtures", type=Path, default=REPO.parent / "shared" / "fixtures" / "real")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "goldens")
    args = parser.parse_args()

    authors = args.authors_repo.resolve()
    wheel = legacy_read_video.install(args.torchvision_wheel)
    os.chdir(authors)  # the authors' modules import each other relative to their repository root
    sys.path.insert(0, str(authors))
    from omegaconf import OmegaConf
    from utils.utils import instantiate_from_config
    from dataset.dataset_utils import get_video_and_audio

    torch.manual_seed(0)
    cfg = OmegaConf.load(authors / "configs" / "sparse_sync.yaml")
    cfg.model.params.afeat_extractor.params.ckpt_path = None
    cfg.model.params.vfeat_extractor.params.ckpt_path = None
    model = instantiate_from_config(cfg.model).eval()
    layout = model.state_dict()
    state = synthetic_state_dict({k: v.shape for k, v in layout.items()})
    model.load_state_dict(state, strict=True)

    # the authors' test transforms, with the clip's fixed offset as their dataset passes it
    transforms = [instantiate_from_config(t) for t in cfg.transform_sequence_test]
    path = args.fixtures / CLIP
    key = path.stem
    offset_sec, vstart_sec = fixed_offset(args.fixtures, key)
    rgb, audio, meta = get_video_and_audio(str(path), get_meta=True)
    item = {"video": rgb, "audio": audio, "meta": meta, "path": str(path), "split": "test",
            "targets": {"offset_sec": offset_sec, "v_start_i_sec": vstart_sec}}
    frames_uint8 = None
    for t in transforms:
        if type(t).__name__ == "RGBToFloatToZeroOne":
            frames_uint8 = item["video"].clone()  # (T, 3, 224, 224) uint8, cropped in space and time
            audio_window = item["audio"].clone()
        item = t(item)
    vis, spec = item["video"].unsqueeze(0), item["audio"].unsqueeze(0)  # (1, 125, 3, 224, 224), (1, 1, 257, 626)

    outputs = {}
    hooks = [model.transformer.v_selector.register_forward_hook(lambda m, i, o: outputs.__setitem__("v_selector", o)),
             model.transformer.a_selector.register_forward_hook(lambda m, i, o: outputs.__setitem__("a_selector", o))]
    with torch.no_grad():
        _, logits = model(vis, spec)
        for h in hooks:  # the selector outputs of this forward pass only
            h.remove()
        # the same input without the bridge's GELU: how far a missing weightless layer moves the logits
        model.v_bridge.bridge[1] = torch.nn.Identity()
        _, logits_no_gelu = model(vis, spec)
        model.v_bridge.bridge[1] = torch.nn.GELU()
        # the same video with the audio window of another offset: how much the logits depend on the input
        _, logits_other_audio = model(vis, spec.roll(200, dims=-1))

    args.out.mkdir(parents=True, exist_ok=True)
    write_layout(layout, args.out / "sparsesync_layout.json",
                 note="state-dict keys and shapes of the authors' SparseSync (configs/sparse_sync.yaml, "
                      "extractor ckpt_path null); written by tests/parity/make_goldens_sparsesync.py")
    frames = frames_uint8.numpy()
    np.savez_compressed(
        args.out / "sparsesync_golden.npz",
        frames_sha256=np.array(hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()),
        frames_shape=np.array(frames.shape),
        frames_kept_index=np.array(FRAMES_KEPT),
        frames_kept=frames[list(FRAMES_KEPT)],
        frames_mean=frames.reshape(len(frames), -1).mean(1).astype(np.float32),
        audio=audio_window.numpy().astype(np.float32),
        spectrogram_fp16=spec[0, 0].numpy().astype(np.float16),
        spectrogram_mean=np.array(spec.double().mean().item()),
        spectrogram_std=np.array(spec.double().std().item()),
        video_input_mean=np.array(vis.double().mean().item()),
        video_input_std=np.array(vis.double().std().item()),
        logits=logits[0].numpy(),
        v_selector=outputs["v_selector"][0].numpy(),
        a_selector=outputs["a_selector"][0].numpy(),
    )
    rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    info = {
        "clip": CLIP, "key": key, "offset_sec": offset_sec, "vstart_sec": vstart_sec,
        "offset_target": int(item["targets"]["offset_target"]),
        "authors_repo": "v-iashin/SparseSync", "authors_commit": args.authors_commit or git_commit(authors),
        "config": "configs/sparse_sync.yaml (extractor ckpt_path: null), transform_sequence_test",
        "read_video_from": wheel, "torch": torch.__version__, "python": platform.python_version(),
        "av": __import__("av").__version__, "torchaudio": __import__("torchaudio").__version__,
        "num_tensors": len(layout), "num_params": sum(v.numel() for k, v in layout.items()
                                                      if v.is_floating_point() and "running_" not in k),
        "rel_change_without_bridge_gelu": rel(logits_no_gelu, logits),
        "rel_change_other_audio_window": rel(logits_other_audio, logits),
    }
    (args.out / "sparsesync_golden.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    print("logits", logits[0])


if __name__ == "__main__":
    main()

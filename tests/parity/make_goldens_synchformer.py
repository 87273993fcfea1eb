"""Make Synchformer's golden files with the AUTHORS' code (v-iashin/Synchformer); not run by the tests.

    OMP_NUM_THREADS=2 /work/venvs/ref/bin/python tests/parity/make_goldens_synchformer.py \
        --authors-repo /path/to/Synchformer --torchvision-wheel torchvision-0.15.0-cp310-...whl

Two of the authors' models, both with both feature extractors (Motionformer video, AST audio):

* the synchronisation model of ``configs/sync.yaml`` (14 segments, 21 offset classes);
* the synchronizability model of ``configs/ft_synchability.yaml`` (``GlobalTransformerWithSyncabilityHead``:
  13 segments, a 2-way head, class 1 = synchronisable).

Each loads the synthetic state dict of :mod:`avsync.convert.synthetic_weights` built from its own
key list (shared keys, e.g. the extractors, get the same values in both). The real LRS3 fixture
clip (``h264_uncropped_25fps_256side_16000hz_aac``, two audio channels) is prepared by the
authors' ``transform_sequence_test`` of ``configs/sync.yaml`` at the clip's official fixed test
offset: ``read_video``, EqualifyFromRight, centre crop 224, 5 s temporal crop, 14 half-overlapping
segments of 16 frames taken from the middle of the crop, RGB half-precision /255 and mean = std =
0.5, mel spectrogram (16 kHz, win 400, hop 160, n_fft 1024, 128 mels), log, pad to 66, AST
normalisation. Both models run in eval mode in float32 on that input (the half-precision frames
cast to float32, as their autocast forward pass would read them); the synchronizability model
reads its first 13 segments. Written under ``tests/goldens/``:

* ``synchformer_layout.json``, ``synchformer_synchronizability_layout.json`` — keys and shapes;
* ``synchformer_golden.npz`` — inputs (SHA-256 of the cropped uint8 frames and of the
  normalised half-precision segments, one frame, the audio span, the mel segments in float16),
  outputs (offset logits, synchronizability logits, the first segment's extractor features);
* ``synchformer_golden.json`` — how they were made.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
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
from make_goldens_sparsesync import git_commit  # noqa: E402

CLIP = "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
KEY = "pretrain/C8zY0oAdQrs/00018"
OFFSETS_CSV = "metadata/lrs3_test_fixed_offsets_size21_crop5.csv"
FRAME_KEPT = 60
SYNCHRONIZABILITY_SEGMENTS = 13


def fixed_offset(fixtures: Path) -> tuple[float, float]:
    with open(fixtures / OFFSETS_CSV, newline="") as f:
        for row in csv.DictReader(f):
            if row["path"] == KEY:
                return float(row["offset_sec"]), float(row["vstart_sec"])
    raise SystemExit(f"{KEY} has no row in {OFFSETS_CSV}")


def build(cfg, instantiate_from_config):
    cfg.model.params.afeat_extractor.params.ckpt_path = None
    cfg.model.params.vfeat_extractor.params.ckpt_path = None
    model = instantiate_from_config(cfg.model).eval()
    layout = model.state_dict()
    model.load_state_dict(synthetic_state_dict({k: v.shape for k, v in layout.items()}), strict=True)
    return model, layout


def sha256(t: torch.Tensor) -> np.ndarray:
    return np.array(hashlib.sha256(np.ascontiguousarray(t.numpy()).tobytes()).hexdigest())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors-repo", type=Path, required=True, help="checkout of v-iashin/Synchformer")
    parser.add_argument("--authors-commit", help="commit of that checkout, if it is not a git work tree")
    parser.add_argument("--torchvision-wheel", type=Path, required=True,
                        help="the torchvision wheel of the authors' environment (0.15.0) for read_video")
    parser.add_argument("--fixtures", type=Path, default=REPO.parent / "shared" / "fixtures" / "real")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "goldens")
    args = parser.parse_args()

    authors = args.authors_repo.resolve()
    wheel = legacy_read_video.install(args.torchvision_wheel)
    os.chdir(authors)
    sys.path.insert(0, str(authors))
    from omegaconf import OmegaConf
    from utils.utils import instantiate_from_config
    from dataset.dataset_utils import get_video_and_audio

    torch.manual_seed(0)
    cfg = OmegaConf.load(authors / "configs" / "sync.yaml")
    cfg_sa = OmegaConf.load(authors / "configs" / "ft_synchability.yaml")
    assert cfg_sa.data.n_segments == SYNCHRONIZABILITY_SEGMENTS

    # the authors' test transforms of the synchronisation model
    transforms = [instantiate_from_config(t) for t in cfg.transform_sequence_test]
    path = args.fixtures / CLIP
    offset_sec, vstart_sec = fixed_offset(args.fixtures)
    rgb, audio, meta = get_video_and_audio(str(path), get_meta=True)
    item = {"video": rgb, "audio": audio, "meta": meta, "path": str(path), "split": "test",
            "targets": {"offset_sec": offset_sec, "v_start_i_sec": vstart_sec}}
    kept = {}
    for t in transforms:
        name = type(t).__name__
        if name == "GenerateMultipleSegments":
            kept["crop_frames"], kept["crop_audio"] = item["video"].clone(), item["audio"].clone()
        if name == "RGBToHalfToZeroOne":
            kept["seg_frames"], kept["seg_audio"] = item["video"].clone(), item["audio"].clone()
        item = t(item)
    vis_half, aud = item["video"].unsqueeze(0), item["audio"].unsqueeze(0)  # (1, 14, 16, 3, 224, 224) half, (1, 14, 1, 128, 66)
    assert vis_half.dtype == torch.float16, vis_half.dtype
    vis = vis_half.float()
    # where the segment span starts inside the 5 s crop: find it from the frames themselves
    seg0 = kept["seg_frames"][0]
    first = next(i for i in range(len(kept["crop_frames"])) if torch.equal(kept["crop_frames"][i:i + 16], seg0))
    audio_first = next(i for i in range(0, len(kept["crop_audio"]) - 10240 + 1)
                       if torch.equal(kept["crop_audio"][i:i + 10240], kept["seg_audio"][0]))
    frames = kept["seg_frames"]                                 # (14, 16, 3, 224, 224) uint8
    span = torch.cat([frames[0], *[f[8:] for f in frames[1:]]])  # the 120 frames the segments cover
    assert all(torch.equal(frames[s], span[8 * s: 8 * s + 16]) for s in range(len(frames)))
    audio_span = kept["crop_audio"][audio_first: audio_first + 76800]
    assert torch.equal(kept["seg_audio"][-1], audio_span[-10240:])

    results, seen = {}, {}
    model, layout = build(cfg, instantiate_from_config)
    hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o[0]))
             for n in ("vfeat_extractor", "afeat_extractor")]  # each returns (segment features, global)
    with torch.no_grad():
        _, logits = model(vis, aud)
        for h in hooks:
            h.remove()
        # input dependence: the segments' audio features shifted by one segment, through the rest of
        # the authors' forward pass (projections, flattening, transformer)
        v, a = model.vproj(seen["vfeat_extractor"]), model.aproj(seen["afeat_extractor"].roll(1, dims=1))
        logits_other_audio = model.transformer(v.flatten(1, 2), a.flatten(1, 2))
    results.update(logits=logits[0], vfeat_seg0=seen["vfeat_extractor"][0, 0], afeat_seg0=seen["afeat_extractor"][0, 0])
    del model
    model_sa, layout_sa = build(cfg_sa, instantiate_from_config)
    with torch.no_grad():
        _, logits_sa = model_sa(vis[:, :SYNCHRONIZABILITY_SEGMENTS], aud[:, :SYNCHRONIZABILITY_SEGMENTS])
    results["synchronizability_logits"] = logits_sa[0]

    args.out.mkdir(parents=True, exist_ok=True)
    note = "state-dict keys and shapes of the authors' {} (extractor ckpt_path null); written by " \
           "tests/parity/make_goldens_synchformer.py"
    write_layout(layout, args.out / "synchformer_layout.json", note.format("configs/sync.yaml"))
    write_layout(layout_sa, args.out / "synchformer_synchronizability_layout.json",
                 note.format("configs/ft_synchability.yaml"))
    np.savez_compressed(
        args.out / "synchformer_golden.npz",
        frames_sha256=sha256(span), frames_shape=np.array(span.shape), frame_kept_index=np.array(FRAME_KEPT),
        frame_kept=span[FRAME_KEPT].numpy(), frames_mean=span.reshape(len(span), -1).float().mean(1).numpy(),
        video_input_sha256=sha256(vis_half[0]), video_input_shape=np.array(vis_half.shape[1:]),
        audio=audio_span.numpy().astype(np.float32),
        audio_input_fp16=aud[0, :, 0].numpy().astype(np.float16),
        audio_input_mean=np.array(aud.double().mean().item()), audio_input_std=np.array(aud.double().std().item()),
        **{k: v.numpy() for k, v in results.items()},
    )
    rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    info = {
        "clip": CLIP, "key": KEY, "offset_sec": offset_sec, "vstart_sec": vstart_sec,
        "offset_target": int(item["targets"]["offset_target"]),
        "segments_start_in_crop_frames": first, "segments_start_in_crop_samples": audio_first,
        "synchronizability_segments": SYNCHRONIZABILITY_SEGMENTS,
        "authors_repo": "v-iashin/Synchformer", "authors_commit": args.authors_commit or git_commit(authors),
        "configs": "configs/sync.yaml and configs/ft_synchability.yaml (extractor ckpt_path: null); "
                   "transform_sequence_test of configs/sync.yaml",
        "read_video_from": wheel, "torch": torch.__version__, "python": platform.python_version(),
        "av": __import__("av").__version__, "torchaudio": __import__("torchaudio").__version__,
        "transformers": __import__("transformers").__version__, "timm": __import__("timm").__version__,
        "num_tensors": len(layout), "num_tensors_synchronizability": len(layout_sa),
        "rel_change_other_audio_segments": rel(logits_other_audio[0], results["logits"]),
    }
    (args.out / "synchformer_golden.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    print("logits", results["logits"], "synchronizability", results["synchronizability_logits"])


if __name__ == "__main__":
    main()

"""Make the DeSync golden with av-benchmark's own code (hkchengrex/av-benchmark), not avsync's.

Run with the authors' environment (not by the tests; it takes minutes on a CPU)::

    OMP_NUM_THREADS=1 /work/venvs/ref/bin/python tests/goldens/make_desync_golden.py \
        --authors-repo /work/ref/av-benchmark --fixtures ../shared/fixtures/real \
        --out tests/goldens/desync_avbench_seed0.json

What runs is av-benchmark's: its ``Synchformer`` class (official layout), the video transform of
its ``VideoDataset`` (bicubic resize of the short side to 224, centre crop, 0.5/0.5 normalisation),
the sample logic of ``SynchformerAudioDataset`` (channel mean, resampling, first 8 s),
``encode_video_with_sync`` of ``extract_video.py``, ``encode_audio_with_sync`` of
``av_bench/extract.py``, and the DeSync loop of ``av_bench/evaluate.py`` rewritten in five lines
here because it is inside ``evaluate()`` with feature files of a whole data set (argmax over the
21-class grid of ``make_class_grid(-2, 2, 21)`` on the first and the last 14 segments, absolute
value, mean).

Two things cannot run here and are replaced, the replacement named below: torio's
``StreamingMediaDecoder`` (gone from torchaudio 2.11) and ``torchaudio.load`` (needs torchcodec).
Both are file readers. Frames are decoded with PyAV, every frame of the file: the fixture clips are
constant 25 fps, so av-benchmark's resampling to 25 fps keeps every frame. Audio is decoded with
PyAV at the file's own rate (16 kHz here). Imports that the DeSync path never calls (imagebind,
pytorchvideo, the extraction models of the other metrics) are satisfied with empty modules.

Weights: :func:`synthetic_state_dict` over the official key shapes
(``spec/official_state_dicts/synchformer.json``), the same function the golden test calls.
"""
from __future__ import annotations

import argparse
import json
import sys
import types
import zlib
from pathlib import Path

import torch

CLIPS = (
    "vggsound/h264_video_25fps_256side_16000hz_aac/3qesirWAGt4_20000_30000.mp4",
    "vggsound/h264_video_25fps_256side_16000hz_aac/ZYc410CE4Rg_0_10000.mp4",
    "lrs3/h264_uncropped_25fps_256side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4",
)
DURATION_SEC = 8.0  # av-benchmark's default --audio_length


def synthetic_state_dict(key_shapes: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random weights for ``key -> (shape, dtype)``; each tensor seeded by its own name,
    so the order of the keys and the other keys do not change it. No tensor is constant (a constant
    cannot reveal a swapped bias or an ignored affine): 1-D ``*weight`` (norm scales) 1 + N(0, 0.1),
    everything else N(0, 0.02).

    TODO-merge: a local copy until parity-sparse's ``avsync.convert.synthetic_weights`` lands; if that
    function draws differently, regenerate the golden with it.
    """
    out = {}
    for key, (shape, dtype) in key_shapes.items():
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
        x = torch.randn(tuple(shape), generator=gen, dtype=torch.float64)
        x = 1.0 + 0.1 * x if len(shape) == 1 and key.endswith("weight") else 0.02 * x
        out[key] = x.to(getattr(torch, str(dtype).removeprefix("torch.")))
    return out


def official_key_shapes(spec_json: Path) -> dict:
    return {k: (tuple(v), "float32") for k, v in json.loads(spec_json.read_text())["state_dict"].items()}


def _stub_unused_imports() -> None:
    """Empty modules for imports the DeSync path never calls."""
    names = {
        "torio": {}, "torio.io": {"StreamingMediaDecoder": object},
        "pytorchvideo": {}, "pytorchvideo.data": {},
        "pytorchvideo.data.clip_sampling": {"ConstantClipsPerVideoSampler": object},
        "imagebind": {}, "imagebind.models": {}, "imagebind.models.imagebind_model": {
            "ModalityType": object, "imagebind_huge": None},
        "av_bench.extraction_models": {"ExtractionModels": object},
    }
    for name, attrs in names.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        module.imagebind_model = module  # `from imagebind.models import imagebind_model`
        sys.modules.setdefault(name, module)


def _decode_frames(path: Path) -> torch.Tensor:
    """Every frame, RGB uint8 (T, 3, H, W): the stand-in for StreamingMediaDecoder at 25 fps."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        if abs(rate - 25.0) > 1e-6:
            raise SystemExit(f"{path}: {rate} fps; this stand-in decoder is exact only for 25 fps files")
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def _load_audio(path, *_, **__):
    """The stand-in for torchaudio.load: (channels, samples) float32 at the file's rate, PyAV."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="fltp", rate=rate)
        chunks = [f.to_ndarray() for frame in container.decode(stream) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
    return torch.from_numpy(np.concatenate(chunks, axis=1).astype(np.float32)), rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors-repo", type=Path, required=True, help="a checkout of hkchengrex/av-benchmark")
    parser.add_argument("--fixtures", type=Path, default=Path("../shared/fixtures/real"))
    parser.add_argument("--spec", type=Path, default=Path("../shared/spec/official_state_dicts/synchformer.json"))
    parser.add_argument("--out", type=Path, default=Path("tests/goldens/desync_avbench_seed0.json"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", nargs="*", default=list(CLIPS))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(args.authors_repo.resolve()))
    _stub_unused_imports()
    import torchaudio

    torchaudio.load = _load_audio  # the file reader only; see the module docstring
    from av_bench.data.audio_dataset import SynchformerAudioDataset
    from av_bench.data.video_dataset import VideoDataset
    from av_bench.extract import encode_audio_with_sync
    from av_bench.synchformer.synchformer import Synchformer, make_class_grid

    sys.argv = sys.argv[:1]  # extract_video.py parses nothing at import, but keep it clean
    import extract_video

    model = Synchformer().eval()
    model.load_state_dict(synthetic_state_dict(official_key_shapes(args.spec), args.seed))
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, win_length=400, hop_length=160, n_fft=1024,
                                               n_mels=128)  # ExtractionModels.sync_mel_spectrogram
    grid = make_class_grid(-2, 2, 21)
    records = []
    for rel in args.clips:
        path = args.fixtures / rel
        videos = VideoDataset([path], duration_sec=DURATION_SEC)
        frames = _decode_frames(path)[: videos.sync_expected_length]
        if len(frames) != videos.sync_expected_length:
            raise SystemExit(f"{path}: shorter than {DURATION_SEC} s")
        sync_video = videos.sync_transform(frames)[None]  # (1, T, C, 224, 224)
        wav, _ = SynchformerAudioDataset([path], duration=DURATION_SEC).sample(0)
        with torch.inference_mode():
            vfeats = extract_video.encode_video_with_sync(model, sync_video)
            afeats = encode_audio_with_sync(model, wav[None], mel)
            windows = []
            for name, sl in (("first", slice(None, 14)), ("last", slice(-14, None))):
                logits = model.compare_v_a(vfeats[:, sl], afeats[:, sl])[0]
                top = int(logits.argmax())
                windows.append({"window": name, "logits": logits.double().tolist(), "top_class": top,
                                "abs_offset_sec": abs(float(grid[top]))})
        record = {"clip": rel, "duration_sec": DURATION_SEC, "num_video_segments": int(vfeats.shape[1]),
                  "num_audio_segments": int(afeats.shape[1]),
                  "video_input_sum": float(sync_video.double().sum()), "audio_input_sum": float(wav.double().sum()),
                  "windows": windows, "desync_sec": sum(w["abs_offset_sec"] for w in windows) / len(windows)}
        print(json.dumps({k: record[k] for k in ("clip", "desync_sec")}), flush=True)
        records.append(record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "made_by": "tests/goldens/make_desync_golden.py with hkchengrex/av-benchmark's code",
        "weights": f"synthetic_state_dict(official synchformer key shapes, seed={args.seed})",
        "class_grid_sec": [float(v) for v in grid], "clips": records}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
